//! Crash safety, proven: the real `hookhost` binary is SIGKILLed at random
//! moments while clients post, and restarted, for several cycles. Afterwards
//! every acknowledged event exists and was handled exactly once in effect.
//!
//! The figures are printed at the end (`cargo test -p hookhost --test crash
//! -- --nocapture`).

#![allow(clippy::print_stdout)]

mod common;

use common::{all_events, start};

use hookhost::store::Store;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

const CYCLES: usize = 10;
const CLIENTS: usize = 8;
const MAX_POSTS_PER_CLIENT: usize = 200;

/// Posts until told to stop; returns (idempotency key, event id) for every
/// post answered 2xx.
async fn post_until(
    base: String,
    client_no: usize,
    cycle: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<(String, String)> {
    let client = reqwest::Client::new();
    let mut acked = Vec::new();
    for n in 0..MAX_POSTS_PER_CLIENT {
        if *stop.borrow() {
            break;
        }
        let key = format!("c{cycle}-k{client_no}-{n}");
        let sent = client
            .post(format!("{base}/events/test.count"))
            .header("idempotency-key", &key)
            .header("content-type", "application/json")
            .body("{}")
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        let Ok(response) = sent else { break };
        if !response.status().is_success() {
            break;
        }
        let Ok(answer) = response.json::<Value>().await else {
            break;
        };
        acked.push((key, answer["id"].as_str().expect("id").to_owned()));
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill_and_their_effects_apply_once() {
    let built = xtask::build_plugins(&["test-counter"]).expect("build the counter plugin");
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    std::fs::copy(&built[0], plugins.join("counter.wasm")).expect("install counter");

    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    for cycle in 0..CYCLES {
        let mut host = start(&data, &plugins);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| tokio::spawn(post_until(host.base.clone(), c, cycle, stopped.clone())))
            .collect();
        let kill_after = Duration::from_millis(50 + rand::random::<u64>() % 400);
        tokio::time::sleep(kill_after).await;
        host.child.kill().expect("SIGKILL");
        host.child.wait().expect("reap");
        let _ = stop.send(true);
        for client in clients {
            for (key, id) in client.await.expect("client") {
                acked.insert(key, id);
            }
        }
    }
    assert!(
        acked.len() > CYCLES * 10,
        "too few acknowledged posts to prove anything: {}",
        acked.len()
    );

    // A last, clean run: let every delivery finish.
    let mut host = start(&data, &plugins);
    let deadline = Instant::now() + Duration::from_secs(120);
    let events = loop {
        let events = all_events(&host.base, "test.count").await;
        if events.iter().all(|e| e["status"] == "succeeded") {
            break events;
        }
        assert!(Instant::now() < deadline, "deliveries did not settle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stored: BTreeMap<String, String> = events
        .iter()
        .map(|e| {
            (
                e["idempotency_key"].as_str().expect("key").to_owned(),
                e["id"].as_str().expect("id").to_owned(),
            )
        })
        .collect();
    let mut lost = 0;
    for (key, id) in &acked {
        if stored.get(key) != Some(id) {
            lost += 1;
        }
    }
    // Re-posting an acknowledged key returns the original id.
    let client = reqwest::Client::new();
    for (key, id) in acked.iter().take(50) {
        let again: Value = client
            .post(format!("{}/events/test.count", host.base))
            .header("idempotency-key", key)
            .body("{}")
            .send()
            .await
            .expect("post")
            .json()
            .await
            .expect("json");
        assert_eq!(
            (again["id"].as_str(), again["duplicate"].as_bool()),
            (Some(id.as_str()), Some(true))
        );
    }
    let emitted = all_events(&host.base, "test.counted").await.len();
    // SIGTERM for a clean stop, then read the plugin's counter from the store.
    // The shell's builtin `kill`: a fresh machine may have no kill binary.
    Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", host.child.id())])
        .status()
        .expect("kill -TERM");
    assert!(
        host.child.wait().expect("wait").success(),
        "clean shutdown on SIGTERM"
    );
    let store = Store::open(&data).expect("open store");
    let count: usize = store
        .kv_get("counter", "count")
        .await
        .expect("kv")
        .map(|(_, v)| String::from_utf8_lossy(&v).parse().expect("number"))
        .unwrap_or(0);
    store.close().await.expect("close");

    let doubled = count.saturating_sub(stored.len()) + emitted.saturating_sub(stored.len());
    println!(
        "crash test: {CYCLES} SIGKILL cycles, {} events acknowledged, {} stored, {lost} lost, counter {count}, {emitted} emitted, {doubled} effects doubled",
        acked.len(),
        stored.len()
    );
    assert_eq!(lost, 0, "acknowledged events were lost");
    assert_eq!(
        count,
        stored.len(),
        "the counter must equal the number of distinct events"
    );
    assert_eq!(emitted, stored.len(), "one emitted event per handled event");
}
