//! `cargo run --release -p hookhost-bench --bin purge -- [--events 1000000] [--rate 1000]`
//!
//! Retention under load, in one run:
//!
//! 1. fills a store with `--events` finished events of `--body-bytes`
//!    (unrouted: no plugin takes them, so each is an event, its body and
//!    its idempotency key), and prints the disk bytes per event;
//! 2. starts the host on it with retention off and drives paced POSTs at
//!    `--rate` for `--seconds`: the ingest latency baseline;
//! 3. starts the host again with `max_age = "1ms"`, so that its first
//!    retention pass purges every filled event, drives the same load while
//!    it runs, and prints the purge rate and the ingest latency during it;
//! 4. prints the disk bytes after the purge, and after reopening the store.
//!
//! Every phase is bounded in time (`--seconds`, `--purge-seconds`).

#![allow(clippy::print_stdout)]

use clap::Parser;
use hookhost::model::NewEvent;
use hookhost::store::Store;
use hookhost_bench::body;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser, Clone)]
struct Args {
    /// Finished events to fill the store with.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Body size in bytes.
    #[arg(long, default_value_t = 1024)]
    body_bytes: usize,
    /// Ingest load during the baseline and the purge, events/s.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Concurrent connections of that load.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Length of the baseline phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Longest the purge may take.
    #[arg(long, default_value_t = 900)]
    purge_seconds: u64,
    /// Events examined per purge batch (the embedded store's default).
    #[arg(long, default_value_t = hookhost::store::EMBEDDED_PURGE_BATCH)]
    batch: usize,
}

/// Bytes of every file under `dir`.
fn du(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => total += du(&entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

async fn fill(dir: &Path, args: &Args) -> anyhow::Result<Duration> {
    let store = Arc::new(Store::open(dir)?);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..256 {
        let (store, next, events) = (store.clone(), next.clone(), args.events);
        let body = body(args.body_bytes);
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= events {
                    return Ok::<_, anyhow::Error>(());
                }
                let event = NewEvent {
                    topic: "bench.old".into(),
                    idempotency_key: Some(format!("old-{n}")),
                    headers: Vec::new(),
                    content_type: Some("application/json".into()),
                    body: body.clone(),
                    provenance: hookhost::model::Provenance::Api,
                };
                store.ingest(event, &[]).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    store.close().await?;
    Ok(started.elapsed())
}

/// Paced POSTs until `stop`; returns each request's latency in µs.
async fn drive(base: String, args: Args, stop: Arc<AtomicBool>) -> (Vec<u64>, u64) {
    let client = reqwest::Client::new();
    let body = body(args.body_bytes);
    let gap = Duration::from_secs_f64(args.connections as f64 / args.rate as f64);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        let (client, body, stop) = (client.clone(), body.clone(), stop.clone());
        let url = format!("{base}/events/bench.new");
        tasks.spawn(async move {
            let (mut latencies, mut failed) = (Vec::new(), 0u64);
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep_until(next.into()).await;
                next += gap;
                let sent = Instant::now();
                let answer = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status().is_success() => {
                        latencies.push(sent.elapsed().as_micros() as u64)
                    }
                    _ => failed += 1,
                }
            }
            (latencies, failed)
        });
    }
    let (mut all, mut failed) = (Vec::new(), 0);
    while let Some(Ok((latencies, f))) = tasks.join_next().await {
        all.extend(latencies);
        failed += f;
    }
    all.sort_unstable();
    (all, failed)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn report(label: &str, latencies: &[u64], failed: u64, seconds: f64) {
    println!(
        "{label:<28} {:>8.0} acks/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms  ({failed} failed)",
        latencies.len() as f64 / seconds,
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        percentile(latencies, 1.0),
    );
}

struct Host {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(dir: &Path, plugins: &Path, retention: &str, batch: usize) -> anyhow::Result<Host> {
    let mut config = hookhost::Config {
        listen: ([127, 0, 0, 1], 0).into(),
        data: dir.to_owned(),
        plugins_dir: plugins.to_owned(),
        ..Default::default()
    };
    config.retention.max_age = retention.into();
    config.retention.batch = Some(batch);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(hookhost::run(config, listener, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        anyhow::ensure!(Instant::now() < deadline, "host did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(Host { base, stop, task })
}

impl Host {
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await?
    }

    async fn purged(&self) -> f64 {
        let Ok(r) = reqwest::get(format!("{}/metrics", self.base)).await else {
            return 0.0;
        };
        let text = r.text().await.unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("hookhost_purged_events_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scratch = tempfile::tempdir()?;
    let data = scratch.path().join("data");
    let plugins = scratch.path().join("plugins");
    std::fs::create_dir_all(&plugins)?;
    println!(
        "purge: {} events of {} B; load {}/s over {} connections",
        args.events, args.body_bytes, args.rate, args.connections
    );

    let took = fill(&data, &args).await?;
    let filled = du(&data);
    println!(
        "filled                       {:>8.0} events/s  ({:.1} s); on disk {:.1} MB = {:.0} B per event",
        args.events as f64 / took.as_secs_f64(),
        took.as_secs_f64(),
        filled as f64 / 1e6,
        filled as f64 / args.events as f64
    );

    let host = start(&data, &plugins, "off", args.batch).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(drive(host.base.clone(), args.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let (baseline, failed) = load.await?;
    report("ingest, no purge", &baseline, failed, args.seconds as f64);
    host.stop().await?;

    let started = Instant::now();
    let host = start(&data, &plugins, "1ms", args.batch).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(drive(host.base.clone(), args.clone(), stop.clone()));
    let deadline = started + Duration::from_secs(args.purge_seconds);
    let mut purged = 0.0;
    while purged < args.events as f64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        purged = host.purged().await;
    }
    let purge_time = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (during, failed) = load.await?;
    report(
        "ingest during the purge",
        &during,
        failed,
        purge_time.as_secs_f64(),
    );
    println!(
        "purged                       {:>8.0} events/s  ({purged:.0} events in {:.1} s, host start included)",
        purged / purge_time.as_secs_f64(),
        purge_time.as_secs_f64()
    );
    println!(
        "ratio                        p99 during purge / baseline = {:.2}",
        percentile(&during, 0.99) / percentile(&baseline, 0.99).max(0.001)
    );
    host.stop().await?;
    let after = du(&data);
    let store = Store::open(&data)?;
    store.close().await?;
    drop(store);
    let reopened = du(&data);
    println!(
        "on disk after the purge      {:.1} MB; after reopening {:.1} MB (the events posted by the load remain)",
        after as f64 / 1e6,
        reopened as f64 / 1e6,
    );
    Ok(())
}
