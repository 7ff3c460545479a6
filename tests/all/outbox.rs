//! The outbox: requests a handler queues with `send_after_commit` are sent
//! by the host once the attempt commits, retried under one idempotency key,
//! and dead-lettered when the receiver refuses them. A local axum server on
//! 127.0.0.1 stands in for the receiver.

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hookhost_tests::{Setup, TestHost, plugins};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// What the receiver got: (path, idempotency key, body).
type Received = Arc<Mutex<Vec<(String, Option<String>, String)>>>;

struct Receiver {
    url: String,
    received: Received,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// `/ok` answers 200; `/status/{code}` answers `code`; `/flaky` answers
    /// 503 to the first request under a key and 200 after.
    async fn start() -> Self {
        let received = Received::default();
        let log = received.clone();
        let record = move |path: String, headers: &HeaderMap, body: &Bytes| {
            let key = headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut log = log.lock().expect("log");
            let seen = log.iter().filter(|(_, k, _)| *k == key).count();
            log.push((path, key, String::from_utf8_lossy(body).into_owned()));
            seen
        };
        let (ok, status, flaky) = (record.clone(), record.clone(), record);
        let app = Router::new()
            .route(
                "/ok",
                post(move |headers: HeaderMap, body: Bytes| async move {
                    ok("/ok".into(), &headers, &body);
                    StatusCode::OK
                }),
            )
            .route(
                "/status/{code}",
                post(
                    move |Path(code): Path<u16>, headers: HeaderMap, body: Bytes| async move {
                        status(format!("/status/{code}"), &headers, &body);
                        StatusCode::from_u16(code).expect("a status")
                    },
                ),
            )
            .route(
                "/flaky",
                post(move |headers: HeaderMap, body: Bytes| async move {
                    match flaky("/flaky".into(), &headers, &body) {
                        0 => StatusCode::SERVICE_UNAVAILABLE,
                        _ => StatusCode::OK,
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            received,
            task,
        }
    }

    fn received(&self) -> Vec<(String, Option<String>, String)> {
        self.received.lock().expect("log").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A host running the caller, allowed `receiver` and three attempts.
async fn host(receiver: &Receiver) -> TestHost {
    let allowed = receiver.url.clone();
    Setup::new()
        .plugin("caller", plugins::TEST_CALLER)
        .limits("caller", |s| {
            s.allowed_hosts = vec![allowed];
            s.retry = Some(hookhost::model::RetryPolicy {
                max_attempts: 3,
                initial_backoff_ms: 1,
                max_backoff_ms: 1,
            });
            s.secrets.insert("token".into(), SECRET_VAR.into());
        })
        .start()
        .await
}

const SECRET_VAR: &str = "HOOKHOST_TEST_PLUGIN_SECRET";

/// Posts `body` to the caller and waits for it to settle.
async fn handled(host: &TestHost, body: Value) -> Value {
    let (status, answer) = host.post_json("test.call", &body).await;
    assert_eq!(status, 202, "{answer}");
    host.wait_settled(answer["id"].as_str().expect("id")).await
}

/// The outbox events there are, each once settled.
async fn outbox(host: &TestHost) -> Vec<Value> {
    let (status, list) = host.get("/events?topic=hookhost.outbox").await;
    assert_eq!(status, 200, "{list}");
    let mut settled = Vec::new();
    for event in list["events"].as_array().expect("events") {
        settled.push(host.wait_settled(event["id"].as_str().expect("id")).await);
    }
    settled
}

fn queued(url: String, body: Value) -> Value {
    json!({ "url": url, "body": body, "outbox": true })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_request_is_sent_once_after_its_attempt_commits_and_never_for_a_failed_one() {
    let receiver = Receiver::start().await;
    let host = host(&receiver).await;
    let event = handled(
        &host,
        json!({
            "requests": [queued(format!("{}/ok", receiver.url), json!({ "receipt": 1 }))],
            "trap_first": true,
        }),
    )
    .await;
    assert_eq!(event["status"], "succeeded", "{event:#}");
    let attempts = event["deliveries"][0]["attempts"]
        .as_array()
        .expect("attempts");
    assert_eq!(attempts[0]["outcome"]["kind"], "trap", "{event:#}");
    let sent = outbox(&host).await;
    assert_eq!(
        sent.len(),
        1,
        "one request, from the attempt that committed: {sent:#?}"
    );
    let delivery = &sent[0]["deliveries"][0];
    assert_eq!(delivery["plugin"], "outbox:caller", "{delivery:#}");
    assert_eq!(sent[0]["status"], "succeeded", "{:#}", sent[0]);
    assert_eq!(
        delivery["attempts"][0]["http"][0]["status"], 200,
        "{delivery:#}"
    );
    let id = event["event"]["id"].as_str().expect("id");
    assert_eq!(
        receiver.received(),
        [(
            "/ok".to_owned(),
            Some(format!("{id}:caller:outbox:0")),
            json!({ "receipt": 1 }).to_string()
        )]
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_the_request_again_under_the_same_key() {
    let receiver = Receiver::start().await;
    let host = host(&receiver).await;
    let event = handled(
        &host,
        json!({ "requests": [queued(format!("{}/flaky", receiver.url), json!({ "n": 1 }))] }),
    )
    .await;
    assert_eq!(event["status"], "succeeded", "{event:#}");
    let sent = outbox(&host).await;
    assert_eq!(sent[0]["status"], "succeeded", "{:#}", sent[0]);
    let attempts = sent[0]["deliveries"][0]["attempts"]
        .as_array()
        .expect("attempts");
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    assert_eq!(attempts[0]["outcome"]["kind"], "retry", "{attempts:#?}");
    assert!(
        attempts[0]["outcome"]["message"]
            .to_string()
            .contains("503"),
        "{attempts:#?}"
    );
    let keys: Vec<_> = receiver.received().into_iter().map(|(_, k, _)| k).collect();
    let id = event["event"]["id"].as_str().expect("id");
    let key = Some(format!("{id}:caller:outbox:0"));
    assert_eq!(keys, [key.clone(), key]);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_receiver_refuses_is_a_dead_letter_at_once() {
    let receiver = Receiver::start().await;
    let host = host(&receiver).await;
    handled(
        &host,
        json!({ "requests": [queued(format!("{}/status/422", receiver.url), json!({}))] }),
    )
    .await;
    let sent = outbox(&host).await;
    assert_eq!(sent[0]["status"], "dead", "{:#}", sent[0]);
    let attempts = sent[0]["deliveries"][0]["attempts"]
        .as_array()
        .expect("attempts");
    assert_eq!(attempts.len(), 1, "a 422 is not retried: {attempts:#?}");
    assert_eq!(attempts[0]["outcome"]["kind"], "reject", "{attempts:#?}");
    assert_eq!(receiver.received().len(), 1);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_a_host_not_allowed_is_refused_when_queued() {
    let receiver = Receiver::start().await;
    let host = host(&receiver).await;
    let event = handled(
        &host,
        json!({ "requests": [queued("http://127.0.0.2:9/ok".into(), json!({}))] }),
    )
    .await;
    assert_eq!(event["status"], "dead", "{event:#}");
    let outcome = &event["deliveries"][0]["attempts"][0]["outcome"];
    assert!(
        outcome.to_string().contains("allowed_hosts"),
        "the handler heard why: {outcome}"
    );
    assert!(outbox(&host).await.is_empty(), "nothing queued");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_is_stored_as_its_placeholder_and_sent_as_its_value() {
    let receiver = Receiver::start().await;
    let host = host(&receiver).await;
    let secret = std::env::var(SECRET_VAR).expect("the test secret is set in .cargo/config.toml");
    handled(
        &host,
        json!({ "requests": [queued(format!("{}/ok", receiver.url), json!({ "token": secret }))] }),
    )
    .await;
    let sent = outbox(&host).await;
    assert_eq!(sent[0]["status"], "succeeded", "{:#}", sent[0]);
    let stored = sent[0]["event"].to_string();
    assert!(
        !stored.contains(&secret) && stored.contains("[redacted secret token]"),
        "{stored}"
    );
    assert_eq!(
        receiver.received()[0].2,
        json!({ "token": secret }).to_string()
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_built_against_0_2_0_loads_unchanged_beside_the_outbox() {
    let receiver = Receiver::start().await;
    let allowed = receiver.url.clone();
    let host = Setup::new()
        .plugin("v020", plugins::TEST_V020)
        .plugin("caller", plugins::TEST_CALLER)
        .limits("v020", |s| s.allowed_hosts = vec![allowed])
        .start()
        .await;
    assert_eq!(host.contract("v020").await, Some(json!("0.2.0")));
    assert_eq!(host.contract("caller").await, Some(json!("0.2.1")));
    let (status, answer) = host
        .post_json(
            "test.v020",
            &json!({ "post": format!("{}/ok", receiver.url) }),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let event = host.wait_settled(answer["id"].as_str().expect("id")).await;
    assert_eq!(event["status"], "succeeded", "{event:#}");
    let writes = event["deliveries"][0]["attempts"][0]["effects"]["kv_writes"].to_string();
    assert!(writes.contains("\"200\""), "{writes}");
    assert_eq!(receiver.received().len(), 1);
    host.stop().await;
}
