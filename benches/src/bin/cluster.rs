//! `cargo run --release -p hookhost-bench --bin cluster -- [--seconds 10] [--hosts 1,2,3]`
//!
//! The release host with the no-op test plugin, first on its embedded sled
//! store (one host), then 1, 2 and 3 hosts sharing one PostgreSQL database
//! (a fresh database on `$HOOKHOST_TEST_POSTGRES`, by default
//! `postgres://hookhost:hookhost@127.0.0.1:5432/postgres`, each run its own).
//! The same load is spread evenly over the hosts of a run; each run prints
//! acknowledged events/s, handled events/s (during the load, and until the
//! queue drained), and acknowledgement latency p50/p99, then the ratio of
//! each to the sled run.
//!
//! Every host, the database and the load generator share this machine's
//! cores: with 2 cores, more hosts add contention, not capacity, and the
//! figures say how much a cluster costs rather than how it scales.

#![allow(clippy::print_stdout)]

use clap::Parser;
use hookhost::store::testing::TestDatabase;
use hookhost_bench::{Host, Load, cpu_seconds, cpu_seconds_of, drive, metric, percentile};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Length of each load phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent connections in all, spread over the hosts.
    #[arg(long, default_value_t = 48)]
    connections: usize,
    /// Events per run at most.
    #[arg(long, default_value_t = 1_000_000)]
    max_events: u64,
    /// Body size in bytes.
    #[arg(long, default_value_t = 1024)]
    body_bytes: usize,
    /// The PostgreSQL runs: how many hosts each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    hosts: Vec<usize>,
    /// Longest wait for the queue to drain after the load.
    #[arg(long, default_value_t = 120)]
    drain_seconds: u64,
}

struct Run {
    label: String,
    acked: f64,
    handled_during: f64,
    handled_overall: f64,
    p50_ms: f64,
    p99_ms: f64,
    failed: u64,
    /// CPU seconds used during the load: database, hosts, load generator.
    cpu: (f64, f64, f64),
    load_seconds: f64,
    /// CPU seconds used after the load until the queue drained: database,
    /// hosts; and how long that took.
    drain_cpu: (f64, f64),
    drain_seconds: f64,
}

/// CPU seconds used so far by the database server, the hosts, and this
/// process (the load generator).
fn cpu_now(hosts: &[Host]) -> (f64, f64, f64) {
    (
        cpu_seconds_of("postgres"),
        hosts
            .iter()
            .map(|h| cpu_seconds(&h.pid().to_string()))
            .sum(),
        cpu_seconds("self"),
    )
}

