//! `cargo run --release -p hookhost-bench --bin load -- [--seconds 10] [--connections 64] [--rate 0]`
//!
//! Drives POSTs at three targets in one run, one after the other, with the
//! same client and body, and prints what each sustained:
//!
//! 1. a plain axum route answering 202 (the HTTP ceiling),
//! 2. raw sled inserts of the same size, flushed by group commit (the
//!    durability ceiling),
//! 3. the host (in this process, on 127.0.0.1) with the no-op test plugin:
//!    acknowledged events/s, handled events/s (until the queue drained),
//!    ingest → attempt-recorded latency p50/p99/max over a sample of events,
//!    the queue depth when the load stopped, peak RSS, the instance slots
//!    left warm and the memory each keeps, and the process's
//!    CPU during the load and while draining (against all cores: below them,
//!    something other than CPU bounds the host).
//!
//! Every phase is bounded in time (`--seconds`) and count (`--max-events`).
//! `--rate N` paces the load at N events/s in all (0: as fast as the
//! connections go), e.g. `--rate 1000` for latency under a steady load.
//!
//! Longer than 600 lines on purpose: the host and both ceilings are driven by
//! the same code in the same run, which is what makes their ratio honest.

#![allow(clippy::print_stdout)]

use anyhow::Context as _;
use clap::Parser;
use hookhost_bench::{
    Driven, Load, body, cpu_seconds, cpu_share, drive, metric, percentile, recorded_latencies,
    vm_hwm_mb, written_bytes,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser, Clone)]
struct Args {
    /// Length of each load phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent connections (one request in flight each).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Events per phase at most.
    #[arg(long, default_value_t = 2_000_000)]
    max_events: u64,
    /// Events per second in all; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Body size in bytes.
    #[arg(long, default_value_t = 1024)]
    body_bytes: usize,
    /// Events whose latency is read back after the run.
    #[arg(long, default_value_t = 2000)]
    latency_sample: usize,
    /// Topic posted to the host: `test.noop` reaches the no-op plugin; any
    /// other measures ingest alone.
    #[arg(long, default_value = "test.noop")]
    topic: String,
    /// Longest wait for the queue to drain after the load.
    #[arg(long, default_value_t = 120)]
    drain_seconds: u64,
    /// The host's `store_cache_mb` (sled's page cache); the host's default
    /// when not given.
    #[arg(long)]
    store_cache_mb: Option<u64>,
    /// Print the host's rates every this many seconds during its load (0:
    /// not at all), to see when a long run falls behind and what slows.
    #[arg(long, default_value_t = 0)]
    every: u64,
    /// Run the host phase alone, without the axum and sled ceilings (and
    /// so without ratios): for long runs where only the host's pace matters.
    #[arg(long)]
    host_only: bool,
    /// Length of each ceiling's phase, when not `--seconds`: a ceiling
    /// holds its pace within seconds, the host's queue takes a minute to
    /// show whether it keeps up.
    #[arg(long)]
    ceiling_seconds: Option<u64>,
}

impl Args {
    fn load(&self) -> Load {
        Load {
            seconds: self.seconds,
            connections: self.connections,
            max_events: self.max_events,
            rate: self.rate,
            body_bytes: self.body_bytes,
        }
    }
}

/// A runtime of its own for a server under load, with as many workers as
/// the load generator's: a deployed server runs in its own process, and on
/// the generator's runtime its tasks would wait in one queue with the 128
/// client connections'. Both servers measured (axum's and the host) get one.
fn server_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .thread_name("server")
        .enable_all()
        .build()?)
}

/// A socket on 127.0.0.1 for a server on another runtime: it is bound here
/// and registered on that runtime by `tokio::net::TcpListener::from_std`.
fn local_socket() -> anyhow::Result<(std::net::TcpListener, std::net::SocketAddr)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Phase 1: a plain axum route answering 202.
async fn axum_ceiling(args: &Args) -> anyhow::Result<Driven> {
    let app = axum::Router::new().route(
        "/events/{topic}",
        axum::routing::post(|_body: axum::body::Bytes| async { axum::http::StatusCode::ACCEPTED }),
    );
    let (listener, addr) = local_socket()?;
    let url = format!("http://{addr}/events/bench.noop");
    let runtime = server_runtime()?;
    let server = runtime
        .spawn(async move { axum::serve(tokio::net::TcpListener::from_std(listener)?, app).await });
    let driven = drive(&url, &args.load(), false).await;
    server.abort();
    runtime.shutdown_background();
    Ok(driven)
}

