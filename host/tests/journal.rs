//! Outbound calls across crashes: each event's handler calls a 127.0.0.1
//! API twice, `/pay` and then `/slow`, and the real `hookhost` binary is
//! SIGKILLed while some `/slow` call is in flight (so after `/pay` answered
//! and before the attempt committed), for several cycles. Afterwards every
//! event was handled; `/pay`, answered and journaled before the crash, was
//! received once per event, never again; and no call was ever received
//! under two keys: one whose answer was lost goes out again with its key.
//! The same for the outbox: a request queued by a committed attempt and
//! cut short by the crash is sent again, under its one key.
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
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CYCLES: usize = 5;
const EVENTS_PER_CYCLE: usize = 6;
/// How long `/slow` takes to answer: the window the host dies in.
const SLOW: Duration = Duration::from_millis(800);

/// What the API received: (idempotency key, body), in order.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// The API: records each call under its path; `/slow` tells the test it has
/// one in flight, then answers late.
struct Api {
    remote: String,
    pays: Received,
    slows: Received,
    slow_calls: tokio::sync::mpsc::UnboundedReceiver<()>,
    server: tokio::task::JoinHandle<()>,
}

impl Api {
    async fn start() -> Self {
        let (pays, slows) = (Received::default(), Received::default());
        let (in_flight, slow_calls) = tokio::sync::mpsc::unbounded_channel::<()>();
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
        let (remote, server) = common::serve_local(app).await;
        Self {
            remote,
            pays,
            slows,
            slow_calls,
            server,
        }
    }

    /// Waits for a `/slow` call in flight, then a random moment more.
    async fn slow_call_in_flight(&mut self) {
        tokio::time::timeout(Duration::from_secs(30), self.slow_calls.recv())
            .await
            .expect("a /slow call arrives")
            .expect("the API runs");
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 200)).await;
    }
}

/// A data dir, a plugins dir with the caller, and a config allowing `remote`.
fn install(remote: &str) -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let built = xtask::build_plugins(&["test-caller"]).expect("build the plugin");
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    std::fs::copy(&built[0], plugins.join("caller.wasm")).expect("install caller");
    let config = dir.path().join("hookhost.toml");
    std::fs::write(
        &config,
        format!(
            "[plugins.caller]\nallowed_hosts = [\"{remote}\"]\nmax_concurrency = 8\n\
             retry = {{ max_attempts = 10, initial_backoff_ms = 10, max_backoff_ms = 100 }}\n"
        ),
    )
    .expect("config");
    (dir, data, plugins, config)
}

/// [`CYCLES`] times: starts the host, posts [`EVENTS_PER_CYCLE`] events to
/// `test.call` with the bodies `body(cycle, n)` gives, and SIGKILLs it while
/// a `/slow` call is in flight. Returns how many events were posted.
async fn crash_cycles(
    api: &mut Api,
    data: &std::path::Path,
    plugins: &std::path::Path,
    config: &std::path::Path,
    body: impl Fn(usize, usize) -> Value,
) -> usize {
    let client = reqwest::Client::new();
    let mut posted = 0;
    for cycle in 0..CYCLES {
        let mut host = start_configured(data, plugins, Some(config), &[]);
        while api.slow_calls.try_recv().is_ok() {}
        for n in 0..EVENTS_PER_CYCLE {
            let answer = client
                .post(format!("{}/events/test.call", host.base))
                .json(&body(cycle, n))
                .send()
                .await
                .expect("post");
            assert_eq!(answer.status(), 202);
            posted += 1;
        }
        api.slow_call_in_flight().await;
        host.child.kill().expect("SIGKILL");
        host.child.wait().expect("reap");
    }
    posted
}

/// Waits until `topic` has `count` events, all succeeded.
async fn settled(base: &str, topic: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let events = all_events(base, topic).await;
        if events.len() == count && events.iter().all(|e| e["status"] == "succeeded") {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} did not settle: {} of {count}",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_received_under_one_key_however_often_the_host_dies() {
    let mut api = Api::start().await;
    let remote = api.remote.clone();
    let (_dir, data, plugins, config) = install(&remote);
    // Dies while a `/slow` call is in flight: its `/pay` was answered and
    // journaled, its attempt not committed.
    let posted = crash_cycles(&mut api, &data, &plugins, &config, |cycle, n| {
        let call = |path: &str| json!({ "url": format!("{remote}/{path}"), "body": { "cycle": cycle, "n": n } });
        json!({ "requests": [call("pay"), call("slow")] })
    })
    .await;

    // A last, clean run: every delivery finishes.
    let host = start_configured(&data, &plugins, Some(&config), &[]);
    let events = settled(&host.base, "test.call", posted).await;
    api.server.abort();

    // Each event's calls have the keys `<event>:caller:0` and `:1`.
    let ids: BTreeSet<&str> = events
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    let (paid, slowed) = (
        by_key(&api.pays, &ids, ":caller:0"),
        by_key(&api.slows, &ids, ":caller:1"),
    );
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

/// How often each key was received, once each event's call arrived under
/// `<event><suffix>` and no body under two keys.
fn by_key(log: &Received, ids: &BTreeSet<&str>, suffix: &str) -> BTreeMap<String, usize> {
    let mut by_body: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for (key, body) in log.lock().expect("log").iter() {
        let event = key.strip_suffix(suffix);
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
    assert_eq!(
        per_key.len(),
        ids.len(),
        "every event's {suffix} call arrived"
    );
    per_key
}

/// The outbox across crashes: each event queues one request to `/slow`,
/// and the host dies while some are being sent (their attempts committed,
/// their sends not recorded). Afterwards each event had exactly one outbox
/// request, delivered, and never under two keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_request_survives_the_host_dying_and_keeps_its_key() {
    let mut api = Api::start().await;
    let remote = api.remote.clone();
    let (_dir, data, plugins, config) = install(&remote);
    let posted = crash_cycles(&mut api, &data, &plugins, &config, |cycle, n| {
        let receipt = json!({
            "url": format!("{remote}/slow"),
            "body": { "cycle": cycle, "n": n },
            "outbox": true,
        });
        json!({ "requests": [receipt] })
    })
    .await;
    let host = start_configured(&data, &plugins, Some(&config), &[]);
    let events = settled(&host.base, "test.call", posted).await;
    let queued = settled(&host.base, "hookhost.outbox", posted).await;
    api.server.abort();
    let ids: BTreeSet<&str> = events
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    let sent = by_key(&api.slows, &ids, ":caller:outbox:0");
    let again = sent.values().filter(|&&n| n > 1).count();
    println!(
        "outbox crash test: {CYCLES} SIGKILL cycles, {posted} events, {} outbox events; \
         received {} times ({again} sent again with their keys after a crash)",
        queued.len(),
        sent.values().sum::<usize>(),
    );
    assert!(again >= 1, "a crash cut an outbox send short");
}
