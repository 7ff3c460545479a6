//! Shadow runs: a candidate version runs on recorded events, its effects
//! captured and never committed, compared with what the live version did.

use hookhost_tests::{Setup, TestHost, plugins, sha256_hex, variant};
use serde_json::{Value, json};

async fn post_admin(host: &TestHost, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(host.url(path))
        .json(&body)
        .send()
        .await
        .expect("post");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The counter plugin live on three events: two succeed, one rejects.
async fn live_counter() -> TestHost {
    let host = Setup::new()
        .plugin("counter", plugins::TEST_COUNTER)
        .start()
        .await;
    for body in [json!({}), json!({ "fail": true }), json!({})] {
        let (status, answer) = host.post_json("test.count", &body).await;
        assert_eq!(status, 202, "{answer}");
        host.wait_settled(answer["id"].as_str().expect("id")).await;
    }
    host
}

fn differences(report: &Value) -> Vec<Vec<String>> {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            r["differences"]
                .as_array()
                .expect("differences")
                .iter()
                .map(|d| d.as_str().expect("name").to_owned())
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_code_under_a_new_version_matches_the_live_runs_and_commits_nothing() {
    let host = live_counter().await;
    // The live attempts record what they read and wrote.
    let (_, events) = host.get("/events?topic=test.count").await;
    let newest = events["events"][0]["id"].as_str().expect("id");
    let (_, event) = host.get(&format!("/events/{newest}")).await;
    let effects = &event["deliveries"][0]["attempts"][0]["effects"];
    assert_eq!(effects["committed"], true, "{event:#}");
    assert_eq!(effects["kv_reads"][0]["key"], "count");
    assert_eq!(effects["kv_reads"][0]["value"]["text"], "1");
    assert_eq!(effects["kv_writes"][0]["value"]["text"], "2");
    assert_eq!(effects["emitted"][0]["topic"], "test.counted");

    let candidate = variant(
        &std::fs::read(plugins::TEST_COUNTER).expect("component"),
        "v2",
    );
    let sha = sha256_hex(&candidate);
    let (status, uploaded) = host.upload_candidate("counter", candidate).await;
    assert_eq!(status, 201, "{uploaded}");
    assert_eq!(uploaded["version"], sha.as_str());

    let (status, report) =
        post_admin(&host, "/plugins/counter/shadow", json!({ "version": sha })).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["events"], 3, "{report:#}");
    assert_eq!(
        report["same"], 3,
        "kv reads replay what the live run saw: {report:#}"
    );
    assert_eq!(report["different"], 0);
    let first = &report["results"][0];
    assert_eq!(first["candidate"]["version"], sha.as_str());
    assert_eq!(first["effects_compared"], true);
    assert!(first["candidate"]["fuel_consumed"].as_u64().expect("fuel") > 0);

    // Nothing the candidate did was committed: no new emitted events, the
    // live version still serves, and the counter is where the live runs left it.
    let (_, counted) = host.get("/events?topic=test.counted").await;
    assert_eq!(counted["events"].as_array().expect("events").len(), 2);
    let (_, plugin) = host.get("/plugins/counter").await;
    assert_eq!(
        plugin["version"],
        sha256_hex(&std::fs::read(plugins::TEST_COUNTER).expect("component"))
    );
    let setup = host.stop().await;
    let store = hookhost::store::Store::open(setup.data_dir()).expect("reopen store");
    let (_, count) = store
        .kv_get("counter", "count")
        .await
        .expect("kv read")
        .expect("count stored");
    assert_eq!(count, b"2");
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_handler_is_reported_event_by_event() {
    let host = live_counter().await;
    // A handler that does nothing: same outcome where the live one
    // succeeded, but none of its writes or emits.
    let noop = std::fs::read(plugins::TEST_NOOP).expect("component");
    let (status, uploaded) = host.upload_candidate("counter", noop.clone()).await;
    assert_eq!(status, 201, "{uploaded}");
    let (_, report) = post_admin(
        &host,
        "/plugins/counter/shadow",
        json!({ "version": sha256_hex(&noop) }),
    )
    .await;
    assert_eq!(report["events"], 3, "{report:#}");
    assert_eq!(report["different"], 3);
    // Newest first: ok, reject, ok live.
    assert_eq!(
        differences(&report),
        [
            vec!["kv_writes", "emitted"],
            vec!["outcome"],
            vec!["kv_writes", "emitted"]
        ]
    );
    assert_eq!(report["results"][1]["live"]["outcome"]["kind"], "reject");
    assert_eq!(report["results"][1]["candidate"]["outcome"]["kind"], "ok");

    // A handler that panics: every outcome differs, and the panic shows.
    let trap = std::fs::read(plugins::TEST_TRAP).expect("component");
    host.upload_candidate("counter", trap.clone()).await;
    let (_, report) = post_admin(
        &host,
        "/plugins/counter/shadow",
        json!({ "version": sha256_hex(&trap), "limit": 2 }),
    )
    .await;
    assert_eq!(report["events"], 2, "the limit holds: {report:#}");
    assert_eq!(report["capped"], true);
    let candidate = &report["results"][0]["candidate"];
    assert_eq!(candidate["outcome"]["kind"], "trap");
    assert!(
        candidate["stderr"]
            .as_str()
            .expect("stderr")
            .contains("handler panicked"),
        "{candidate}"
    );
    assert!(
        differences(&report)
            .iter()
            .all(|d| d.contains(&"outcome".to_owned()))
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_candidates_and_unknown_versions_get_clear_errors() {
    let host = live_counter().await;
    let (status, answer) = host
        .upload_candidate("counter", b"\0asm but not really".to_vec())
        .await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .expect("error")
            .contains("not a usable component")
    );
    let (status, answer) = post_admin(
        &host,
        "/plugins/counter/shadow",
        json!({ "version": "ab".repeat(32) }),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    let (status, _) = post_admin(
        &host,
        "/plugins/counter/shadow",
        json!({ "version": "x", "colour": 1 }),
    )
    .await;
    assert_eq!(status, 422, "unknown fields are refused");
    let (status, _) = host.upload_candidate("../etc", b"x".to_vec()).await;
    assert!(status == 400 || status == 404, "{status}");
    host.stop().await;
}
