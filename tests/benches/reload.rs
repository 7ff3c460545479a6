//! Hot-reload latency and restart time, end to end on the real host.
//!
//! Run: `cargo bench -p hookhost-tests --bench reload`. Prints medians and
//! their ratio to a baseline measured in the same run:
//! - swap: a new version of the `stripe-ledger` example renamed into
//!   `plugins/` → the host serving it (seen over HTTP), against compiling and
//!   describing the same component offline (`hookhost::runtime::check_file`),
//!   the work a swap cannot avoid;
//! - restart: start to ready with 10 plugins whose compiled artifacts are
//!   cached, against the first start that had to compile them.

#![allow(clippy::print_stdout)]

use hookhost_tests::{Setup, TestHost, plugins, sha256_hex, variant};
use std::time::{Duration, Instant};

const SWAPS: usize = 20;
const RESTARTS: usize = 5;
const PLUGINS: usize = 10;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let original = std::fs::read(plugins::STRIPE_LEDGER).expect("read plugin");
    swap(&original).await;
    restart(&original).await;
}

async fn swap(original: &[u8]) {
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut offline = Vec::new();
    for n in 0..SWAPS {
        let path = scratch.path().join(format!("offline-{n}.wasm"));
        std::fs::write(&path, variant(original, &format!("offline-{n}"))).expect("write");
        let start = Instant::now();
        hookhost::runtime::check_file(&path, hookhost::Config::default().limits_for(""))
            .await
            .expect("check");
        offline.push(start.elapsed());
    }

    let host = Setup::new()
        .plugin("stripe-ledger", plugins::STRIPE_LEDGER)
        .start()
        .await;
    let mut swaps = Vec::new();
    for n in 0..SWAPS {
        let bytes = variant(original, &format!("swap-{n}"));
        let sha = sha256_hex(&bytes);
        let start = Instant::now();
        host.install_renamed("stripe-ledger", &bytes);
        wait_serving(&host, &sha).await;
        swaps.push(start.elapsed());
    }
    host.stop().await;
    report(
        "swap: rename into place → new version serving",
        &mut swaps,
        "offline compile + describe",
        &mut offline,
    );
}

async fn wait_serving(host: &TestHost, sha: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, plugin) = host.get("/plugins/stripe-ledger").await;
        if plugin["version"] == sha {
            return;
        }
        assert!(Instant::now() < deadline, "version {sha} never served");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn restart(original: &[u8]) {
    let mut setup = Setup::new();
    for n in 0..PLUGINS {
        setup = setup.plugin_bytes(&format!("p{n}"), &variant(original, &format!("p{n}")));
    }
    let start = Instant::now();
    let host = setup.start().await;
    let mut cold = vec![start.elapsed()];
    assert_loaded(&host, false).await;
    setup = host.stop().await;

    let mut warm = Vec::new();
    for _ in 0..RESTARTS {
        let start = Instant::now();
        let host = setup.start().await;
        warm.push(start.elapsed());
        assert_loaded(&host, true).await;
        setup = host.stop().await;
    }
    report(
        &format!("restart: start → ready with {PLUGINS} cached plugins"),
        &mut warm,
        "first start, compiling",
        &mut cold,
    );
}

async fn assert_loaded(host: &TestHost, from_cache: bool) {
    let (_, list) = host.get("/plugins").await;
    let loaded = list["plugins"].as_array().expect("plugins");
    assert_eq!(loaded.len(), PLUGINS, "{list:#}");
    assert!(
        loaded.iter().all(|p| p["from_cache"] == from_cache),
        "{list:#}"
    );
}

fn report(what: &str, samples: &mut [Duration], baseline_name: &str, baseline: &mut [Duration]) {
    let median = |s: &mut [Duration]| {
        s.sort();
        s[s.len() / 2]
    };
    let (m, b) = (median(samples), median(baseline));
    println!(
        "{what}: median {:.1} ms (max {:.1} ms, n={}); {baseline_name}: median {:.1} ms (n={}); ratio {:.2}",
        m.as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
        samples.len(),
        b.as_secs_f64() * 1e3,
        baseline.len(),
        m.as_secs_f64() / b.as_secs_f64(),
    );
}
