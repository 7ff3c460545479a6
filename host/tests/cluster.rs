//! Scale-out, proven: three `hookhost` processes share one PostgreSQL
//! database under concurrent load, and one of them is SIGKILLed mid-load.
//! Afterwards every acknowledged event exists, every event was counted
//! exactly once in effect (the counter plugin's kv count equals the number
//! of distinct events, and it emitted one event per event), and no schedule
//! tick fired twice. Outbox requests queued on two hosts are sent once each.
//!
//! Needs a PostgreSQL server (see `hookhost::store::testing`); the figures
//! are printed at the end (`cargo test -p hookhost --test cluster --
//! --nocapture`).

#![allow(clippy::print_stdout)]

mod common;

use common::{all_events, get, install_test_plugin, serve_local, start_configured};
use hookhost::store::testing::TestDatabase;
use hookhost::store::{PgOptions, Store};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const HOSTS: usize = 3;
const CLIENTS_PER_HOST: usize = 3;
const POSTS_PER_CLIENT: usize = 120;

/// Posts up to [`POSTS_PER_CLIENT`] events, stopping at the first failure
/// (its host died); returns (idempotency key, event id) for every post
/// answered 2xx.
async fn post_all(base: String, client_no: usize) -> Vec<(String, String)> {
    let client = reqwest::Client::new();
    let mut acked = Vec::new();
    for n in 0..POSTS_PER_CLIENT {
        let key = format!("k{client_no}-{n}");
        let sent = client
            .post(format!("{base}/events/test.count"))
            .header("idempotency-key", &key)
            .header("content-type", "application/json")
            .body("{}")
            .timeout(Duration::from_secs(10))
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
async fn three_hosts_on_one_database_lose_one_and_nothing_is_lost_or_doubled() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let built = xtask::build_plugins(&["test-counter", "test-clock"]).expect("build the plugins");
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    std::fs::copy(&built[0], plugins.join("counter.wasm")).expect("install counter");
    std::fs::copy(&built[1], plugins.join("clock.wasm")).expect("install clock");
    // A short lease, so the dead host's deliveries move on soon; it must
    // outlast an attempt's deadline.
    let config = dir.path().join("hookhost.toml");
    std::fs::write(
        &config,
        "store = \"postgres\"\n\n[postgres]\nlease = \"3s\"\npool_size = 8\n\n[defaults]\ntimeout_ms = 2000\n",
    )
    .expect("config");
    let env = [("HOOKHOST_DATABASE_URL", db.url.as_str())];
    let mut hosts: Vec<_> = (0..HOSTS)
        .map(|n| {
            start_configured(
                &dir.path().join(format!("data-{n}")),
                &plugins,
                Some(&config),
                &env,
            )
        })
        .collect();

    let clients: Vec<_> = (0..HOSTS * CLIENTS_PER_HOST)
        .map(|c| tokio::spawn(post_all(hosts[c % HOSTS].base.clone(), c)))
        .collect();
    let kill_after = Duration::from_millis(300 + rand::random::<u64>() % 500);
    tokio::time::sleep(kill_after).await;
    hosts[0].child.kill().expect("SIGKILL");
    hosts[0].child.wait().expect("reap");
    let killed_at = Instant::now();
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    for client in clients {
        acked.extend(client.await.expect("client"));
    }
    let survivors = &hosts[1..];
    assert!(
        acked.len() >= (HOSTS - 1) * CLIENTS_PER_HOST * POSTS_PER_CLIENT,
        "the surviving hosts took every post: {} acknowledged",
        acked.len()
    );

    let base = survivors[0].base.clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    let events = loop {
        let events = all_events(&base, "test.count").await;
        if events.len() >= acked.len() && events.iter().all(|e| e["status"] == "succeeded") {
            break events;
        }
        if Instant::now() > deadline {
            let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
            for e in &events {
                let d = &e["deliveries"][0];
                *by_status
                    .entry(format!("{} {}", d["status"], d["last_outcome"]))
                    .or_default() += 1;
            }
            panic!(
                "deliveries did not settle: {} of {} acknowledged events stored, by status {by_status:?}",
                events.len(),
                acked.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let settled_after = killed_at.elapsed();
    let stored: BTreeMap<String, String> = events
        .iter()
        .map(|e| {
            (
                e["idempotency_key"].as_str().expect("key").to_owned(),
                e["id"].as_str().expect("id").to_owned(),
            )
        })
        .collect();
    let lost = acked
        .iter()
        .filter(|(key, id)| stored.get(*key) != Some(*id))
        .count();
    assert_eq!(lost, 0, "acknowledged events were lost");

    // An acknowledged key posted to another host answers the original id.
    let client = reqwest::Client::new();
    for (n, (key, id)) in acked.iter().take(30).enumerate() {
        let again: Value = client
            .post(format!(
                "{}/events/test.count",
                survivors[n % survivors.len()].base
            ))
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

    let emitted = all_events(&base, "test.counted").await.len();
    let ticks: Vec<u64> = all_events(&base, "schedule.every-second")
        .await
        .iter()
        .map(|e| {
            e["idempotency_key"]
                .as_str()
                .and_then(|k| k.rsplit(':').next())
                .and_then(|t| t.parse().ok())
                .expect("a schedule key ends in its tick")
        })
        .collect();
    let distinct_ticks: BTreeSet<u64> = ticks.iter().copied().collect();
    assert!(!ticks.is_empty(), "the schedule fired");
    assert_eq!(ticks.len(), distinct_ticks.len(), "a tick fired twice");

    let store = Store::connect(&PgOptions {
        url: db.url.clone(),
        pool_size: 2,
        lease: Duration::from_secs(60),
    })
    .await
    .expect("connect");
    let count: usize = store
        .kv_get("counter", "count")
        .await
        .expect("kv")
        .map(|(_, v)| String::from_utf8_lossy(&v).parse().expect("number"))
        .unwrap_or(0);
    store.close().await.expect("close");
    println!(
        "cluster test: {HOSTS} hosts, one SIGKILLed after {} ms; {} events acknowledged, {} stored, {lost} lost, counter {count}, {emitted} emitted, {} schedule ticks (none twice), settled {:.1} s after the kill",
        kill_after.as_millis(),
        acked.len(),
        stored.len(),
        ticks.len(),
        settled_after.as_secs_f64()
    );
    assert_eq!(
        count,
        stored.len(),
        "the counter must equal the number of distinct events"
    );
    assert_eq!(emitted, stored.len(), "one emitted event per event");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Waits until `host` serves `version` of the counter plugin (`None`: does
/// not serve it at all).
async fn wait_serving(base: &str, version: Option<&str>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let plugin = get(base, "/plugins/counter").await;
        let serving = (plugin["loaded"] == true).then(|| plugin["version"].as_str().unwrap_or(""));
        if serving == version {
            return plugin;
        }
        assert!(
            Instant::now() < deadline,
            "{base} serves {serving:?}, not {version:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn install(dir: &std::path::Path, bytes: &[u8]) {
    let tmp = dir.join(".counter.wasm.tmp");
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, dir.join("counter.wasm")).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_loaded_on_one_host_runs_on_every_host() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let built = xtask::build_plugins(&["test-counter"]).expect("build the counter plugin");
    let v1 = std::fs::read(&built[0]).expect("read");
    let v2 = xtask::variant(&v1, "v2");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("hookhost.toml");
    std::fs::write(&config, "store = \"postgres\"\n").expect("config");
    let env = [("HOOKHOST_DATABASE_URL", db.url.as_str())];
    // Each host its own plugins directory: only the store connects them.
    let plugins: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|h| {
            let p = dir.path().join(h).join("plugins");
            std::fs::create_dir_all(&p).expect("plugins dir");
            p
        })
        .collect();
    install(&plugins[0], &v1);
    let start = |n: usize| {
        start_configured(
            &dir.path().join(format!("data-{n}")),
            &plugins[n],
            Some(&config),
            &env,
        )
    };
    let a = start(0);
    let b = start(1);
    wait_serving(&b.base, Some(&sha256_hex(&v1))).await;
    assert_eq!(
        std::fs::read(plugins[1].join("counter.wasm")).expect("b's file"),
        v1,
        "a restart of b serves it too"
    );

    // A hot reload on one host rolls out to the others.
    install(&plugins[0], &v2);
    wait_serving(&a.base, Some(&sha256_hex(&v2))).await;
    wait_serving(&b.base, Some(&sha256_hex(&v2))).await;
    let posted: Value = reqwest::Client::new()
        .post(format!("{}/events/test.count", b.base))
        .body("{}")
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let id = posted["id"].as_str().expect("id");
    let deadline = Instant::now() + Duration::from_secs(30);
    let event = loop {
        let event = get(&b.base, &format!("/events/{id}")).await;
        if event["status"] == "succeeded" {
            break event;
        }
        assert!(Instant::now() < deadline, "the event was not handled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        event["deliveries"][0]["attempts"][0]["version"],
        sha256_hex(&v2),
        "the attempt records the version that ran"
    );

    // The sled backup format does not apply: the answer says what does.
    let backup = reqwest::get(format!("{}/backup", b.base))
        .await
        .expect("backup");
    assert_eq!(backup.status(), 409);
    assert!(backup.text().await.expect("text").contains("pg_dump"));

    // A host joining later serves the current version as soon as it listens.
    let c = start(2);
    let plugin = get(&c.base, "/plugins/counter").await;
    assert_eq!(plugin["version"], sha256_hex(&v2));

    // Removing the file on one host removes the plugin everywhere.
    std::fs::remove_file(plugins[0].join("counter.wasm")).expect("remove");
    wait_serving(&b.base, None).await;
    wait_serving(&c.base, None).await;
    assert!(!plugins[2].join("counter.wasm").exists());
    drop((a, b, c));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_cannot_give_a_plugin_a_timeout_past_the_lease_in_force() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("hookhost.toml");
    std::fs::write(
        &config,
        "store = \"postgres\"\n[postgres]\nlease = \"10s\"\n",
    )
    .expect("config");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    let env = [("HOOKHOST_DATABASE_URL", db.url.as_str())];
    let host = start_configured(&dir.path().join("data"), &plugins, Some(&config), &env);
    // The file now asks for a longer lease too, but the host keeps the one
    // it started with until it restarts.
    std::fs::write(
        &config,
        "store = \"postgres\"\n[postgres]\nlease = \"60s\"\n[defaults]\ntimeout_ms = 30000\n",
    )
    .expect("config");
    let answer = reqwest::Client::new()
        .post(format!("{}/config/reload", host.base))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("reload");
    assert_eq!(answer.status().as_u16(), 422);
    let body: Value = answer.json().await.expect("json");
    let error = body["error"].as_str().expect("error");
    assert!(error.contains("lease of 10000 ms"), "{error}");
}

/// How long the slow API below takes to answer each call.
const SLOW_CALL: Duration = Duration::from_millis(2_400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_that_outlasts_its_lease_keeps_it_and_runs_one_attempt_at_a_time() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    // A slow API on 127.0.0.1 that counts the calls it receives.
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().route(
        "/slow",
        axum::routing::post(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                // The time passing is what is under test: a claim longer
                // than its lease.
                tokio::time::sleep(SLOW_CALL).await;
                "ok"
            }
        }),
    );
    let (remote, server) = serve_local(app).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    install_test_plugin(&plugins, "test-caller", "caller");
    // Each run of the slow attempt takes most of its deadline, and a kv
    // conflict runs it twice: its one claim lasts about 1.6 leases.
    let config = dir.path().join("hookhost.toml");
    std::fs::write(
        &config,
        format!(
            "store = \"postgres\"\n[postgres]\nlease = \"3s\"\n\n\
             [defaults]\ntimeout_ms = 2900\n\n\
             [plugins.caller]\nallowed_hosts = [\"{remote}\"]\nmax_concurrency = 2\n"
        ),
    )
    .expect("config");
    let env = [("HOOKHOST_DATABASE_URL", db.url.as_str())];
    let host = start_configured(&dir.path().join("data"), &plugins, Some(&config), &env);
    assert_eq!(get(&host.base, "/plugins/caller").await["loaded"], true);

    let client = reqwest::Client::new();
    let post = |body: Value| {
        let client = client.clone();
        let url = format!("{}/events/test.call", host.base);
        async move {
            let answer: Value = client
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("post")
                .json()
                .await
                .expect("json");
            answer["id"].as_str().expect("id").to_owned()
        }
    };
    let settled = |id: String| {
        let base = host.base.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let event = get(&base, &format!("/events/{id}")).await;
                let status = &event["deliveries"][0]["status"];
                if status == "succeeded" || status == "dead" {
                    return event;
                }
                assert!(Instant::now() < deadline, "never settled: {event:#}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    // The counter read goes into the call's body, so the re-run after the
    // conflict makes its call again rather than answer it from the journal.
    let slow = post(serde_json::json!({
        "requests": [{ "url": format!("{remote}/slow"), "body": {} }],
        "count": "n",
        "attempt_in_body": true,
    }))
    .await;
    // While the slow attempt waits for its answer, a quick one writes the
    // counter it read: its first run ends in a kv conflict and runs again.
    let deadline = Instant::now() + Duration::from_secs(30);
    while calls.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the slow call never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let quick = post(serde_json::json!({ "requests": [], "count": "n" })).await;
    assert_eq!(settled(quick).await["deliveries"][0]["status"], "succeeded");
    let slow = settled(slow).await;
    let delivery = &slow["deliveries"][0];
    assert_eq!(delivery["status"], "succeeded", "{slow:#}");
    assert_eq!(delivery["attempts"].as_array().map(Vec::len), Some(1));
    // Had the lease run out, the reaper would have handed the delivery to a
    // second run while the first still held its claim: a third call.
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one run and its conflict re-run, never two at once: {slow:#}"
    );
    server.abort();
}

/// The outbox on a shared database: two hosts take the events, their
/// handlers queue one request each, and the hosts send them: each once,
/// under its own key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_requests_are_sent_once_by_hosts_sharing_a_database() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let keys = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = keys.clone();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let log = log.clone();
        async move {
            let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
            log.lock()
                .expect("log")
                .push(key.unwrap_or_default().to_owned());
            "ok"
        }
    });
    let (remote, server) = serve_local(app).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    install_test_plugin(&plugins, "test-caller", "caller");
    let config = dir.path().join("hookhost.toml");
    std::fs::write(
        &config,
        format!("store = \"postgres\"\n\n[plugins.caller]\nallowed_hosts = [\"{remote}\"]\n"),
    )
    .expect("config");
    let env = [("HOOKHOST_DATABASE_URL", db.url.as_str())];
    let hosts: Vec<_> = (0..2)
        .map(|n| {
            start_configured(
                &dir.path().join(format!("data-{n}")),
                &plugins,
                Some(&config),
                &env,
            )
        })
        .collect();
    const EVENTS: usize = 20;
    let client = reqwest::Client::new();
    for n in 0..EVENTS {
        let body = serde_json::json!({
            "requests": [{ "url": format!("{remote}/receipt"), "body": { "n": n }, "outbox": true }]
        });
        let answer = client
            .post(format!("{}/events/test.call", hosts[n % 2].base))
            .json(&body)
            .send()
            .await
            .expect("post");
        assert_eq!(answer.status(), 202);
    }
    let base = &hosts[0].base;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (events, sent) = loop {
        let events = all_events(base, "test.call").await;
        let sent = all_events(base, "hookhost.outbox").await;
        let settled = |list: &[Value]| list.iter().all(|e| e["status"] == "succeeded");
        if events.len() == EVENTS && sent.len() == EVENTS && settled(&events) && settled(&sent) {
            break (events, sent);
        }
        assert!(
            Instant::now() < deadline,
            "not settled: {} outbox events",
            sent.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    server.abort();
    let mut expected: Vec<String> = events
        .iter()
        .map(|e| format!("{}:caller:outbox:0", e["id"].as_str().expect("id")))
        .collect();
    let mut received = keys.lock().expect("log").clone();
    expected.sort();
    received.sort();
    assert_eq!(received, expected, "each request once, under its key");
    assert_eq!(sent.len(), EVENTS);
}
