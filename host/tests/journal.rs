//! Outbound calls across crashes: each event's handler calls a 127.0.0.1
//! API twice, `/pay` and then `/slow`, and the real `hookhost` binary is
//! SIGKILLed while some `/slow` call is in flight (so after `/pay` answered
//! and before the attempt committed), for several cycles. Afterwards every
//! event was handled; `/pay`, answered and journaled before the crash, was
//! received once per event, never again; and no call was ever received
//! under two keys: one whose answer was lost goes out again with its key.
//!
//! The figures are printed at the end (`cargo test -p hookhost --test
//! journal -- --nocapture`).

#![allow(clippy::print_stdout)]

mod common;

use common::{all_events, start_configured};

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CYCLES: usize = 5;
const EVENTS_PER_CYCLE: usize = 6;
/// How long `/slow` takes to answer: the window the host dies in.
const SLOW: Duration = Duration::from_millis(800);

/// What the API received: (idempotency key, body), in order.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_received_under_one_key_however_often_the_host_dies() {
    // The API: records each call; `/slow` tells the test it has one in
    // flight, then answers late.
    let (pays, slows) = (Received::default(), Received::default());
    let (in_flight, mut slow_calls) = tokio::sync::mpsc::unbounded_channel::<()>();
    let record = |log: &Received, headers: &HeaderMap, body: &Bytes| {
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = serde_json::from_slice(body).unwrap_or(Value::Null);
        log.lock().expect("log").push((key, body));
    };
    let pay_log = pays.clone();
    let slow_log = slows.clone();
    let app = axum::Router::new()
        .route(
            "/pay",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                record(&pay_log, &headers, &body);
                async { "paid" }
            }),
        )
        .route(
            "/slow",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                record(&slow_log, &headers, &body);
                let _ = in_flight.send(());
                async {
                    // The time passing is the window under test.
                    tokio::time::sleep(SLOW).await;
                    "done"
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let remote = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let built = xtask::build_plugins(&["test-caller"]).expect("build the plugin");
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    std::fs::copy(&built[0], plugins.join("caller.wasm")).expect("install caller");
    let config = dir.path().join("hookhost.toml");
    std::fs::write(
        &config,
        format!("[plugins.caller]\nallowed_hosts = [\"{remote}\"]\nmax_concurrency = 8\n"),
    )
    .expect("config");

    let client = reqwest::Client::new();
    let mut posted = 0;
    for cycle in 0..CYCLES {
        let mut host = start_configured(&data, &plugins, Some(&config), &[]);
        while slow_calls.try_recv().is_ok() {}
        for n in 0..EVENTS_PER_CYCLE {
            let call = |path: &str| json!({ "url": format!("{remote}/{path}"), "body": { "cycle": cycle, "n": n } });
            let body = json!({ "requests": [call("pay"), call("slow")] });
            let answer = client
                .post(format!("{}/events/test.call", host.base))
                .json(&body)
                .send()
                .await
                .expect("post");
            assert_eq!(answer.status(), 202);
            posted += 1;
        }
        // Dies while a `/slow` call is in flight: its `/pay` was answered
        // and journaled, its attempt not committed.
        tokio::time::timeout(Duration::from_secs(30), slow_calls.recv())
            .await
            .expect("a /slow call arrives")
            .expect("the API runs");
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 200)).await;
        host.child.kill().expect("SIGKILL");
        host.child.wait().expect("reap");
    }

    // A last, clean run: every delivery finishes.
    let host = start_configured(&data, &plugins, Some(&config), &[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let events = loop {
        let events = all_events(&host.base, "test.call").await;
        if events.len() == posted && events.iter().all(|e| e["status"] == "succeeded") {
            break events;
        }
        assert!(Instant::now() < deadline, "deliveries did not settle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    server.abort();

    // Each event's calls have the keys `<event>:caller:0` and `:1`.
    let ids: BTreeSet<&str> = events
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    let check = |log: &Received, index: u32| -> BTreeMap<String, usize> {
        let mut by_body: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
        for (key, body) in log.lock().expect("log").iter() {
            let event = key.strip_suffix(&format!(":caller:{index}"));
            assert!(
                event.is_some_and(|e| ids.contains(e)),
                "a call under an unknown key {key:?}"
            );
            by_body
                .entry(body.to_string())
                .or_default()
                .insert(key.clone());
            *per_key.entry(key.clone()).or_default() += 1;
        }
        for (body, keys) in &by_body {
            assert_eq!(keys.len(), 1, "{body} was received under {keys:?}");
        }
        assert_eq!(per_key.len(), posted, "every event made call {index}");
        per_key
    };
    let (paid, slowed) = (check(&pays, 0), check(&slows, 1));
    let again = |calls: &BTreeMap<String, usize>| calls.values().filter(|&&n| n > 1).count();
    println!(
        "journal crash test: {CYCLES} SIGKILL cycles, {posted} events; /pay received {} times, \
         /slow {} times ({} sent again with their keys after a crash)",
        paid.values().sum::<usize>(),
        slowed.values().sum::<usize>(),
        again(&slowed)
    );
    assert!(
        again(&slowed) >= CYCLES,
        "each crash cut a /slow call short"
    );
    let paid_again: Vec<_> = paid.iter().filter(|&(_, &n)| n > 1).collect();
    assert!(
        paid_again.is_empty(),
        "journaled calls were sent again: {paid_again:?}"
    );
}