async fn run(
    label: String,
    hosts: usize,
    config: &str,
    env: &[(&str, &str)],
    args: &Args,
) -> anyhow::Result<Run> {
    let work = tempfile::tempdir()?;
    let mut started = Vec::new();
    for n in 0..hosts {
        let dir = work.path().join(format!("host-{n}"));
        std::fs::create_dir_all(&dir)?;
        started.push(
            Host::start_with_env(
                &dir,
                &[("test-noop", "noop")],
                config,
                Duration::from_secs(120),
                env,
            )
            .await?,
        );
    }
    let per_host = Load {
        seconds: args.seconds,
        connections: (args.connections / hosts).max(1),
        max_events: args.max_events / hosts as u64,
        rate: 0,
        body_bytes: args.body_bytes,
    };
    let cpu_before = cpu_now(&started);
    let began = Instant::now();
    let loads = started.iter().map(|h| {
        let url = format!("{}/events/test.noop", h.base);
        let load = &per_host;
        async move { drive(&url, load, false).await }
    });
    let driven = futures_util::future::join_all(loads).await;
    let load_time = began.elapsed();
    let cpu_after = cpu_now(&started);
    let handled = async || {
        let mut sum = 0.0;
        for h in &started {
            sum += metric(
                &h.metrics().await.unwrap_or_default(),
                "hookhost_attempts_total",
                "plugin=\"noop\"",
            );
        }
        sum
    };
    let handled_at_stop = handled().await;
    let acked: u64 = driven.iter().map(|d| d.acked).sum();
    let deadline = Instant::now() + Duration::from_secs(args.drain_seconds);
    while handled().await < acked as f64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained = began.elapsed();
    let cpu_drained = cpu_now(&started);
    let mut ack_us: Vec<u64> = driven.iter().flat_map(|d| d.ack_us.clone()).collect();
    ack_us.sort_unstable();
    let run = Run {
        label,
        acked: acked as f64 / load_time.as_secs_f64(),
        handled_during: handled_at_stop / load_time.as_secs_f64(),
        handled_overall: handled().await / drained.as_secs_f64(),
        p50_ms: percentile(&ack_us, 0.5) as f64 / 1000.0,
        p99_ms: percentile(&ack_us, 0.99) as f64 / 1000.0,
        failed: driven.iter().map(|d| d.failed).sum(),
        cpu: (
            cpu_after.0 - cpu_before.0,
            cpu_after.1 - cpu_before.1,
            cpu_after.2 - cpu_before.2,
        ),
        load_seconds: load_time.as_secs_f64(),
        drain_cpu: (cpu_drained.0 - cpu_after.0, cpu_drained.1 - cpu_after.1),
        drain_seconds: (drained - load_time).as_secs_f64(),
    };
    for h in &started {
        if let Some(first) = driven.iter().flat_map(|d| d.failures.first()).next() {
            println!("  first failure: {first} (host log: {})", h.log.display());
            break;
        }
    }
    Ok(run)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "{} s per run, {} connections in all, {} B bodies, no-op handler",
        args.seconds, args.connections, args.body_bytes
    );
    let mut runs = vec![run("sled, 1 host".into(), 1, "", &[], &args).await?];
    for &hosts in &args.hosts {
        let db = TestDatabase::create()
            .await
            .ok_or_else(|| anyhow::anyhow!("no PostgreSQL server: set HOOKHOST_TEST_POSTGRES"))?;
        let env = [("HOOKHOST_DATABASE_URL", db.url.as_str())];
        let label = format!(
            "postgres, {hosts} host{}",
            if hosts == 1 { "" } else { "s" }
        );
        runs.push(run(label, hosts, "store = \"postgres\"\n", &env, &args).await?);
    }
    let base = runs[0].acked.max(1.0);
    let base_handled = runs[0].handled_overall.max(1.0);
    for r in &runs {
        hookhost_bench::figures(serde_json::json!({
            "run": r.label,
            "acks_per_s": r.acked,
            "handled_during_load_per_s": r.handled_during,
            "handled_until_drained_per_s": r.handled_overall,
        }));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    println!("\nWhere the CPU went during each load ({cores} cores):\n");
    println!(
        "| store | database | hosts | load generator | idle or elsewhere | after the load, until drained: database / hosts |"
    );
    println!("|---|---|---|---|---|---|");
    for r in &runs {
        let total = r.load_seconds * cores;
        let share = |s: f64| format!("{s:.1} s ({:.0} %)", 100.0 * s / total);
        let drain_total = (r.drain_seconds * cores).max(f64::EPSILON);
        println!(
            "| {} | {} | {} | {} | {} | {:.1} s: {:.0} % / {:.0} % |",
            r.label,
            share(r.cpu.0),
            share(r.cpu.1),
            share(r.cpu.2),
            share((total - r.cpu.0 - r.cpu.1 - r.cpu.2).max(0.0)),
            r.drain_seconds,
            100.0 * r.drain_cpu.0 / drain_total,
            100.0 * r.drain_cpu.1 / drain_total,
        );
    }
    println!(
        "\n| store | acks/s | handled/s during load | handled/s until drained | ack p50 / p99 | failed | acks vs sled | handled vs sled |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &runs {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.1} / {:.1} ms | {} | {:.2}x | {:.2}x |",
            r.label,
            r.acked,
            r.handled_during,
            r.handled_overall,
            r.p50_ms,
            r.p99_ms,
            r.failed,
            r.acked / base,
            r.handled_overall / base_handled
        );
    }
    Ok(())
}
