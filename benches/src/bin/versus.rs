//! `cargo run --release -p hookhost-bench --bin versus -- --n8n target/n8n/node_modules/.bin/n8n`
//!
//! The same load against Hookhost and n8n, one after the other on this
//! machine, each on 127.0.0.1 as its own process:
//!
//! - **Hookhost**: the release `hookhost serve` with the `test-parse` plugin
//!   (it parses the JSON body and checks one field), events posted to
//!   `/events/test.parse`. It acknowledges once the event is on disk and
//!   handles it after; both rates are printed, with the ingest → recorded
//!   latency read back from the host.
//! - **n8n**: a Webhook node (POST `/webhook/bench`, answering when the last
//!   node has run) → a Code node that parses the body and checks the same
//!   field; SQLite, executions saved (n8n's defaults), telemetry off. An
//!   answer there means the workflow ran, so its acknowledged rate is its
//!   handled rate and its answer latency its end-to-end latency.
//!
//! Each tool gets the same connections, rate, body, duration and count, and
//! the peak RSS of its process tree is read from `/proc`.
//!
//! `--install` first installs n8n 2.8.4 (the newest release that runs on
//! Node 20) from npm into `target/n8n`. Nothing here runs in CI.

#![allow(clippy::print_stdout)]

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use hookhost_bench::{
    Driven, Host, Load, drive, free_port, metric, percentile, recorded_latencies, spawn,
    tree_rss_mb, wait_ready,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const N8N_VERSION: &str = "2.8.4";

#[derive(Parser)]
struct Args {
    /// The `n8n` executable (e.g. `target/n8n/node_modules/.bin/n8n`).
    #[arg(long)]
    n8n: Option<PathBuf>,
    /// Install n8n into `target/n8n` first (npm; about 2.3 GB).
    #[arg(long)]
    install: bool,
    /// Length of each tool's load.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Concurrent connections (one request in flight each).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Requests per tool at most.
    #[arg(long, default_value_t = 50_000)]
    max_events: u64,
    /// Requests per second in all; 0 = as fast as the connections go.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Body size in bytes.
    #[arg(long, default_value_t = 1024)]
    body_bytes: usize,
    /// Longest wait for a tool to start.
    #[arg(long, default_value_t = 180)]
    start_seconds: u64,
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

/// One tool's figures.
struct Figures {
    driven: Driven,
    handled_per_second: f64,
    /// Received → handled, in ms, sorted.
    handled_ms: Vec<u64>,
    peak_rss_mb: f64,
    idle_rss_mb: f64,
}

async fn hookhost(args: &Args, work: &Path) -> anyhow::Result<Figures> {
    let host = Host::start(
        work,
        &[("test-parse", "parse")],
        // The queue may hold the whole run: the figures, not back-pressure.
        "max_queue_depth = 10000000\n",
        Duration::from_secs(args.start_seconds),
    )
    .await?;
    println!("hookhost ready in {:.1} s", host.started_in.as_secs_f64());
    let (client, base) = (&host.client, &host.base);
    let (_, idle_rss_mb) = tree_rss_mb(host.pid());

    let load_started = Instant::now();
    let driven = drive(&format!("{base}/events/test.parse"), &args.load(), true).await;
    let scrape = || async {
        client
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await
    };
    // Handled: every attempt recorded, once the queue drained.
    let drain_limit = Instant::now() + Duration::from_secs(300);
    let mut handled = 0.0;
    loop {
        let text = scrape().await?;
        handled = metric(&text, "hookhost_attempts_total", "plugin=\"parse\"").max(handled);
        if metric(&text, "hookhost_queue_depth", "") == 0.0 || Instant::now() > drain_limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let handled_per_second = handled / load_started.elapsed().as_secs_f64();
    let handled_ms = recorded_latencies(client, base, &driven.ids, 2000).await?;
    let (peak_rss_mb, _) = tree_rss_mb(host.pid());
    Ok(Figures {
        driven,
        handled_per_second,
        handled_ms,
        peak_rss_mb,
        idle_rss_mb,
    })
}

/// The n8n workflow: Webhook (POST /webhook/bench, answer when the last node
/// ran) → Code (parse, check one field, return a small object).
fn workflow() -> serde_json::Value {
    serde_json::json!({
        "id": "hookhostBench001",
        "name": "hookhost side by side",
        "active": false,
        "nodes": [
            {
                "parameters": {
                    "httpMethod": "POST",
                    "path": "bench",
                    "responseMode": "lastNode",
                    "options": {}
                },
                "id": "3f0c2a9e-7b1d-4e25-9c60-1a2b3c4d5e01",
                "name": "Webhook",
                "type": "n8n-nodes-base.webhook",
                "typeVersion": 2,
                "position": [0, 0],
                "webhookId": "3f0c2a9e-7b1d-4e25-9c60-1a2b3c4d5e02"
            },
            {
                "parameters": {
                    "jsCode": "const body = $input.first().json.body;\nif (typeof body.amount !== 'number') { throw new Error('no amount'); }\nreturn [{ json: { ok: true, amount: body.amount } }];"
                },
                "id": "3f0c2a9e-7b1d-4e25-9c60-1a2b3c4d5e03",
                "name": "Code",
                "type": "n8n-nodes-base.code",
                "typeVersion": 2,
                "position": [220, 0]
            }
        ],
        "connections": {
            "Webhook": { "main": [[{ "node": "Code", "type": "main", "index": 0 }]] }
        },
        "settings": { "executionOrder": "v1" }
    })
}

fn install_n8n() -> anyhow::Result<PathBuf> {
    let dir = xtask::workspace_root().join("target").join("n8n");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("package.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "name": "hookhost-versus-n8n",
            "private": true,
            "dependencies": { "n8n": N8N_VERSION },
            // One of n8n's dependencies otherwise downloads from outside
            // the npm registry.
            "overrides": { "xlsx": "0.18.5" }
        }))?,
    )?;
    println!("installing n8n {N8N_VERSION} into {} (npm)", dir.display());
    let status = Command::new("npm")
        .current_dir(&dir)
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .status()
        .context("running npm")?;
    ensure!(status.success(), "npm install failed");
    Ok(dir.join("node_modules/.bin/n8n"))
}

