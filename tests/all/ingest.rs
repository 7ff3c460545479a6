//! Ingest: validate → persist → 202, and the attempt that follows.

use hookhost_tests::{Setup, attempts, delivery_to, github_fixture, plugins, sha256_of};
use serde_json::json;

fn payment(id: &str, cents: i64) -> serde_json::Value {
    json!({
        "id": format!("evt_{id}"),
        "type": "payment_intent.succeeded",
        "data": { "object": {
            "id": format!("pi_{id}"), "amount": cents, "amount_received": cents,
            "currency": "eur", "customer": "cus_1"
        }}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_event_gets_a_recorded_attempt_naming_version_fuel_and_duration() {
    let host = Setup::new()
        .plugin("stripe-ledger", plugins::STRIPE_LEDGER)
        .start()
        .await;

    let (status, answer) = host
        .post_json("stripe.payment_intent.succeeded", &payment("1", 2500))
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["duplicate"], false);
    let id = answer["id"].as_str().expect("id");

    let event = host.wait_settled(id).await;
    assert_eq!(event["status"], "succeeded", "{event:#}");
    let attempt = &attempts(&event)[0];
    assert_eq!(attempt["outcome"]["kind"], "ok");
    assert_eq!(attempt["number"], 1);
    assert_eq!(attempt["version"], sha256_of(plugins::STRIPE_LEDGER));
    assert!(attempt["fuel_consumed"].as_u64().expect("fuel") > 0);
    assert!(attempt["duration_us"].as_u64().expect("duration") > 0);
    assert!(attempt["peak_memory_bytes"].as_u64().expect("memory") > 0);
    let logs = attempt["logs"].as_array().expect("logs");
    assert!(
        logs.iter().any(|l| l["message"] == "payment recorded"),
        "{logs:?}"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_refused_with_413_and_nothing_is_stored() {
    let host = Setup::new()
        .configure(|c| c.body_limit_bytes = 1024)
        .start()
        .await;

    let (status, answer) = host.post("big.topic", vec![b'x'; 2048], &[]).await;
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["error"].as_str().expect("error").contains("1024"),
        "{answer}"
    );
    let (status, answer) = host.post("small.topic", vec![b'x'; 1000], &[]).await;
    assert_eq!(status, 202, "{answer}");

    let (_, list) = host.get("/events").await;
    let topics: Vec<&str> = list["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["topic"].as_str())
        .collect();
    assert_eq!(topics, ["small.topic"]);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_and_bad_topics_are_refused_with_a_reason() {
    let host = Setup::new().start().await;

    let (status, answer) = host
        .post(
            "orders.created",
            b"{\"id\": ".to_vec(),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .expect("error")
            .starts_with("body is not valid json"),
        "{answer}"
    );

    let (status, answer) = host.post("bad%20topic", b"x".to_vec(), &[]).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().expect("error").contains("topic"),
        "{answer}"
    );

    let (_, list) = host.get("/events").await;
    assert_eq!(list["events"], json!([]));
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_idempotency_key_returns_the_original_id_and_creates_nothing() {
    let host = Setup::new()
        .plugin("counter", plugins::TEST_COUNTER)
        .start()
        .await;
    let key = [
        ("idempotency-key", "order-42"),
        ("content-type", "application/json"),
    ];

    let (first_status, first) = host.post("test.count", b"{}".to_vec(), &key).await;
    let (second_status, second) = host.post("test.count", b"{}".to_vec(), &key).await;
    assert_eq!((first_status, second_status), (202, 200));
    assert_eq!(first["id"], second["id"]);
    assert_eq!(second["duplicate"], true);

    let (_, list) = host.get("/events?topic=test.count").await;
    assert_eq!(list["events"].as_array().expect("events").len(), 1);
    let event = host.wait_settled(first["id"].as_str().expect("id")).await;
    assert_eq!(
        attempts(&event).len(),
        1,
        "the duplicate must not run the handler again"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_github_payloads_are_counted_per_repository() {
    let host = Setup::new()
        .plugin("github-digest", plugins::GITHUB_DIGEST)
        .start()
        .await;
    let headers = [
        ("content-type", "application/json"),
        ("x-github-event", "push"),
    ];

    let (status, push) = host
        .post("github.push", github_fixture("push/payload.json"), &headers)
        .await;
    assert_eq!(status, 202);
    let push = host.wait_settled(push["id"].as_str().expect("id")).await;
    let (_, issue) = host
        .post(
            "github.issues.opened",
            github_fixture("issues/opened.payload.json"),
            &headers,
        )
        .await;
    let issue = host.wait_settled(issue["id"].as_str().expect("id")).await;

    let delivered = delivery_to(&issue, "github-digest");
    let message = &delivered["attempts"][0]["logs"][0]["message"];
    assert_eq!(
        message, "Codertocat/Hello-World: push=1 issues=1 pull_request=0",
        "{issue:#}"
    );
    assert_eq!(
        push["event"]["headers"]
            .as_array()
            .map(|h| h.iter().any(|kv| kv[0] == "x-github-event")),
        Some(true)
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_list_newest_first_with_filters_and_cursor() {
    let host = Setup::new().start().await;
    let mut ids = Vec::new();
    for topic in ["a.one", "b.two", "a.three"] {
        let (_, answer) = host.post(topic, b"x".to_vec(), &[]).await;
        ids.push(answer["id"].as_str().expect("id").to_owned());
    }
    let (_, all) = host.get("/events?limit=2").await;
    let page: Vec<&str> = all["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(page, [ids[2].as_str(), ids[1].as_str()]);
    let cursor = all["next_cursor"].as_str().expect("cursor");
    let (_, rest) = host.get(&format!("/events?limit=2&cursor={cursor}")).await;
    assert_eq!(rest["events"][0]["id"], ids[0].as_str());
    assert_eq!(rest["next_cursor"], serde_json::Value::Null);

    let (_, filtered) = host.get("/events?topic=a.*").await;
    assert_eq!(filtered["events"].as_array().expect("events").len(), 2);
    let (_, unrouted) = host.get("/events?status=unrouted").await;
    assert_eq!(unrouted["events"].as_array().expect("events").len(), 3);
    let (status, bad) = host.get("/events?status=nonsense").await;
    assert_eq!(status, 400, "{bad}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_headers_are_never_stored_with_an_event() {
    let host = Setup::new()
        .configure(|c| c.strip_headers.push("X-Shop-Secret".into()))
        .start()
        .await;
    let (status, answer) = host
        .post(
            "shop.order",
            b"{}".to_vec(),
            &[
                ("x-api-key", "key-1"),
                ("X-Gitlab-Token", "token-2"),
                ("x-shop-secret", "secret-3"),
                ("x-shop-id", "kept"),
            ],
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let (_, event) = host
        .get(&format!("/events/{}", answer["id"].as_str().expect("id")))
        .await;
    let stored = event["event"]["headers"].to_string();
    for secret in ["key-1", "token-2", "secret-3"] {
        assert!(!stored.contains(secret), "{secret} stored: {stored}");
    }
    assert!(stored.contains("x-shop-id"), "{stored}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_ingest_token_only_its_holders_post_events() {
    let host = Setup::new()
        .configure(|c| {
            c.ingest_token_env = Some("HOOKHOST_TEST_INGEST_TOKEN".into());
            c.admin_token_env = Some("HOOKHOST_TEST_ADMIN_TOKEN".into());
        })
        .start()
        .await;
    let (status, answer) = host.post("orders.created", b"{}".to_vec(), &[]).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .expect("error")
            .contains("ingest token")
    );
    let (status, _) = host
        .post(
            "orders.created",
            b"{}".to_vec(),
            &[("authorization", "Bearer not-the-token")],
        )
        .await;
    assert_eq!(status, 401);
    for token in ["test-ingest-token", "test-admin-token"] {
        let (status, answer) = host
            .post(
                "orders.created",
                b"{}".to_vec(),
                &[("authorization", &format!("Bearer {token}"))],
            )
            .await;
        assert_eq!(status, 202, "{token}: {answer}");
    }
    // The ingest token opens nothing else.
    let response = reqwest::Client::new()
        .get(host.url("/events"))
        .bearer_auth("test-ingest-token")
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 401);
    host.stop().await;
}