/// Phase 2: raw sled inserts of the same size, each writer waiting for a
/// flush that covers its write; one flush serves every writer waiting. A
/// flush is sled's and then an `fdatasync` of its log, as the host's is.
async fn sled_ceiling(args: &Args) -> anyhow::Result<Driven> {
    let dir = tempfile::tempdir()?;
    let db = sled::Config::new()
        .path(dir.path())
        .flush_every_ms(Some(200))
        .open()?;
    let log = Arc::new(
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("db"))?,
    );
    let tree = db.open_tree("events")?;
    let written = Arc::new(AtomicU64::new(0));
    let (flushed_tx, flushed_rx) = tokio::sync::watch::channel(0u64);
    let flusher = {
        let (db, written) = (db.clone(), written.clone());
        tokio::spawn(async move {
            loop {
                let upto = written.load(Ordering::SeqCst);
                if upto > *flushed_tx.borrow() {
                    if db.flush_async().await.is_err() {
                        return;
                    }
                    let log = log.clone();
                    match tokio::task::spawn_blocking(move || log.sync_data()).await {
                        Ok(Ok(())) => {}
                        _ => return,
                    }
                    let _ = flushed_tx.send(upto);
                } else if flushed_tx.is_closed() {
                    return;
                } else {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let value = body(args.body_bytes);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        let (tree, value, written, count) =
            (tree.clone(), value.clone(), written.clone(), count.clone());
        let mut flushed = flushed_rx.clone();
        let max = args.max_events;
        tasks.spawn(async move {
            let mut acked = 0u64;
            while Instant::now() < deadline {
                let n = count.fetch_add(1, Ordering::SeqCst);
                if n >= max {
                    break;
                }
                if tree.insert(n.to_be_bytes(), value.as_slice()).is_err() {
                    break;
                }
                let mine = written.fetch_add(1, Ordering::SeqCst) + 1;
                if flushed.wait_for(|f| *f >= mine).await.is_err() {
                    break;
                }
                acked += 1;
            }
            acked
        });
    }
    let mut acked = 0;
    while let Some(done) = tasks.join_next().await {
        acked += done.expect("writer");
    }
    let elapsed = started.elapsed();
    drop(flushed_rx);
    flusher.abort();
    Ok(Driven {
        acked,
        failed: 0,
        elapsed,
        ids: Vec::new(),
        ack_us: Vec::new(),
        failures: Vec::new(),
    })
}

/// Phase 3 figures beyond the acks.
struct HostFigures {
    handled_per_second: f64,
    handled_during_load: f64,
    /// Attempts per second after the load stopped, until the queue drained.
    drain_per_second: f64,
    drained: bool,
    queue_at_stop: f64,
    latencies_ms: Vec<u64>,
    peak_rss_mb: f64,
    /// Instance slots left warm after the run, and the linear-memory bytes
    /// they keep resident (wasmtime's pool metrics).
    warm_slots: f64,
    warm_bytes: f64,
    rss_before_mb: f64,
    flushes: f64,
    flush_mean_ms: f64,
    flush_waiters: f64,
    flush_p99_ms: f64,
    /// Bytes written to storage during the load, and while draining.
    written_during_load: f64,
    written_draining: f64,
    /// Attempts recorded after the load stopped.
    attempts_draining: f64,
    /// The process's CPU as a share of all cores, during the load (load
    /// generator included) and while draining.
    cpu_during_load: f64,
    cpu_draining: f64,
    /// Ingest's transactions during the load.
    ingest_tx: Transactions,
    /// Attempt records' batched transactions while draining.
    record_tx: Transactions,
}

/// Batched store transactions of one kind between two scrapes.
#[derive(Default, Clone, Copy)]
struct Transactions {
    count: f64,
    items: f64,
    seconds: f64,
}

impl Transactions {
    /// The totals of `kind` in the scrape `text`.
    fn read(text: &str, kind: &str) -> Self {
        let label = format!("kind=\"{kind}\"");
        Self {
            count: metric(text, "hookhost_store_transaction_seconds_count", &label),
            items: metric(text, "hookhost_store_transaction_items_sum", &label),
            seconds: metric(text, "hookhost_store_transaction_seconds_sum", &label),
        }
    }

    fn since(self, before: Self) -> Self {
        Self {
            count: self.count - before.count,
            items: self.items - before.items,
            seconds: self.seconds - before.seconds,
        }
    }

    /// "N transactions, K each, T ms each".
    fn describe(self) -> String {
        let n = self.count.max(1.0);
        format!(
            "{:.0} transactions, {:.1} each, {:.2} ms each",
            self.count,
            self.items / n,
            self.seconds * 1000.0 / n
        )
    }
}

/// The upper bound of the histogram bucket that holds quantile `q` of
/// Prometheus histogram `name` (cumulative `_bucket{le=...}` lines).
fn bucket_quantile(text: &str, name: &str, q: f64) -> f64 {
    let prefix = format!("{name}_bucket{{le=\"");
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|l| {
            let (le, count) = l.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last().map_or(0.0, |b| b.1);
    buckets
        .iter()
        .find(|(_, count)| *count >= total * q)
        .map_or(0.0, |b| b.0)
}

/// One line of the host phase's timeline: rates over the interval since
/// the previous scrape.
struct Tick {
    text: String,
    at: Instant,
    cpu: f64,
    written: f64,
}

impl Tick {
    fn now(text: String) -> Self {
        Self {
            text,
            at: Instant::now(),
            cpu: cpu_seconds("self"),
            written: written_bytes(),
        }
    }

    /// "t=10s ingested N/s handled N/s queue N ..." between `before` and
    /// this tick, `since_start` after the load started.
    fn describe(&self, before: &Tick, since_start: Duration) -> String {
        let secs = (self.at - before.at).as_secs_f64().max(1e-9);
        let rate = |name: &str, label: &str| {
            (metric(&self.text, name, label) - metric(&before.text, name, label)) / secs
        };
        let flush_count = |t: &str| metric(t, "hookhost_store_flush_duration_seconds_count", "");
        let flush_sum = |t: &str| metric(t, "hookhost_store_flush_duration_seconds_sum", "");
        let flushes = flush_count(&self.text) - flush_count(&before.text);
        let flush_ms =
            (flush_sum(&self.text) - flush_sum(&before.text)) * 1000.0 / flushes.max(1.0);
        let ingest = Transactions::read(&self.text, "ingest")
            .since(Transactions::read(&before.text, "ingest"));
        let record = Transactions::read(&self.text, "record")
            .since(Transactions::read(&before.text, "record"));
        format!(
            "  t={:>3}s ingested {:>6.0}/s handled {:>6.0}/s queue {:>7.0} | flushes {:>4.0}/s {:.2} ms | ingest tx {:.2} ms/{:.0} | record tx {:.2} ms/{:.0} | CPU {:>3.0} % | disk {:.0} MB/s",
            since_start.as_secs_f64().round(),
            rate("hookhost_ingest_total", ""),
            rate("hookhost_attempts_total", "plugin=\"noop\""),
            metric(&self.text, "hookhost_queue_depth", ""),
            flushes / secs,
            flush_ms,
            ingest.seconds * 1000.0 / ingest.count.max(1.0),
            ingest.items / ingest.count.max(1.0),
            record.seconds * 1000.0 / record.count.max(1.0),
            record.items / record.count.max(1.0),
            cpu_share(before.cpu, self.cpu, secs) * 100.0,
            (self.written - before.written) / secs / 1e6,
        )
    }
}

async fn host(args: &Args) -> anyhow::Result<(Driven, HostFigures)> {
    let rss_before_mb = vm_hwm_mb();
    let built = xtask::build_plugins(&["test-noop"]).map_err(anyhow::Error::msg)?;
    let dir = tempfile::tempdir()?;
    let mut config = hookhost::Config {
        data: dir.path().join("data"),
        plugins_dir: dir.path().join("plugins"),
        max_queue_depth: u64::MAX / 2,
        ..hookhost::Config::default()
    };
    config.listen = "127.0.0.1:0".parse()?;
    if let Some(mb) = args.store_cache_mb {
        config.store_cache_mb = mb;
    }
    std::fs::create_dir_all(&config.plugins_dir)?;
    std::fs::copy(&built[0], config.plugins_dir.join("noop.wasm"))?;
    let (listener, addr) = local_socket()?;
    let base = format!("http://{addr}");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runtime = server_runtime()?;
    let server = runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        hookhost::run(config, listener, async {
            let _ = stop_rx.await;
        })
        .await
    });
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client
        .get(format!("{base}/plugins/noop"))
        .send()
        .await
        .map(|r| r.status().is_success())
        .ok()
        != Some(true)
    {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the host did not load the plugin"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let load_started = Instant::now();
    let written_at_start = written_bytes();
    let cpu_at_start = cpu_seconds("self");
    let timeline = (args.every > 0).then(|| {
        let (client, url, every) = (
            client.clone(),
            format!("{base}/metrics"),
            Duration::from_secs(args.every),
        );
        tokio::spawn(async move {
            let scrape = || async { client.get(&url).send().await.ok()?.text().await.ok() };
            let Some(text) = scrape().await else { return };
            let mut before = Tick::now(text);
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                interval.tick().await;
                let Some(text) = scrape().await else { return };
                let tick = Tick::now(text);
                println!("{}", tick.describe(&before, load_started.elapsed()));
                before = tick;
            }
        })
    });
    let driven = drive(&format!("{base}/events/{}", args.topic), &args.load(), true).await;
    if let Some(timeline) = timeline {
        timeline.abort();
    }
    let scrape = || async {
        client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .context("scrape")?
            .text()
            .await
            .context("scrape text")
    };
    let at_stop = scrape().await?;
    let load_took = load_started.elapsed();
    let written_at_stop = written_bytes();
    let cpu_at_stop = cpu_seconds("self");
    let handled_at_stop = metric(&at_stop, "hookhost_attempts_total", "plugin=\"noop\"");
    let queue_at_stop = metric(&at_stop, "hookhost_queue_depth", "");
    let flushes = metric(&at_stop, "hookhost_store_flush_duration_seconds_count", "");
    let flush_mean_ms =
        metric(&at_stop, "hookhost_store_flush_duration_seconds_sum", "") * 1000.0 / flushes;
    let flush_waiters = metric(&at_stop, "hookhost_store_flush_waiters_sum", "") / flushes;
    let flush_p99_ms =
        bucket_quantile(&at_stop, "hookhost_store_flush_duration_seconds", 0.99) * 1000.0;
    let drain_deadline = Instant::now() + Duration::from_secs(args.drain_seconds);
    let mut drained = false;
    let mut handled = 0.0;
    let mut last = at_stop.clone();
    while Instant::now() < drain_deadline {
        last = scrape().await?;
        handled = metric(&last, "hookhost_attempts_total", "plugin=\"noop\"");
        if metric(&last, "hookhost_queue_depth", "") == 0.0 {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let written_drained = written_bytes();
    let cpu_drained = cpu_seconds("self");
    let ingest_tx = Transactions::read(&at_stop, "ingest");
    let record_tx =
        Transactions::read(&last, "record").since(Transactions::read(&at_stop, "record"));
    let handled_per_second = handled / load_started.elapsed().as_secs_f64();
    let drain_took = load_started.elapsed() - load_took;
    let handled_during_load = handled_at_stop / load_took.as_secs_f64();
    let drain_per_second = (handled - handled_at_stop) / drain_took.as_secs_f64();

    let latencies_ms = recorded_latencies(&client, &base, &driven.ids, args.latency_sample).await?;
    let peak_rss_mb = vm_hwm_mb();
    // Read once the queue is idle: every slot used is unused by then.
    let warm = scrape().await?;
    let warm_slots = metric(&warm, "hookhost_wasm_warm_memories", "");
    let warm_bytes = metric(&warm, "hookhost_wasm_warm_memory_bytes", "");
    let _ = stop_tx.send(());
    server.await??;
    runtime.shutdown_background();
    Ok((
        driven,
        HostFigures {
            handled_per_second,
            handled_during_load,
            drain_per_second,
            drained,
            queue_at_stop,
            latencies_ms,
            peak_rss_mb,
            rss_before_mb,
            warm_slots,
            warm_bytes,
            flushes,
            flush_mean_ms,
            flush_waiters,
            flush_p99_ms,
            written_during_load: written_at_stop - written_at_start,
            written_draining: written_drained - written_at_stop,
            attempts_draining: handled - handled_at_stop,
            cpu_during_load: cpu_share(cpu_at_start, cpu_at_stop, load_took.as_secs_f64()),
            cpu_draining: cpu_share(cpu_at_stop, cpu_drained, drain_took.as_secs_f64()),
            ingest_tx,
            record_tx,
        },
    ))
}

hookhost::use_jemalloc!();

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!("load, per phase: {}", args.load().describe());
    // The host first, so that the peak RSS read after it is the host's (with
    // the load generator's), not the ceilings'.
    let (host, figures) = host(&args).await?;
    let ceilings = if args.host_only {
        None
    } else {
        let ceiling_args = Args {
            seconds: args.ceiling_seconds.unwrap_or(args.seconds),
            ..args.clone()
        };
        let axum = axum_ceiling(&ceiling_args).await?;
        println!(
            "axum 202 ceiling      {:>10.0} req/s  ({} failed)",
            axum.per_second(),
            axum.failed
        );
        let sled = sled_ceiling(&ceiling_args).await?;
        println!("sled group commit     {:>10.0} writes/s", sled.per_second());
        Some((axum, sled))
    };
    println!(
        "host acknowledged     {:>10.0} events/s ({} failed)",
        host.per_second(),
        host.failed
    );
    println!(
        "host ack latency      p50 {:.1} ms, p99 {:.1} ms{}",
        percentile(&host.ack_us, 0.50) as f64 / 1000.0,
        percentile(&host.ack_us, 0.99) as f64 / 1000.0,
        ceilings.as_ref().map_or(String::new(), |(axum, _)| format!(
            " (axum alone: p50 {:.1} ms, p99 {:.1} ms)",
            percentile(&axum.ack_us, 0.50) as f64 / 1000.0,
            percentile(&axum.ack_us, 0.99) as f64 / 1000.0,
        )),
    );
    println!(
        "host handled          {:>10.0} events/s{}",
        figures.handled_per_second,
        if figures.drained {
            ""
        } else {
            " (queue not drained in time)"
        }
    );
    println!(
        "  of which            {:>10.0} events/s during the load, {:.0} events/s draining after it",
        figures.handled_during_load, figures.drain_per_second
    );
    println!(
        "store flushes         {:>10.0} during the load, mean {:.2} ms, p99 ≤ {} ms, {:.1} waiters each",
        figures.flushes, figures.flush_mean_ms, figures.flush_p99_ms, figures.flush_waiters
    );
    println!(
        "store transactions    ingest during the load: {}; attempt records draining: {}",
        figures.ingest_tx.describe(),
        figures.record_tx.describe()
    );
    println!("queue depth at stop   {:>10.0}", figures.queue_at_stop);
    println!(
        "disk writes           {:.1} KB per acknowledged event during the load, {:.1} KB per attempt draining",
        figures.written_during_load / 1000.0 / host.acked.max(1) as f64,
        figures.written_draining / 1000.0 / figures.attempts_draining.max(1.0)
    );
    println!(
        "process CPU           {:.0} % of all cores during the load (load generator included){}",
        figures.cpu_during_load * 100.0,
        if figures.attempts_draining > 0.0 {
            format!(", {:.0} % while draining", figures.cpu_draining * 100.0)
        } else {
            String::new() // nothing drained: a few milliseconds of scraping
        }
    );
    let l = &figures.latencies_ms;
    println!(
        "ingest -> recorded    p50 {} ms, p99 {} ms, max {} ms ({} events sampled)",
        percentile(l, 0.50),
        percentile(l, 0.99),
        l.last().copied().unwrap_or(0),
        l.len()
    );
    println!(
        "peak RSS              {:.0} MB (process: host + load generator; {:.0} MB before the host)",
        figures.peak_rss_mb, figures.rss_before_mb
    );
    println!(
        "warm instance slots   {:.0}, {:.1} KB of linear memory resident each",
        figures.warm_slots,
        figures.warm_bytes / figures.warm_slots.max(1.0) / 1024.0
    );
    hookhost_bench::figures(serde_json::json!({
        "offered_per_s": args.rate,
        "acks_per_s": host.per_second(),
        "failed": host.failed,
        "handled_during_load_per_s": figures.handled_during_load,
        "handled_per_s": figures.handled_per_second,
        "queue_at_stop": figures.queue_at_stop,
        "drained": figures.drained,
        "recorded_p99_ms": percentile(l, 0.99),
        "ack_p99_ms": percentile(&host.ack_us, 0.99) as f64 / 1000.0,
        "axum_per_s": ceilings.as_ref().map(|(axum, _)| axum.per_second()),
        "axum_ack_p99_ms": ceilings
            .as_ref()
            .map(|(axum, _)| percentile(&axum.ack_us, 0.99) as f64 / 1000.0),
        "sled_per_s": ceilings.as_ref().map(|(_, sled)| sled.per_second()),
    }));
    if let Some((axum, sled)) = ceilings {
        println!(
            "ratios                acks/axum {:.2}, acks/sled {:.2}",
            host.per_second() / axum.per_second(),
            host.per_second() / sled.per_second()
        );
    }
    Ok(())
}
