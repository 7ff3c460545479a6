//! Exact replay: a recorded attempt re-executed offline with what it read
//! (its event, kv values, journaled calls, clocks and random) does what it
//! did, byte for byte; a handler that depends on something the host does
//! not record is reported as diverged.

use hookhost_tests::{Setup, TestHost, plugins};
use serde_json::{Value, json};

/// `POST /events/{id}/replay-exact` with `body`.
async fn replay_exact(host: &TestHost, id: &str, body: Value) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .post(host.url(&format!("/events/{id}/replay-exact")))
        .json(&body)
        .send()
        .await
        .expect("replay");
    let status = answer.status().as_u16();
    (status, answer.json().await.expect("json"))
}

async fn settled(host: &TestHost, topic: &str, body: &Value) -> Value {
    let (status, answer) = host.post_json(topic, body).await;
    assert_eq!(status, 202, "{answer}");
    host.wait_settled(answer["id"].as_str().expect("id")).await
}

/// A receiver on 127.0.0.1 that answers every request.
async fn receiver() -> (String, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().fallback(|| async { "ok" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_recorded_attempts_of_the_stripe_example_replay_byte_for_byte() {
    let (url, server) = receiver().await;
    let allowed = url.clone();
    let host = Setup::new()
        .plugin("stripe-ledger", plugins::STRIPE_LEDGER)
        .limits("stripe-ledger", |s| {
            s.allowed_hosts = vec![allowed];
            s.config
                .insert("large_payment_cents".into(), "10000".into());
            s.config.insert("notify_url".into(), format!("{url}/large"));
        })
        .start()
        .await;
    let mut ids = Vec::new();
    for n in 0..100u64 {
        // Five customers; every seventh payment is large and notified.
        let cents = if n % 7 == 0 { 50_000 + n } else { 1_000 + n };
        let payment = json!({
            "id": format!("evt_{n}"),
            "type": "payment_intent.succeeded",
            "data": { "object": {
                "id": format!("pi_{n}"), "amount": cents, "amount_received": cents,
                "currency": "eur", "customer": format!("cus_{}", n % 5)
            }}
        });
        let event = settled(&host, "stripe.payment_intent.succeeded", &payment).await;
        assert_eq!(event["status"], "succeeded", "{event:#}");
        ids.push(event["event"]["id"].as_str().expect("id").to_owned());
    }
    server.abort();
    let mut exact = 0;
    for id in &ids {
        let (status, report) = replay_exact(&host, id, json!({})).await;
        assert_eq!(status, 200, "{report:#}");
        assert_eq!(report["exact"], true, "{report:#}");
        assert_eq!(report["outcome"]["kind"], "ok", "{report:#}");
        exact += 1;
    }
    assert_eq!(exact, 100);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clocks_and_random_are_replayed_as_they_were_read() {
    let host = Setup::new()
        .plugin("dice", plugins::TEST_DICE)
        .start()
        .await;
    let first = settled(&host, "test.dice", &json!({})).await;
    let second = settled(&host, "test.dice", &json!({})).await;
    let writes =
        |event: &Value| event["deliveries"][0]["attempts"][0]["effects"]["kv_writes"].clone();
    assert_ne!(
        writes(&first),
        writes(&second),
        "two real runs read different values"
    );
    let inputs = &first["deliveries"][0]["attempts"][0]["inputs"];
    assert!(
        inputs["wall_ns"].as_array().is_some_and(|r| !r.is_empty())
            && inputs["random_seed"].is_string(),
        "the attempt's record keeps its reads: {inputs:#}"
    );
    for event in [&first, &second] {
        let id = event["event"]["id"].as_str().expect("id");
        let (_, report) = replay_exact(&host, id, json!({})).await;
        assert_eq!(report["exact"], true, "{report:#}");
    }
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_reads_what_is_not_recorded_is_reported_as_diverged() {
    let (url, server) = receiver().await;
    let allowed = url.clone();
    let host = Setup::new()
        .plugin("dice", plugins::TEST_DICE)
        .plugin("legacy", plugins::TEST_LEGACY)
        .limits("legacy", |s| s.allowed_hosts = vec![allowed])
        .start()
        .await;
    // More clock reads than a record keeps: the replay cannot give the
    // same values past them.
    let spun = settled(&host, "test.dice", &json!({ "clock_reads": 1000 })).await;
    let id = spun["event"]["id"].as_str().expect("id");
    let (_, report) = replay_exact(&host, id, json!({})).await;
    assert_eq!(report["exact"], false, "{report:#}");
    let what: Vec<_> = report["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .map(|d| d["what"].as_str().expect("what").to_owned())
        .collect();
    assert!(what.contains(&"inputs".to_owned()), "{report:#}");

    // A 0.1.0 handler calls out through raw wasi:http, which is not
    // journaled: offline, its call is refused and it writes otherwise.
    let called = settled(&host, "test.legacy", &json!({ "get": format!("{url}/x") })).await;
    server.abort();
    assert_eq!(called["status"], "succeeded", "{called:#}");
    let id = called["event"]["id"].as_str().expect("id");
    let (_, report) = replay_exact(&host, id, json!({})).await;
    assert_eq!(report["exact"], false, "{report:#}");
    assert!(
        report["differences"].to_string().contains("effects"),
        "{report:#}"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_version_or_a_wrong_request_is_reported_not_passed() {
    let host = Setup::new()
        .plugin("dice", plugins::TEST_DICE)
        .start()
        .await;
    let event = settled(&host, "test.dice", &json!({})).await;
    let id = event["event"]["id"].as_str().expect("id");
    // The same code under another version: what it does matches, and the
    // report still says it is not the version that ran.
    let other =
        hookhost_tests::variant(&std::fs::read(plugins::TEST_DICE).expect("component"), "v2");
    let (status, uploaded) = host.upload_candidate("dice", other).await;
    assert_eq!(status, 201, "{uploaded:#}");
    let (_, report) = replay_exact(&host, id, json!({ "version": uploaded["version"] })).await;
    assert_eq!(report["exact"], false, "{report:#}");
    let what: Vec<_> = report["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .map(|d| d["what"].clone())
        .collect();
    assert_eq!(what, [json!("version")], "{report:#}");

    let (status, report) = replay_exact(&host, id, json!({ "attempt": 9 })).await;
    assert_eq!(status, 404, "{report:#}");
    let (status, report) = replay_exact(&host, id, json!({ "version": "f".repeat(64) })).await;
    assert_eq!(status, 404, "{report:#}");
    assert!(
        report["error"].to_string().contains("cannot load version"),
        "{report:#}"
    );
    let (status, report) = replay_exact(&host, "01J00000000000000000000000", json!({})).await;
    assert_eq!(status, 404, "{report:#}");
    host.stop().await;
}
