//! Replays and dead letters: re-running work on purpose.

use hookhost_tests::{Setup, TestHost, plugins, sha256_hex, variant};
use serde_json::{Value, json};

async fn post_admin(host: &TestHost, path: &str, body: Option<Value>) -> (u16, Value) {
    // The admin API takes a state change only as JSON.
    let body = body.unwrap_or_else(|| json!({}));
    let request = reqwest::Client::new().post(host.url(path)).json(&body);
    let response = request.send().await.expect("post");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn settle_new(host: &TestHost, topic: &str) -> Value {
    let (status, answer) = host.post_json(topic, &json!({})).await;
    assert_eq!(status, 202, "{answer}");
    host.wait_settled(answer["id"].as_str().expect("id")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_a_retry_gets_a_full_new_budget() {
    let host = Setup::new()
        .plugin("flaky", plugins::TEST_ALWAYS_RETRY)
        .plugin("counter", plugins::TEST_COUNTER)
        .start()
        .await;
    let dead = settle_new(&host, "test.retry").await;
    let delivery = dead["deliveries"][0]["id"]
        .as_str()
        .expect("delivery")
        .to_owned();
    let ok = settle_new(&host, "test.count").await;

    let (_, list) = host.get("/dead-letters").await;
    let letters = list["dead_letters"].as_array().expect("list");
    assert_eq!(letters.len(), 1, "{list:#}");
    assert_eq!(letters[0]["delivery"], delivery.as_str());
    assert_eq!(letters[0]["topic"], "test.retry");
    assert_eq!(letters[0]["attempts"], 3);
    assert_eq!(letters[0]["last_outcome"]["kind"], "retry");
    let (_, other) = host.get("/dead-letters?plugin=counter").await;
    assert_eq!(other["dead_letters"], json!([]));

    let (status, answer) =
        post_admin(&host, &format!("/dead-letters/{delivery}/retry"), None).await;
    assert_eq!(status, 202, "{answer}");
    let id = dead["event"]["id"].as_str().expect("id");
    let again = host
        .wait_event(id, |e| {
            e["status"] == "dead"
                && e["deliveries"][0]["attempts"]
                    .as_array()
                    .is_some_and(|a| a.len() == 6)
        })
        .await;
    let numbers: Vec<u64> = again["deliveries"][0]["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter_map(|a| a["number"].as_u64())
        .collect();
    assert_eq!(
        numbers,
        [1, 2, 3, 4, 5, 6],
        "three more attempts after the re-drive"
    );

    let succeeded = ok["deliveries"][0]["id"].as_str().expect("delivery");
    let (status, _) = post_admin(&host, &format!("/dead-letters/{succeeded}/retry"), None).await;
    assert_eq!(status, 409, "only dead letters can be re-driven");
    let (status, all) = post_admin(&host, "/dead-letters/retry?plugin=flaky", None).await;
    assert_eq!((status, all["retried"].clone()), (200, json!(1)));
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_runs_the_handler_again_and_emit_keys_keep_emits_single() {
    let host = Setup::new()
        .plugin("counter", plugins::TEST_COUNTER)
        .start()
        .await;
    let first = settle_new(&host, "test.count").await;
    let id = first["event"]["id"].as_str().expect("id");

    let (status, answer) = post_admin(&host, &format!("/events/{id}/replay"), None).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["deliveries"], json!([format!("{id}-1")]));
    let replayed = host
        .wait_event(id, |e| {
            e["deliveries"].as_array().is_some_and(|d| d.len() == 2) && e["status"] == "succeeded"
        })
        .await;
    let fields = &replayed["deliveries"][1]["attempts"][0]["logs"][0]["fields"];
    assert_eq!(
        fields[1],
        json!(["after", "2"]),
        "the replay ran the handler: {replayed:#}"
    );
    let (_, counted) = host.get("/events?topic=test.counted").await;
    assert_eq!(
        counted["events"].as_array().expect("events").len(),
        1,
        "the emit's key made the second emit a duplicate"
    );

    let (status, _) = post_admin(&host, "/events/01ARZ3NDEKTSV4RRFFQ69G5FAV/replay", None).await;
    assert_eq!(status, 404);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_pinned_to_an_earlier_version_runs_that_version() {
    let original = std::fs::read(plugins::TEST_NOOP).expect("read");
    let newer = variant(&original, "v2");
    let host = Setup::new()
        .plugin("noop", plugins::TEST_NOOP)
        .start()
        .await;
    let event = settle_new(&host, "test.noop").await;
    let id = event["event"]["id"].as_str().expect("id");
    host.install_renamed("noop", &newer);
    host.wait_version("noop", &sha256_hex(&newer)).await;

    let old = sha256_hex(&original);
    let (status, answer) = post_admin(
        &host,
        &format!("/events/{id}/replay"),
        Some(json!({ "plugin": "noop", "version": old })),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let replayed = host
        .wait_event(id, |e| {
            e["deliveries"].as_array().is_some_and(|d| d.len() == 2) && e["status"] == "succeeded"
        })
        .await;
    assert_eq!(
        replayed["deliveries"][1]["attempts"][0]["version"],
        old.as_str()
    );
    assert_eq!(replayed["deliveries"][1]["pinned_version"], old.as_str());

    let (status, _) = post_admin(
        &host,
        &format!("/events/{id}/replay"),
        Some(json!({ "plugin": "noop", "version": "f".repeat(64) })),
    )
    .await;
    assert_eq!(status, 404, "a version the plugin never had");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_replay_takes_a_filter_and_a_cap() {
    let host = Setup::new()
        .plugin("noop", plugins::TEST_NOOP)
        .start()
        .await;
    for _ in 0..3 {
        settle_new(&host, "test.noop").await;
    }
    let (status, answer) = post_admin(
        &host,
        "/replay",
        Some(json!({ "topic": "test.*", "limit": 2 })),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({ "events": 2, "deliveries": 2, "capped": true })
    );
    let (_, answer) = post_admin(&host, "/replay", Some(json!({ "topic": "other.*" }))).await;
    assert_eq!(answer["events"], 0);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_retry_policy_overrides_the_plugins_and_its_schedule_survives_a_restart() {
    use hookhost::model::RetryPolicy;
    let host = Setup::new()
        .plugin("flaky", plugins::TEST_ALWAYS_RETRY)
        .limits("flaky", |s| {
            s.retry = Some(RetryPolicy {
                max_attempts: 4,
                initial_backoff_ms: 600_000,
                max_backoff_ms: 600_000,
            })
        })
        .start()
        .await;
    let (_, answer) = host.post_json("test.retry", &json!({})).await;
    let id = answer["id"].as_str().expect("id").to_owned();
    // The event's deliveries and attempts are read one after the other, so
    // wait for both to show the first attempt recorded.
    let waiting = host
        .wait_event(&id, |e| {
            e["deliveries"][0]["status"] == "pending"
                && e["deliveries"][0]["attempts"]
                    .as_array()
                    .is_some_and(|a| a.len() == 1)
        })
        .await;
    let delivery = &waiting["deliveries"][0];
    assert_eq!(delivery["status"], "pending", "{waiting:#}");
    let next = delivery["next_attempt_at_ms"]
        .as_u64()
        .expect("next attempt is visible");
    let started = delivery["attempts"][0]["started_at_ms"]
        .as_u64()
        .expect("start");
    assert!(
        next >= started && next <= started + 600_000 + 1_000,
        "within the override's backoff"
    );

    let host = host.stop().await.start().await;
    let (_, after) = host.get(&format!("/events/{id}")).await;
    assert_eq!(after["deliveries"][0]["status"], "pending");
    assert_eq!(
        after["deliveries"][0]["next_attempt_at_ms"], next,
        "the schedule is durable"
    );
    let (_, plugin) = host.get("/plugins/flaky").await;
    assert_eq!(
        plugin["retry"]["max_attempts"], 4,
        "the operator's policy wins: {plugin:#}"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_streams_matching_events_with_their_outcomes_as_json_lines() {
    let host = Setup::new()
        .plugin("counter", plugins::TEST_COUNTER)
        .start()
        .await;
    let first = settle_new(&host, "test.count").await;
    let since = first["event"]["received_at_ms"].as_u64().expect("time") + 1;
    // Make the next events provably later than the first.
    while hookhost::model::now_ms() < since {
        tokio::task::yield_now().await;
    }
    let second = settle_new(&host, "test.count").await;
    let (status, _) = host.post_json("other.topic", &json!({ "x": 1 })).await;
    assert_eq!(status, 202);

    let export = |query: &'static str| {
        let url = host.url(&format!("/export?{query}"));
        async move {
            let response = reqwest::get(url).await.expect("export");
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["content-type"], "application/x-ndjson");
            let text = response.text().await.expect("body");
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
                .collect::<Vec<_>>()
        }
    };
    let all = export("").await;
    assert_eq!(all.len(), 5, "3 posted, 2 emitted by the counter");
    let counted = export("topic=test.count").await;
    assert_eq!(counted.len(), 2);
    assert_eq!(
        counted[0]["event"]["id"], second["event"]["id"],
        "newest first"
    );
    assert_eq!(counted[0]["status"], "succeeded");
    assert_eq!(counted[0]["deliveries"][0]["plugin"], "counter");
    assert_eq!(counted[0]["deliveries"][0]["last_outcome"]["kind"], "ok");
    assert_eq!(counted[0]["event"]["body"], json!({}));
    let later = reqwest::get(host.url(&format!("/export?topic=test.count&since_ms={since}")))
        .await
        .expect("export")
        .text()
        .await
        .expect("body");
    assert_eq!(later.lines().count(), 1, "{later}");
    let (status, _) = host.get("/export?status=nonsense").await;
    assert_eq!(status, 400);
    host.stop().await;
}
