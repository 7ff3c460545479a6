//! `cargo run --release -p hookhost-bench --bin guests -- [--attempts 200]`
//!
//! The cost of a handler by language, measured in one run, beside the Rust
//! example: for the Rust `stripe-ledger`, the Python `order-tally`
//! (componentize-py) and the JavaScript `lead-router` (componentize-js),
//!
//! - component size;
//! - first load: compile with cranelift, link-check and `describe()`;
//! - cached load: the same file again in a new runtime, its compiled code
//!   read from the artifact cache;
//! - per attempt: a fresh sandbox, instantiate, `handle` one event with the
//!   example's own success body (median and p99 of `--attempts`), and the
//!   CPU it took, counted on every thread of the process;
//! - fuel per attempt and peak linear memory.
//!
//! A guest whose toolchain is missing is reported as skipped.

#![allow(clippy::print_stdout)]

use clap::Parser;
use hookhost::model::{DeliveryId, EventRecord, Outcome};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Attempts timed per guest.
    #[arg(long, default_value_t = 200)]
    attempts: usize,
    /// Keep each guest's compiled artifacts here between runs and load them
    /// from here when present: the compile column then shows the cached
    /// load (marked `*`), and a run skips cranelift's 10–15 s per guest.
    #[arg(long)]
    artifacts: Option<PathBuf>,
}

struct Guest {
    name: &'static str,
    lang: &'static str,
    topic: &'static str,
    body: &'static str,
}

const GUESTS: [Guest; 3] = [
    Guest {
        name: "stripe-ledger",
        lang: "Rust",
        topic: "stripe.payment_intent.succeeded",
        body: r#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","amount":2500,"currency":"eur"}}}"#,
    },
    Guest {
        name: "order-tally",
        lang: "Python",
        topic: "shop.order.paid",
        body: r#"{"order_id": "o-1", "customer": "c-42", "total_cents": 2500, "currency": "eur"}"#,
    },
    Guest {
        name: "lead-router",
        lang: "JavaScript",
        topic: "form.submitted",
        body: r#"{"email": "ada@example.com", "name": "Ada", "message": "Call me"}"#,
    },
];

fn component(guest: &Guest) -> Result<PathBuf, String> {
    if guest.lang == "Rust" {
        return xtask::build_plugins(&[guest.name]).map(|mut p| p.remove(0));
    }
    let g = xtask::polyglot::EXAMPLES
        .iter()
        .find(|g| g.name == guest.name)
        .ok_or("unknown guest")?;
    xtask::polyglot::build(g).map_err(|e| e.to_string())
}

/// Page faults this process has taken that needed no disk read
/// (`/proc/self/stat`, field 10).
fn minor_faults() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after_name = s.rsplit_once(") ")?.1;
            after_name.split_whitespace().nth(7)?.parse().ok()
        })
        .unwrap_or(0)
}

