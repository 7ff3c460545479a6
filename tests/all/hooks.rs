//! `POST /hooks/{source}`: signed webhooks from real senders.

use hmac::{Hmac, Mac};
use hookhost::sources::{SourceConfig, SourceKind};
use hookhost_tests::{Setup, TestHost, data_path, plugins};
use serde_json::{Value, json};
use sha2::Sha256;

const GITHUB_SECRET: &str = "test-github-secret";
const STRIPE_SECRET: &str = "whsec_test_stripe_secret";

fn source(kind: SourceKind, env: &str, change: impl FnOnce(&mut SourceConfig)) -> SourceConfig {
    let mut config = SourceConfig {
        secret_env: Some(env.into()),
        ..SourceConfig::new(kind)
    };
    change(&mut config);
    config
}

async fn host_with_sources() -> TestHost {
    Setup::new()
        .configure(|c| {
            c.body_limit_bytes = 4 << 20;
            c.sources.insert(
                "github".into(),
                source(SourceKind::Github, "HOOKHOST_TEST_GITHUB_SECRET", |_| {}),
            );
            c.sources.insert(
                "stripe".into(),
                source(SourceKind::Stripe, "HOOKHOST_TEST_STRIPE_SECRET", |_| {}),
            );
            c.sources.insert(
                "accounts".into(),
                source(
                    SourceKind::StandardWebhooks,
                    "HOOKHOST_TEST_STANDARD_SECRET",
                    |s| {
                        s.topic_pointer = Some("/type".into());
                        s.topic_prefix = "accounts.".into();
                    },
                ),
            );
        })
        .start()
        .await
}

fn hmac_sha256(secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac key");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn github_signature(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &[body]))
    )
}

