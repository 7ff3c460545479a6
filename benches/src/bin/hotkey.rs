//! `cargo run --release -p hookhost-bench --bin hotkey -- [--hosts 3] [--events 3000]`
//!
//! One hot kv key across hosts sharing PostgreSQL: `--events` events posted
//! to `test.count`, spread over `--hosts` release hosts on one fresh
//! database (on `$HOOKHOST_TEST_POSTGRES`), where the counter test plugin
//! increments one kv key per event. Every attempt that read the key before
//! another committed conflicts and runs again, so this measures how fast
//! contending attempts settle, not how fast events are taken in.
//!
//! Prints how fast the events were acknowledged, how long after the first
//! post every event had been counted (attempts recorded on all hosts reached
//! the events acknowledged), the settle rate (events / that time), and
//! checks that the count in kv equals the events acknowledged.

#![allow(clippy::print_stdout)]

use anyhow::ensure;
use clap::Parser;
use hookhost::store::testing::TestDatabase;
use hookhost::store::{PgOptions, Store};
use hookhost_bench::{Host, Load, drive, metric};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Hosts sharing the database.
    #[arg(long, default_value_t = 3)]
    hosts: usize,
    /// Events posted in all.
    #[arg(long, default_value_t = 3000)]
    events: u64,
    /// Concurrent connections in all, spread over the hosts.
    #[arg(long, default_value_t = 24)]
    connections: usize,
    /// Longest wait for every event to be counted.
    #[arg(long, default_value_t = 300)]
    settle_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = TestDatabase::create()
        .await
        .ok_or_else(|| anyhow::anyhow!("no PostgreSQL server: set HOOKHOST_TEST_POSTGRES"))?;
    let env = [("HOOKHOST_DATABASE_URL", db.url.as_str())];
    let work = tempfile::tempdir()?;
    let mut hosts = Vec::new();
    for n in 0..args.hosts {
        let dir = work.path().join(format!("host-{n}"));
        std::fs::create_dir_all(&dir)?;
        hosts.push(
            Host::start_with_env(
                &dir,
                &[("test-counter", "counter")],
                "store = \"postgres\"\n",
                Duration::from_secs(120),
                &env,
            )
            .await?,
        );
    }
    let per_host = Load {
        seconds: 60,
        connections: (args.connections / args.hosts).max(1),
        max_events: args.events / args.hosts as u64,
        rate: 0,
        body_bytes: 64,
    };
    println!(
        "{} events to one hot kv key, over {} hosts on PostgreSQL, {} connections each",
        per_host.max_events * args.hosts as u64,
        args.hosts,
        per_host.connections
    );
    let began = Instant::now();
    let loads = hosts.iter().map(|h| {
        let url = format!("{}/events/test.count", h.base);
        let load = &per_host;
        async move { drive(&url, load, false).await }
    });
    let driven = futures_util::future::join_all(loads).await;
    let posted_in = began.elapsed();
    let acked: u64 = driven.iter().map(|d| d.acked).sum();
    let failed: u64 = driven.iter().map(|d| d.failed).sum();
    let counted = async || {
        let mut sum = 0.0;
        for h in &hosts {
            let text = h.metrics().await.unwrap_or_default();
            sum += metric(&text, "hookhost_attempts_total", "plugin=\"counter\"");
        }
        sum
    };
    let deadline = began + Duration::from_secs(args.settle_seconds);
    let mut settled = false;
    while Instant::now() < deadline {
        if counted().await >= acked as f64 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let settled_in = began.elapsed();
    let store = Store::connect(&PgOptions {
        url: db.url.clone(),
        pool_size: 2,
        lease: Duration::from_secs(60),
    })
    .await?;
    let count: u64 = store
        .kv_get("counter", "count")
        .await?
        .map(|(_, v)| String::from_utf8_lossy(&v).parse())
        .transpose()?
        .unwrap_or(0);
    store.close().await?;
    let rate = acked as f64 / settled_in.as_secs_f64();
    println!(
        "acknowledged {acked} ({failed} failed) in {:.1} s: {:.0}/s",
        posted_in.as_secs_f64(),
        acked as f64 / posted_in.as_secs_f64()
    );
    println!(
        "every event counted {:.1} s after the first post ({:.1} s after the last): {rate:.0} events/s settled; count {count}",
        settled_in.as_secs_f64(),
        (settled_in - posted_in).as_secs_f64()
    );
    hookhost_bench::figures(serde_json::json!({
        "hosts": args.hosts,
        "events": acked,
        "settled_per_s": rate,
        "settled_seconds": settled_in.as_secs_f64(),
        "count": count,
    }));
    ensure!(
        settled,
        "not every event was counted within {} s",
        args.settle_seconds
    );
    ensure!(
        count == acked,
        "the count is {count}, not the {acked} events acknowledged"
    );
    Ok(())
}
