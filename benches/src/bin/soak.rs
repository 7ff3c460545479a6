//! `cargo run --release -p hookhost-bench --bin soak -- [--minutes 10] [--rate 500]`
//!
//! Memory over time. Starts the release `hookhost serve` on 127.0.0.1 as its
//! own process with ten plugins (the two examples and eight test plugins),
//! and prints:
//!
//! 1. its idle RSS once every plugin serves and nothing is posted;
//! 2. its RSS every `--sample-seconds` while a steady load (`--rate`
//!    events/s to `test.parse`, one of the ten) runs for `--minutes`, with
//!    retention on (`--max-age`), so the store reaches a steady size as a
//!    long-running host does;
//! 3. the growth from the end of the warm-up (`--warmup-minutes`) to the
//!    largest later sample. The warm-up must outlast `--max-age` plus a
//!    retention pass: until then the store, and sled's memory with it,
//!    grows with every event by design.

#![allow(clippy::print_stdout)]

use clap::Parser;
use hookhost_bench::{Host, Load, drive, metric, tree_rss_mb};
use std::time::{Duration, Instant};

/// Ten plugins: package and installed name.
const PLUGINS: [(&str, &str); 10] = [
    ("stripe-ledger", "stripe-ledger"),
    ("github-digest", "github-digest"),
    ("test-noop", "noop"),
    ("test-parse", "parse"),
    ("test-counter", "counter"),
    ("test-sequence", "sequence"),
    ("test-caller", "caller"),
    ("test-snoop", "snoop"),
    ("test-trap", "trap"),
    ("test-always-retry", "always-retry"),
];

#[derive(Parser)]
struct Args {
    /// Length of the load.
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// Events per second.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Seconds between RSS samples.
    #[arg(long, default_value_t = 30)]
    sample_seconds: u64,
    /// Samples before this are warm-up: caches and pools filling.
    #[arg(long, default_value_t = 3)]
    warmup_minutes: u64,
    /// Retention `max_age` of the host under load.
    #[arg(long, default_value = "2m")]
    max_age: String,
    /// Seconds the host sits idle before its idle RSS is read.
    #[arg(long, default_value_t = 5)]
    idle_seconds: u64,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let work = tempfile::tempdir()?;
    let config = format!(
        "max_queue_depth = 10000000\n\n[retention]\nmax_age = \"{}\"\ncheck_every = \"10s\"\n",
        args.max_age
    );
    let host = Host::start(work.path(), &PLUGINS, &config, Duration::from_secs(120)).await?;
    println!(
        "soak: {} plugins ready in {:.1} s; {} events/s for {} min, retention {}",
        PLUGINS.len(),
        host.started_in.as_secs_f64(),
        args.rate,
        args.minutes,
        args.max_age
    );
    tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
    let (_, idle) = tree_rss_mb(host.pid());
    println!("idle RSS with {} plugins: {idle:.1} MB", PLUGINS.len());
    hookhost_bench::figures(serde_json::json!({ "idle_rss_mb": idle, "plugins": PLUGINS.len() }));

    let load = Load {
        seconds: args.minutes * 60,
        connections: args.connections,
        max_events: args.rate * args.minutes * 60 * 2,
        rate: args.rate,
        body_bytes: 1024,
    };
    let url = format!("{}/events/test.parse", host.base);
    let driver = tokio::spawn(async move { drive(&url, &load, false).await });
    let started = Instant::now();
    let warmup = Duration::from_secs(args.warmup_minutes * 60);
    let mut at_warmup: Option<f64> = None;
    let mut max_after = 0.0f64;
    let mut last = 0.0;
    println!("   min   RSS MB   queue   attempts");
    while !driver.is_finished() {
        tokio::time::sleep(Duration::from_secs(args.sample_seconds)).await;
        let (_, rss) = tree_rss_mb(host.pid());
        let text = host.metrics().await?;
        println!(
            "{:>6.1} {:>8.1} {:>7.0} {:>10.0}",
            started.elapsed().as_secs_f64() / 60.0,
            rss,
            metric(&text, "hookhost_queue_depth", ""),
            metric(&text, "hookhost_attempts_total", "plugin=\"parse\"")
        );
        if started.elapsed() >= warmup {
            match at_warmup {
                None => at_warmup = Some(rss),
                Some(_) => max_after = max_after.max(rss),
            }
        }
        last = rss;
    }
    let driven = driver.await?;
    let (peak, _) = tree_rss_mb(host.pid());
    println!(
        "acknowledged {:.0} events/s ({} failed); peak RSS {peak:.1} MB, last {last:.1} MB",
        driven.per_second(),
        driven.failed
    );
    for failure in driven.failures.iter().take(3) {
        println!("  a failed request: {failure}");
    }
    match at_warmup {
        Some(base) if max_after > 0.0 => println!(
            "RSS after warm-up {base:.1} MB, largest later {max_after:.1} MB: growth {:+.1} %",
            (max_after - base) / base * 100.0
        ),
        _ => println!("the load was shorter than the warm-up: no growth figure"),
    }
    Ok(())
}