async fn n8n(args: &Args, bin: &Path, work: &Path) -> anyhow::Result<Figures> {
    std::fs::create_dir_all(work)?;
    let home = work.join("n8n-home");
    std::fs::create_dir_all(&home)?;
    let port = free_port()?;
    let env = |cmd: &mut Command| {
        cmd.current_dir(work)
            .env("N8N_USER_FOLDER", &home)
            .env("N8N_PORT", port.to_string())
            .env("N8N_LISTEN_ADDRESS", "127.0.0.1")
            .env("N8N_HOST", "127.0.0.1")
            .env("N8N_DIAGNOSTICS_ENABLED", "false")
            .env("N8N_VERSION_NOTIFICATIONS_ENABLED", "false")
            .env("N8N_TEMPLATES_ENABLED", "false")
            .env("N8N_PERSONALIZATION_ENABLED", "false")
            .env("N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS", "false")
            .env("N8N_LOG_LEVEL", "warn")
            .env("DB_TYPE", "sqlite");
    };
    let file = work.join("workflow.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&workflow())?)?;
    for step in [
        vec![
            "import:workflow".to_owned(),
            format!("--input={}", file.display()),
        ],
        vec![
            "publish:workflow".to_owned(),
            "--id=hookhostBench001".to_owned(),
        ],
    ] {
        let mut cmd = Command::new(bin);
        cmd.args(&step);
        env(&mut cmd);
        let out = cmd
            .output()
            .with_context(|| format!("running {bin:?} {step:?}"))?;
        ensure!(
            out.status.success(),
            "n8n {} failed: {}{}",
            step[0],
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut cmd = Command::new(bin);
    cmd.arg("start");
    env(&mut cmd);
    let log = work.join("n8n.log");
    let mut child = spawn(cmd, &log)?;
    let url = format!("http://127.0.0.1:{port}/webhook/bench");
    let client = reqwest::Client::new();
    let body = hookhost_bench::body(args.body_bytes);
    let limit = Duration::from_secs(args.start_seconds);
    let started = wait_ready("n8n", &mut child, &log, limit, || {
        let probe = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send();
        async move { probe.await.is_ok_and(|r| r.status().is_success()) }
    })
    .await?;
    println!("n8n ready in {:.1} s", started.as_secs_f64());
    let (_, idle_rss_mb) = tree_rss_mb(child.0.id());
    let driven = drive(&url, &args.load(), false).await;
    let (peak_rss_mb, _) = tree_rss_mb(child.0.id());
    Ok(Figures {
        handled_per_second: driven.per_second(),
        handled_ms: driven.ack_us.iter().map(|us| us / 1000).collect(),
        driven,
        peak_rss_mb,
        idle_rss_mb,
    })
}

fn print(name: &str, f: &Figures) {
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "{name:<9} acked {:>8.0}/s ({} failed)  answer p50 {:>8.1} ms p99 {:>8.1} ms | handled {:>8.0}/s  received→handled p50 {:>6} ms p99 {:>6} ms | RSS idle {:>5.0} MB peak {:>5.0} MB",
        f.driven.per_second(),
        f.driven.failed,
        ms(percentile(&f.driven.ack_us, 0.50)),
        ms(percentile(&f.driven.ack_us, 0.99)),
        f.handled_per_second,
        percentile(&f.handled_ms, 0.50),
        percentile(&f.handled_ms, 0.99),
        f.idle_rss_mb,
        f.peak_rss_mb,
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = match (&args.n8n, args.install) {
        (_, true) => install_n8n()?,
        (Some(bin), false) => bin.clone(),
        (None, false) => bail!(
            "give --n8n PATH (the n8n executable) or --install (npm install n8n {N8N_VERSION} into target/n8n)"
        ),
    };
    let work = tempfile::tempdir()?;
    println!("versus, per tool: {}", args.load().describe());
    let ours = hookhost(&args, &work.path().join("hookhost")).await?;
    print("hookhost", &ours);
    let theirs = n8n(&args, &bin, &work.path().join("n8n")).await?;
    print("n8n", &theirs);
    println!(
        "ratios    acked {:.1}×, handled {:.1}×, p99 received→handled {:.1}× lower, peak RSS {:.1}× lower (hookhost / n8n)",
        ours.driven.per_second() / theirs.driven.per_second(),
        ours.handled_per_second / theirs.handled_per_second,
        percentile(&theirs.handled_ms, 0.99).max(1) as f64
            / percentile(&ours.handled_ms, 0.99).max(1) as f64,
        theirs.peak_rss_mb / ours.peak_rss_mb,
    );
    Ok(())
}