/// CPU time this process has used on all its threads, ended ones too, in
/// the kernel's ticks of 10 ms (`/proc/self/stat`: user and system).
fn process_cpu() -> Duration {
    let ticks: u64 = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let mut fields = s.rsplit_once(") ")?.1.split_whitespace().skip(11);
            let user: u64 = fields.next()?.parse().ok()?;
            let system: u64 = fields.next()?.parse().ok()?;
            Some(user + system)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Attempts run before the timed ones.
const WARM_UP: usize = 20;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "{:<11} {:<14} {:>8} {:>12} {:>11} {:>16} {:>8} {:>10} {:>12} {:>14}",
        "language",
        "guest",
        "size MB",
        "compile ms",
        "cached ms",
        "attempt µs p50/p99",
        "CPU µs",
        "fuel",
        "memory MB",
        "faults/attempt"
    );
    for guest in &GUESTS {
        let path = match component(guest) {
            Ok(p) => p,
            Err(why) => {
                println!("{:<11} {:<14} skipped: {why}", guest.lang, guest.name);
                continue;
            }
        };
        let dir = tempfile::tempdir()?;
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins)?;
        let file = plugins.join(format!("{}.wasm", guest.name));
        std::fs::copy(&path, &file)?;
        let size = std::fs::metadata(&file)?.len();

        let kept = args.artifacts.as_ref().map(|d| d.join(guest.name));
        std::fs::create_dir_all(dir.path().join("b"))?;
        let compiled = match kept.as_ref().filter(|k| k.is_dir()) {
            Some(kept) => {
                copy_dir(kept, &dir.path().join("b/artifacts"))?;
                false
            }
            None => true,
        };
        let compile = if compiled {
            let first = hookhost_bench::core(&dir.path().join("a"), &plugins).await?;
            let started = Instant::now();
            hookhost::reload::load_file(&first, &file)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", guest.name))?;
            let compile = started.elapsed();
            // Same artifacts, new runtime and registry: the cached path.
            std::fs::rename(
                dir.path().join("a/artifacts"),
                dir.path().join("b/artifacts"),
            )?;
            if let Some(kept) = &kept {
                copy_dir(&dir.path().join("b/artifacts"), kept)?;
            }
            Some(compile)
        } else {
            None
        };
        let cached_core = hookhost_bench::core(&dir.path().join("b"), &plugins).await?;
        let started = Instant::now();
        hookhost::reload::load_file(&cached_core, &file)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", guest.name))?;
        let cached = started.elapsed();
        let plugin = cached_core
            .registry
            .get(guest.name)
            .ok_or_else(|| anyhow::anyhow!("{} did not load", guest.name))?;
        // Kept artifacts of another build of the host are compiled again.
        anyhow::ensure!(
            plugin.from_cache || !compiled,
            "{} was compiled again",
            guest.name
        );
        let compile = match compile {
            Some(c) => format!("{:.0}", ms(c)),
            None => format!("{:.0}*", ms(cached)),
        };

        let record = EventRecord {
            id: cached_core.store.new_id(),
            topic: guest.topic.into(),
            idempotency_key: None,
            received_at_ms: hookhost::model::now_ms(),
            headers: Vec::new(),
            content_type: Some("application/json".into()),
            emitted_by: None,
            provenance: None,
        };
        let delivery = DeliveryId {
            event: record.id,
            seq: 0,
        };
        // The loads above wrote the artifacts: the kernel writing them back
        // while the attempts run would slow them (page faults wait on it).
        let _ = std::process::Command::new("sync").status();
        let mut times = Vec::with_capacity(args.attempts);
        let mut faults_before = 0;
        let mut cpu_before = Duration::ZERO;
        let (mut fuel, mut memory) = (0, 0);
        for n in 0..args.attempts + WARM_UP {
            let started = Instant::now();
            let run = cached_core
                .runtime
                .run_attempt(
                    &plugin,
                    cached_core.store.clone(),
                    delivery,
                    1,
                    &record,
                    guest.body.as_bytes(),
                )
                .await;
            let took = started.elapsed();
            anyhow::ensure!(
                run.attempt.outcome == Outcome::Ok,
                "{}: {:?} {}",
                guest.name,
                run.attempt.outcome,
                run.attempt.stderr
            );
            if n + 1 == WARM_UP {
                faults_before = minor_faults();
                cpu_before = process_cpu();
            }
            // The first ones warm the caches and the instance slot.
            if n >= WARM_UP {
                times.push(took);
            }
            fuel = run.attempt.fuel_consumed;
            memory = run.attempt.peak_memory_bytes;
        }
        let faults = (minor_faults() - faults_before) as f64 / args.attempts.max(1) as f64;
        let cpu_us = (process_cpu() - cpu_before).as_secs_f64() * 1e6 / args.attempts.max(1) as f64;
        times.sort();
        let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
        hookhost_bench::figures(serde_json::json!({
            "language": guest.lang,
            "guest": guest.name,
            "p50_us": p(0.5),
            "p99_us": p(0.99),
            "cpu_us_per_attempt": cpu_us,
            "faults_per_attempt": faults,
        }));
        println!(
            "{:<11} {:<14} {:>8.1} {:>12} {:>11.1} {:>16} {:>8.0} {:>10} {:>12.1} {:>14.1}",
            guest.lang,
            guest.name,
            size as f64 / 1e6,
            compile,
            ms(cached),
            format!("{:.0} / {:.0}", p(0.5), p(0.99)),
            cpu_us,
            fuel,
            memory as f64 / 1e6,
            faults,
        );
    }
    Ok(())
}

/// Copies the files of `from` into `to` (created), one level of
/// subdirectories deep at most, as the artifact cache keeps them.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
