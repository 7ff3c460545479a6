//! Hot reload: versions swap without a restart and nothing is lost.

use hookhost_tests::{
    Setup, TestHost, attempts, plugins, post_spins, sha256_hex, sha256_of, spin_one_at_a_time,
    variant,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn noop_bytes() -> Vec<u8> {
    std::fs::read(plugins::TEST_NOOP).expect("read noop")
}

async fn post_noop(host: &TestHost) -> String {
    let (status, answer) = host.post_json("test.noop", &json!({})).await;
    assert_eq!(status, 202, "{answer}");
    answer["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_in_plugin_serves_without_a_restart() {
    let host = Setup::new().start().await;
    let (status, _) = host.get("/plugins/noop").await;
    assert_eq!(status, 404);

    host.install_renamed("noop", &noop_bytes());
    host.wait_version("noop", &sha256_of(plugins::TEST_NOOP))
        .await;
    let event = host.wait_settled(&post_noop(&host).await).await;
    assert_eq!(event["status"], "succeeded", "{event:#}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_swap_under_continuous_posts_and_each_attempt_names_its_version() {
    const MAX_POSTS: usize = 3000;
    let original = noop_bytes();
    let host = Arc::new(
        Setup::new()
            .plugin("noop", plugins::TEST_NOOP)
            .start()
            .await,
    );

    let stop = Arc::new(AtomicBool::new(false));
    let poster = {
        let (host, stop) = (host.clone(), stop.clone());
        tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stop.load(Ordering::Relaxed) && answers.len() < MAX_POSTS {
                answers.push(host.post_json("test.noop", &json!({})).await);
            }
            answers
        })
    };

    // Four new versions, alternately renamed into place and overwritten in place.
    let mut loaded_at: HashMap<String, u64> = HashMap::new();
    let first = host.wait_version("noop", &sha256_hex(&original)).await;
    loaded_at.insert(
        sha256_hex(&original),
        first["loaded_at_ms"].as_u64().expect("loaded_at"),
    );
    for n in 1..=4 {
        let bytes = variant(&original, &format!("v{n}"));
        if n % 2 == 1 {
            host.install_renamed("noop", &bytes);
        } else {
            host.install_in_place("noop", &bytes);
        }
        let plugin = host.wait_version("noop", &sha256_hex(&bytes)).await;
        loaded_at.insert(
            sha256_hex(&bytes),
            plugin["loaded_at_ms"].as_u64().expect("loaded_at"),
        );
    }
    stop.store(true, Ordering::Relaxed);
    let answers = poster.await.expect("poster");
    assert!(
        answers.len() > 20,
        "too few posts to mean anything: {}",
        answers.len()
    );

    let mut seen = HashMap::new();
    for (status, answer) in &answers {
        assert_eq!(
            *status, 202,
            "every post is acknowledged during swaps: {answer}"
        );
        let event = host.wait_settled(answer["id"].as_str().expect("id")).await;
        assert_eq!(event["status"], "succeeded", "{event:#}");
        let attempt = &attempts(&event)[0];
        let version = attempt["version"].as_str().expect("version").to_owned();
        let started = attempt["started_at_ms"].as_u64().expect("started");
        let since = *loaded_at
            .get(&version)
            .unwrap_or_else(|| panic!("attempt ran unknown version {version}"));
        assert!(
            since <= started,
            "attempt started at {started} on a version loaded at {since}"
        );
        *seen.entry(version).or_insert(0) += 1;
    }
    assert!(
        seen.len() >= 2,
        "posts spanned the swaps: versions used {seen:?}"
    );

    let (_, plugin) = host.get("/plugins/noop").await;
    let history: Vec<&str> = plugin["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|v| v["sha256"].as_str())
        .collect();
    assert_eq!(history.len(), 5, "{plugin:#}");
    Arc::into_inner(host).expect("sole owner").stop().await;
}

/// A delivery claimed ahead while its plugin's slot is taken runs on the
/// version swapped in before its slot came, not the one it was claimed
/// under.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_claimed_ahead_runs_on_the_version_swapped_in_while_it_waited() {
    let original = std::fs::read(plugins::TEST_LOOP).expect("read loop");
    let host = spin_one_at_a_time(Setup::new(), 3_000).await;
    let ids = post_spins(&host, 2).await;
    // The second is claimed while the first spins to its deadline.
    host.wait_event(&ids[1], |e| e["deliveries"][0]["status"] == "running")
        .await;
    let newer = variant(&original, "ahead");
    host.install_renamed("spin", &newer);
    host.wait_version("spin", &sha256_hex(&newer)).await;
    let first = host.wait_settled(&ids[0]).await;
    let second = host.wait_settled(&ids[1]).await;
    assert_eq!(
        attempts(&first)[0]["version"],
        sha256_hex(&original).as_str(),
        "the running attempt finishes on its version: {first:#}"
    );
    assert_eq!(
        attempts(&second)[0]["version"],
        sha256_hex(&newer).as_str(),
        "{second:#}"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_replacements_are_refused_while_the_old_version_serves() {
    let original = noop_bytes();
    let host = Setup::new()
        .plugin("noop", plugins::TEST_NOOP)
        .start()
        .await;
    let serving = sha256_hex(&original);
    host.wait_version("noop", &serving).await;

    let bad_describe = std::fs::read(plugins::TEST_BAD_DESCRIBE).expect("read");
    let broken: [(&str, Vec<u8>, &str); 5] = [
        (
            "truncated",
            original[..original.len() / 3].to_vec(),
            "invalid component",
        ),
        (
            "random bytes",
            b"MZ\x90\x00 definitely not wasm".to_vec(),
            "not a webassembly component",
        ),
        (
            "core module",
            b"\0asm\x01\x00\x00\x00".to_vec(),
            "core wasm module",
        ),
        (
            "other world",
            wat::parse_str("(component)").expect("wat"),
            "does not fit the hookhost:plugin/handler world",
        ),
        ("trapping describe", bad_describe, "describe() failed"),
    ];
    for (kind, bytes, reason) in broken {
        host.install_renamed("noop", &bytes);
        let plugin = host
            .wait_plugin("noop", |p| {
                p["last_error"]["error"]
                    .as_str()
                    .is_some_and(|e| e.contains(reason))
            })
            .await;
        assert_eq!(
            plugin["version"],
            serving.as_str(),
            "{kind}: the old version keeps serving"
        );
        let event = host.wait_settled(&post_noop(&host).await).await;
        assert_eq!(attempts(&event)[0]["version"], serving.as_str(), "{kind}");
    }
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_plugin_pauses_its_deliveries_and_re_adding_it_resumes_them() {
    let host = spin_one_at_a_time(Setup::new(), 300).await;

    // One attempt runs; the others wait their turn, claimed ahead, and are
    // given back once the plugin is gone.
    let ids = post_spins(&host, 3).await;
    std::fs::remove_file(host.plugin_path("spin")).expect("delete plugin");
    host.wait_plugin("spin", |p| p["loaded"] == false).await;
    let last = host
        .wait_event(&ids[2], |e| e["deliveries"][0]["status"] == "paused")
        .await;
    assert_eq!(last["status"], "pending", "{last:#}");

    host.install_renamed("spin", &std::fs::read(plugins::TEST_LOOP).expect("read"));
    for id in &ids {
        let event = host.wait_settled(id).await;
        assert_eq!(
            attempts(&event)[0]["outcome"]["kind"],
            "deadline",
            "{event:#}"
        );
    }
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_serves_the_previous_version_and_rewrites_the_file() {
    let original = noop_bytes();
    let newer = variant(&original, "v2");
    let host = Setup::new()
        .plugin("noop", plugins::TEST_NOOP)
        .start()
        .await;
    host.wait_version("noop", &sha256_hex(&original)).await;
    host.install_renamed("noop", &newer);
    host.wait_version("noop", &sha256_hex(&newer)).await;

    let response = reqwest::Client::new()
        .post(host.url("/plugins/noop/rollback"))
        .json(&json!({}))
        .send()
        .await
        .expect("rollback");
    assert_eq!(response.status(), 200);
    let plugin: Value = response.json().await.expect("json");
    assert_eq!(plugin["version"], sha256_hex(&original));
    assert_eq!(
        std::fs::read(host.plugin_path("noop")).expect("read"),
        original,
        "the file is rolled back too"
    );

    let event = host.wait_settled(&post_noop(&host).await).await;
    assert_eq!(attempts(&event)[0]["version"], sha256_hex(&original));

    let unknown = reqwest::Client::new()
        .post(host.url("/plugins/noop/rollback"))
        .json(&json!({ "sha256": "0".repeat(64) }))
        .send()
        .await
        .expect("rollback");
    assert_eq!(unknown.status(), 409);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_takes_unchanged_plugins_from_the_artifact_cache() {
    let host = Setup::new()
        .plugin("noop", plugins::TEST_NOOP)
        .start()
        .await;
    let (_, first) = host.get("/plugins/noop").await;
    assert_eq!(first["from_cache"], false);

    let host = host.stop().await.start().await;
    let (_, again) = host.get("/plugins/noop").await;
    assert_eq!(again["from_cache"], true, "{again:#}");
    assert_eq!(again["version"], first["version"]);
    let event = host.wait_settled(&post_noop(&host).await).await;
    assert_eq!(event["status"], "succeeded");
    host.stop().await;
}