async fn post_hook(
    host: &TestHost,
    source: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(host.url(&format!("/hooks/{source}")))
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("post");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Every payload in tests/data/github-webhooks, as (event, file name, body).
fn github_payloads() -> Vec<(String, String, Vec<u8>)> {
    let mut payloads = Vec::new();
    for dir in std::fs::read_dir(data_path("github-webhooks")).expect("fixtures") {
        let dir = dir.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        let event = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        for file in std::fs::read_dir(&dir).expect("event dir") {
            let file = file.expect("entry").path();
            let name = file
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            payloads.push((event.clone(), name, std::fs::read(&file).expect("payload")));
        }
    }
    payloads.sort();
    payloads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_real_github_payload_ingests_with_a_valid_signature_and_the_right_topic() {
    let host = host_with_sources().await;
    let payloads = github_payloads();
    assert!(payloads.len() > 250, "fixtures missing: {}", payloads.len());
    for (event, file, body) in &payloads {
        let delivery = format!("{event}/{file}");
        let signature = github_signature(GITHUB_SECRET, body);
        let headers = [
            ("x-github-event", event.as_str()),
            ("x-github-delivery", delivery.as_str()),
            ("x-hub-signature-256", signature.as_str()),
            ("content-type", "application/json"),
        ];
        let (status, answer) = post_hook(&host, "github", body, &headers).await;
        assert_eq!(status, 202, "{delivery}: {answer}");
        let parsed: Value = serde_json::from_slice(body).expect("fixture is json");
        let expected = match parsed.get("action").and_then(Value::as_str) {
            Some(action) => format!("github.{event}.{action}"),
            None => format!("github.{event}"),
        };
        let (_, stored) = host
            .get(&format!("/events/{}", answer["id"].as_str().expect("id")))
            .await;
        assert_eq!(stored["event"]["topic"], expected.as_str(), "{delivery}");
        assert_eq!(stored["event"]["idempotency_key"], delivery.as_str());
    }
    // A redelivery (same X-GitHub-Delivery) is recognised.
    let (event, file, body) = &payloads[0];
    let delivery = format!("{event}/{file}");
    let signature = github_signature(GITHUB_SECRET, body);
    let headers = [
        ("x-github-event", event.as_str()),
        ("x-github-delivery", delivery.as_str()),
        ("x-hub-signature-256", signature.as_str()),
    ];
    let (status, again) = post_hook(&host, "github", body, &headers).await;
    assert_eq!((status, again["duplicate"].clone()), (200, json!(true)));
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_bodies_wrong_secrets_and_missing_signatures_are_refused_and_nothing_is_stored() {
    let host = host_with_sources().await;
    let body = std::fs::read(data_path("github-webhooks/push/payload.json")).expect("fixture");
    let good = github_signature(GITHUB_SECRET, &body);
    let wrong_secret = github_signature("not-the-secret", &body);
    let mut tampered = body.clone();
    tampered[10] ^= 1;

    let cases: [(&[u8], Option<&str>, &str); 3] = [
        (&tampered, Some(&good), "does not match"),
        (&body, Some(&wrong_secret), "does not match"),
        (&body, None, "missing x-hub-signature-256"),
    ];
    for (payload, signature, reason) in cases {
        let mut headers = vec![("x-github-event", "push"), ("x-github-delivery", "d-1")];
        if let Some(signature) = signature {
            headers.push(("x-hub-signature-256", signature));
        }
        let (status, answer) = post_hook(&host, "github", payload, &headers).await;
        assert_eq!(status, 401, "{answer}");
        assert!(
            answer["error"].as_str().expect("error").contains(reason),
            "{answer}"
        );
    }
    let (status, answer) = post_hook(&host, "gitlab", &body, &[]).await;
    assert_eq!(status, 404, "{answer}");
    let (_, list) = host.get("/events").await;
    assert_eq!(list["events"], json!([]), "nothing refused is stored");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_and_standard_webhooks_are_verified_against_the_clock() {
    let host = host_with_sources().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();

    let stripe = br#"{"id":"evt_42","type":"invoice.paid","data":{"object":{"id":"in_1"}}}"#;
    let sign = |t: u64| {
        format!(
            "t={t},v1={}",
            hex::encode(hmac_sha256(
                STRIPE_SECRET.as_bytes(),
                &[t.to_string().as_bytes(), b".", stripe]
            ))
        )
    };
    let (status, answer) =
        post_hook(&host, "stripe", stripe, &[("stripe-signature", &sign(now))]).await;
    assert_eq!(status, 202, "{answer}");
    let (_, stored) = host
        .get(&format!("/events/{}", answer["id"].as_str().expect("id")))
        .await;
    assert_eq!(stored["event"]["topic"], "stripe.invoice.paid");
    assert_eq!(stored["event"]["idempotency_key"], "evt_42");
    let (status, answer) = post_hook(
        &host,
        "stripe",
        stripe,
        &[("stripe-signature", &sign(now - 3600))],
    )
    .await;
    assert_eq!(status, 401, "an hour-old signature is a replay: {answer}");

    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD
        .decode("C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
        .expect("key");
    let body = br#"{"type":"user.created","data":{"id":"u_1"}}"#;
    let ts = now.to_string();
    let signature = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD
            .encode(hmac_sha256(&key, &[b"msg_1.", ts.as_bytes(), b".", body]))
    );
    let headers = [
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", ts.as_str()),
        ("webhook-signature", signature.as_str()),
    ];
    let (status, answer) = post_hook(&host, "accounts", body, &headers).await;
    assert_eq!(status, 202, "{answer}");
    let (_, stored) = host
        .get(&format!("/events/{}", answer["id"].as_str().expect("id")))
        .await;
    assert_eq!(stored["event"]["topic"], "accounts.user.created");
    assert_eq!(stored["event"]["idempotency_key"], "msg_1");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_need_the_token_while_ingest_and_health_do_not() {
    let host = Setup::new()
        .configure(|c| c.admin_token_env = Some("HOOKHOST_TEST_ADMIN_TOKEN".into()))
        .start()
        .await;
    let client = reqwest::Client::new();

    let (status, answer) = host.post("orders.created", b"{}".to_vec(), &[]).await;
    assert_eq!(status, 202, "ingest stays open: {answer}");
    let id = answer["id"].as_str().expect("id");
    let (status, _) = host.get("/healthz").await;
    assert_eq!(status, 200);

    for path in [
        "/events".to_owned(),
        format!("/events/{id}"),
        "/plugins".to_owned(),
        "/metrics".to_owned(),
        "/dead-letters".to_owned(),
    ] {
        let (status, answer) = host.get(&path).await;
        assert_eq!(status, 401, "{path}: {answer}");
        let wrong = client
            .get(host.url(&path))
            .bearer_auth("guess")
            .send()
            .await
            .expect("get");
        assert_eq!(wrong.status(), 401, "{path}");
        let right = client
            .get(host.url(&path))
            .bearer_auth("test-admin-token")
            .send()
            .await
            .expect("get");
        assert_eq!(right.status(), 200, "{path}");
    }
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sources_topics_cannot_be_posted_around_its_signature_check() {
    let host = host_with_sources().await;
    for (topic, source) in [
        ("stripe.payment_intent.succeeded", "stripe"),
        ("github.push", "github"),
        ("accounts.user.created", "accounts"),
    ] {
        let (status, answer) = host.post_json(topic, &json!({ "forged": true })).await;
        assert_eq!(status, 403, "{topic}: {answer}");
        let error = answer["error"].as_str().expect("error");
        assert!(
            error.contains(&format!("/hooks/{source}")),
            "{topic}: {error}"
        );
    }
    // The scheduler's topics too.
    let (status, _) = host.post_json("schedule.nightly", &json!({})).await;
    assert_eq!(status, 403);
    // Topics no source produces stay open.
    let (status, answer) = host.post_json("orders.created", &json!({})).await;
    assert_eq!(status, 202, "{answer}");
    // Nothing forged was stored.
    let (_, listed) = host.get("/events").await;
    assert_eq!(listed["events"].as_array().expect("events").len(), 1);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_says_where_it_came_from_and_keys_do_not_cross_routes() {
    let host = host_with_sources().await;
    let body = br#"{"zen": "Keep it logically awesome."}"#;
    let signature = github_signature(GITHUB_SECRET, body);
    let headers = [
        ("x-github-event", "ping"),
        ("x-github-delivery", "delivery-1"),
        ("x-hub-signature-256", signature.as_str()),
    ];
    let (status, hooked) = post_hook(&host, "github", body, &headers).await;
    assert_eq!(status, 202, "{hooked}");
    // The same key posted to the API is another sender's: a new event.
    let (status, posted) = host
        .post(
            "orders.created",
            b"{}".to_vec(),
            &[("idempotency-key", "delivery-1")],
        )
        .await;
    assert_eq!(status, 202, "{posted}");
    assert_eq!(posted["duplicate"], false);
    assert_ne!(posted["id"], hooked["id"]);

    let (_, event) = host
        .get(&format!("/events/{}", hooked["id"].as_str().expect("id")))
        .await;
    assert_eq!(
        event["event"]["provenance"],
        json!({ "kind": "source", "name": "github", "verified": true })
    );
    let (_, event) = host
        .get(&format!("/events/{}", posted["id"].as_str().expect("id")))
        .await;
    assert_eq!(event["event"]["provenance"], json!({ "kind": "api" }));
    host.stop().await;
}

/// The `provenance` log line of an event's first attempt by `plugin`.
async fn logged_provenance(host: &TestHost, id: &str) -> Value {
    let event = host.wait_settled(id).await;
    assert_eq!(event["status"], "succeeded", "{event:#}");
    let logs = &event["deliveries"][0]["attempts"][0]["logs"];
    let line = logs
        .as_array()
        .expect("logs")
        .iter()
        .find(|l| l["message"] == "provenance")
        .unwrap_or_else(|| panic!("no provenance line: {event:#}"));
    let mut fields = serde_json::Map::new();
    for pair in line["fields"].as_array().expect("fields") {
        fields.insert(pair[0].as_str().expect("key").to_owned(), pair[1].clone());
    }
    Value::Object(fields)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_reads_where_its_event_came_from() {
    let host = Setup::new()
        .plugin("provenance", plugins::TEST_PROVENANCE)
        .configure(|c| {
            c.sources.insert(
                "github".into(),
                source(SourceKind::Github, "HOOKHOST_TEST_GITHUB_SECRET", |_| {}),
            );
        })
        .start()
        .await;
    let body = br#"{"zen": "Design for failure."}"#;
    let signature = github_signature(GITHUB_SECRET, body);
    let headers = [
        ("x-github-event", "ping"),
        ("x-github-delivery", "delivery-9"),
        ("x-hub-signature-256", signature.as_str()),
    ];
    let (status, hooked) = post_hook(&host, "github", body, &headers).await;
    assert_eq!(status, 202, "{hooked}");
    let hooked = hooked["id"].as_str().expect("id");
    assert_eq!(
        logged_provenance(&host, hooked).await,
        json!({ "kind": "source", "name": "github", "verified": "true" })
    );

    let (status, posted) = host
        .post_json("orders.created", &json!({ "emit": true }))
        .await;
    assert_eq!(status, 202, "{posted}");
    let posted = posted["id"].as_str().expect("id");
    assert_eq!(
        logged_provenance(&host, posted).await,
        json!({ "kind": "api" })
    );

    // The event it emitted says which plugin emitted it.
    let (_, listed) = host.get("/events?topic=prov.emitted").await;
    let emitted = listed["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["topic"] == "prov.emitted")
        .unwrap_or_else(|| panic!("nothing emitted: {listed:#}"))["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        logged_provenance(&host, &emitted).await,
        json!({ "kind": "emitted", "plugin": "provenance" })
    );
    host.stop().await;
}
