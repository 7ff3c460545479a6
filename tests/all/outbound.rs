//! Outbound HTTP: a local axum server on 127.0.0.1 stands in for the remote
//! API; only allowed hosts are reached, within the per-attempt budgets, and
//! every call is recorded without its path, headers or body.

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use hookhost_tests::{Setup, TestHost, plugins};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// What the remote API received: (idempotency key, body).
type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

struct Remote {
    url: String,
    received: Received,
    task: tokio::task::JoinHandle<()>,
}

impl Remote {
    async fn start() -> Self {
        let received = Received::default();
        let log = received.clone();
        let app = Router::new()
            .route(
                "/hook",
                post(move |headers: HeaderMap, body: Bytes| {
                    let log = log.clone();
                    async move {
                        let key = headers
                            .get("idempotency-key")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        log.lock().expect("log").push((key, body));
                        "ok"
                    }
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                    "late"
                }),
            )
            .route("/big", get(|| async { vec![b'x'; 64 * 1024] }));
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

    fn received(&self) -> Vec<(Option<String>, Value)> {
        self.received.lock().expect("log").clone()
    }

    /// The first request whose body passes `check`, once it has arrived.
    async fn wait_for(&self, check: impl Fn(&Value) -> bool) -> (Option<String>, Value) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(found) = self.received().into_iter().find(|(_, body)| check(body)) {
                return found;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never received: {:?}",
                self.received()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn call(host: &TestHost, requests: Value) -> Value {
    let (status, answer) = host
        .post_json("test.call", &json!({ "requests": requests }))
        .await;
    assert_eq!(status, 202, "{answer}");
    host.wait_settled(answer["id"].as_str().expect("id")).await
}

fn attempt(event: &Value) -> &Value {
    &event["deliveries"][0]["attempts"][0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_call_arrives_with_its_body_and_key_and_is_recorded() {
    let remote = Remote::start().await;
    let allowed = remote.url.clone();
    let host = Setup::new()
        .plugin("caller", plugins::TEST_CALLER)
        .limits("caller", |s| s.allowed_hosts = vec![allowed])
        .start()
        .await;
    let event = call(
        &host,
        json!([{ "url": format!("{}/hook?token=abc", remote.url), "body": { "amount": 5 } }]),
    )
    .await;
    assert_eq!(event["status"], "succeeded", "{event:#}");
    let id = event["event"]["id"].as_str().expect("id");
    assert_eq!(
        remote.received(),
        [(Some(format!("{id}:caller:0")), json!({ "amount": 5 }))]
    );
    let http = &attempt(&event)["http"];
    assert_eq!(http[0]["method"], "POST");
    assert_eq!(http[0]["origin"], remote.url.as_str());
    assert_eq!(http[0]["status"], 200);
    assert_eq!(http[0]["error"], Value::Null);
    assert!(
        !http.to_string().contains("token=abc") && !http.to_string().contains("/hook"),
        "paths and queries are never recorded: {http}"
    );
    host.stop().await;
}

/// Runs the caller with `extra` (`retry_first`, `trap_first`, …) on four
/// calls to `remote`, allowed two attempts; returns the settled event.
async fn call_twice(remote: &Remote, extra: Value) -> (TestHost, Value) {
    let allowed = remote.url.clone();
    let host = Setup::new()
        .plugin("caller", plugins::TEST_CALLER)
        .limits("caller", |s| {
            s.allowed_hosts = vec![allowed];
            s.retry = Some(hookhost::model::RetryPolicy {
                max_attempts: 2,
                initial_backoff_ms: 1,
                max_backoff_ms: 1,
            });
        })
        .start()
        .await;
    let hook = format!("{}/hook", remote.url);
    let mut body = json!({
        "requests": [
            { "url": hook, "body": { "n": 1 } },
            { "url": hook, "body": { "n": 2 }, "key": "mine" },
            { "url": hook, "body": { "n": 3 }, "key": "" },
            { "url": hook, "body": { "n": 4 } },
        ],
    });
    for (k, v) in extra.as_object().expect("an object") {
        body[k] = v.clone();
    }
    let (status, answer) = host.post_json("test.call", &body).await;
    assert_eq!(status, 202, "{answer}");
    let event = host.wait_settled(answer["id"].as_str().expect("id")).await;
    assert_eq!(event["status"], "succeeded", "{event:#}");
    let attempts = event["deliveries"][0]["attempts"]
        .as_array()
        .expect("attempts");
    assert_eq!(attempts.len(), 2, "{event:#}");
    (host, event)
}

/// The four calls `call_twice` makes, as the remote receives them.
fn four_calls(event: &Value) -> Vec<(Option<String>, Value)> {
    let id = event["event"]["id"].as_str().expect("id");
    vec![
        (Some(format!("{id}:caller:0")), json!({ "n": 1 })),
        (Some("mine".to_owned()), json!({ "n": 2 })),
        (None, json!({ "n": 3 })),
        (Some(format!("{id}:caller:3")), json!({ "n": 4 })),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_attempt_is_answered_from_the_journal_and_calls_nothing_again() {
    let remote = Remote::start().await;
    let (host, event) = call_twice(&remote, json!({ "retry_first": true })).await;
    assert_eq!(remote.received(), four_calls(&event), "each call once");
    let retry = &event["deliveries"][0]["attempts"][1];
    let http = retry["http"].as_array().expect("http");
    assert_eq!(http.len(), 4, "{retry:#}");
    for call in http {
        assert_eq!(call["journaled"], true, "{call}");
        assert_eq!(call["status"], 200, "{call}");
    }
    let first = &event["deliveries"][0]["attempts"][0]["http"][0];
    assert!(
        first.get("journaled").is_none(),
        "the first went out: {first}"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_that_traps_after_its_calls_is_retried_without_calling_again() {
    let remote = Remote::start().await;
    let (host, event) = call_twice(&remote, json!({ "trap_first": true })).await;
    let first = &event["deliveries"][0]["attempts"][0];
    assert_eq!(first["outcome"]["kind"], "trap", "{first:#}");
    assert_eq!(remote.received(), four_calls(&event), "each call once");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_whose_calls_differ_calls_again_with_the_same_default_keys() {
    let remote = Remote::start().await;
    let (host, event) = call_twice(
        &remote,
        json!({ "retry_first": true, "attempt_in_body": true }),
    )
    .await;
    let sent = |attempt: u32| {
        four_calls(&event)
            .into_iter()
            .map(move |(key, body)| (key, json!({ "body": body, "attempt": attempt })))
    };
    let expected: Vec<_> = sent(1).chain(sent(2)).collect();
    assert_eq!(remote.received(), expected);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_not_on_the_list_is_denied_and_recorded() {
    let remote = Remote::start().await;
    let host = Setup::new()
        .plugin("caller", plugins::TEST_CALLER)
        .limits("caller", |s| {
            s.allowed_hosts = vec!["https://api.example.com".into()];
        })
        .start()
        .await;
    let event = call(
        &host,
        json!([{ "url": format!("{}/hook", remote.url), "body": {} }]),
    )
    .await;
    let attempt = attempt(&event);
    assert_eq!(attempt["outcome"]["kind"], "reject", "{attempt:#}");
    assert!(
        attempt["outcome"]["message"]
            .as_str()
            .expect("message")
            .contains("http request denied: not in the plugin's allowed_hosts"),
        "the handler sees the denial: {attempt:#}"
    );
    assert!(
        attempt["http"][0]["error"]
            .as_str()
            .expect("error")
            .contains("not in the plugin's allowed_hosts"),
        "{attempt:#}"
    );
    assert_eq!(attempt["http"][0]["status"], Value::Null);
    assert!(remote.received().is_empty(), "nothing reached the remote");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_count_time_and_response_size_budgets_hold() {
    let remote = Remote::start().await;
    let allowed = remote.url.clone();
    let host = Setup::new()
        .plugin("caller", plugins::TEST_CALLER)
        .limits("caller", |s| {
            s.allowed_hosts = vec![allowed];
            s.max_http_requests = Some(2);
            s.http_time_ms = Some(500);
            s.max_response_bytes = Some(1024);
        })
        .start()
        .await;
    let hook = json!({ "url": format!("{}/hook", remote.url), "body": {} });
    let event = call(&host, json!([hook, hook, hook])).await;
    assert_eq!(remote.received().len(), 2, "the third request never left");
    let http = attempt(&event)["http"].as_array().expect("calls").clone();
    assert_eq!(http.len(), 3);
    assert!(
        http[2]["error"]
            .as_str()
            .expect("error")
            .contains("budget of 2 requests"),
        "{http:#?}"
    );

    let slow = json!({ "method": "GET", "url": format!("{}/slow", remote.url) });
    let event = call(&host, json!([slow])).await;
    let a = attempt(&event);
    assert_eq!(a["outcome"]["kind"], "reject", "{a:#}");
    assert!(
        a["http"][0]["error"]
            .as_str()
            .expect("error")
            .contains("time"),
        "a timeout: {a:#}"
    );
    let took = a["duration_us"].as_u64().expect("duration") / 1000;
    assert!(
        took < 5_000,
        "the time budget cut the call short: {took} ms"
    );

    let big = json!({ "method": "GET", "url": format!("{}/big", remote.url) });
    let event = call(&host, json!([big])).await;
    let a = attempt(&event);
    assert_eq!(a["outcome"]["kind"], "reject", "{a:#}");
    assert!(
        a["outcome"]["message"]
            .as_str()
            .expect("message")
            .contains("too large: response body over max_response_bytes (1024 bytes)"),
        "the oversized response is an error: {a:#}"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_ledger_notifies_large_payments_only() {
    let remote = Remote::start().await;
    let (allowed, url) = (remote.url.clone(), format!("{}/hook", remote.url));
    let host = Setup::new()
        .plugin("stripe-ledger", plugins::STRIPE_LEDGER)
        .limits("stripe-ledger", |s| {
            s.allowed_hosts = vec![allowed];
            s.config
                .insert("large_payment_cents".into(), "10000".into());
            s.config.insert("notify_url".into(), url);
        })
        .start()
        .await;
    for (id, cents) in [("small", 2_500), ("large", 250_000)] {
        let payment = json!({
            "id": format!("evt_{id}"),
            "type": "payment_intent.succeeded",
            "data": { "object": {
                "id": format!("pi_{id}"), "amount": cents, "amount_received": cents,
                "currency": "eur", "customer": "cus_1"
            }}
        });
        let (status, answer) = host
            .post_json("stripe.payment_intent.succeeded", &payment)
            .await;
        assert_eq!(status, 202, "{answer}");
        let event = host.wait_settled(answer["id"].as_str().expect("id")).await;
        assert_eq!(event["status"], "succeeded", "{event:#}");
    }
    let received = remote.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].0.as_deref(), Some("large-payment-pi_large"));
    let text = received[0].1["text"].as_str().expect("text");
    assert!(
        text.contains("2500.00 EUR") && text.contains("pi_large"),
        "{text}"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_digest_posts_the_days_activity_on_its_schedule() {
    let remote = Remote::start().await;
    let (allowed, url) = (remote.url.clone(), format!("{}/hook", remote.url));
    let host = Setup::new()
        .plugin("github-digest", plugins::GITHUB_DIGEST)
        .limits("github-digest", |s| {
            s.allowed_hosts = vec![allowed];
            s.config.insert("digest_url".into(), url);
            // Every second instead of daily, so the test sees it.
            s.schedules
                .insert("daily-digest".into(), "* * * * * *".into());
        })
        .start()
        .await;
    let headers = [
        ("content-type", "application/json"),
        ("x-github-event", "push"),
    ];
    let (status, push) = host
        .post(
            "github.push",
            hookhost_tests::github_fixture("push/payload.json"),
            &headers,
        )
        .await;
    assert_eq!(status, 202);
    host.wait_settled(push["id"].as_str().expect("id")).await;
    let digest = remote
        .wait_for(|body| {
            body["text"]
                .as_str()
                .is_some_and(|t| t.contains("Codertocat/Hello-World: 1 push"))
        })
        .await;
    assert!(digest.0.is_some(), "the digest carries an idempotency key");
    // The day's counts were reset with the post: later digests are quiet.
    remote
        .wait_for(|body| body["text"] == "GitHub digest: a quiet day.")
        .await;
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_run_never_reaches_the_network_and_answers_only_journaled_calls() {
    let remote = Remote::start().await;
    let allowed = remote.url.clone();
    let host = Setup::new()
        .plugin("caller", plugins::TEST_CALLER)
        .limits("caller", |s| {
            s.allowed_hosts = vec![allowed];
            s.http_time_ms = Some(300);
        })
        .start()
        .await;
    // Each live attempt's first call is answered (and journaled); its
    // second runs out of time, so nothing of it is journaled.
    let (hook, slow) = (
        format!("{}/hook", remote.url),
        format!("{}/slow", remote.url),
    );
    for n in 0..3 {
        let event = call(
            &host,
            json!([{ "url": hook, "body": { "n": n } }, { "method": "GET", "url": slow }]),
        )
        .await;
        assert_eq!(event["status"], "dead", "{event:#}");
    }
    assert_eq!(remote.received().len(), 3, "the live runs called out");

    let candidate = hookhost_tests::variant(
        &std::fs::read(plugins::TEST_CALLER).expect("component"),
        "v2",
    );
    let client = reqwest::Client::new();
    let uploaded: Value = client
        .post(host.url("/plugins/caller/candidates"))
        .header("content-type", "application/wasm")
        .body(candidate)
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    let report: Value = client
        .post(host.url("/plugins/caller/shadow"))
        .json(&json!({ "version": uploaded["version"] }))
        .send()
        .await
        .expect("shadow")
        .json()
        .await
        .expect("json");
    assert_eq!(report["events"], 3, "{report:#}");
    assert_eq!(
        remote.received().len(),
        3,
        "the shadow run sent nothing: {report:#}"
    );
    for result in report["results"].as_array().expect("results") {
        let [answered, refused] = [0, 1].map(|i| &result["candidate"]["http"][i]);
        assert_eq!(answered["journaled"], true, "{result:#}");
        assert_eq!(answered["status"], 200, "{result:#}");
        assert_eq!(refused["origin"], remote.url.as_str(), "{result:#}");
        assert!(
            refused["error"]
                .as_str()
                .is_some_and(|e| e.contains("a shadow run never reaches the network")),
            "{result:#}"
        );
        assert_eq!(result["live"]["http"][0]["status"], 200, "{result:#}");
    }
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_name_that_resolves_to_loopback_is_refused_unless_the_address_is_named() {
    let remote = Remote::start().await;
    let port = remote.url.rsplit(':').next().expect("port").to_owned();
    let by_name = format!("http://localhost:{port}");
    let host = Setup::new()
        .plugin("caller", plugins::TEST_CALLER)
        .limits("caller", |s| s.allowed_hosts = vec![by_name.clone()])
        .start()
        .await;
    let event = call(&host, json!([{ "url": format!("{by_name}/hook") }])).await;
    assert_eq!(event["status"], "dead", "{event:#}");
    let error = attempt(&event)["http"][0]["error"]
        .as_str()
        .expect("recorded error")
        .to_owned();
    assert!(
        error.starts_with("denied: localhost resolves to") && error.contains("allowed_hosts"),
        "{error}"
    );
    assert!(remote.received().is_empty(), "the call reached the server");
    host.stop().await;

    // Naming the address itself is the operator's explicit grant.
    let by_address = remote.url.clone();
    let host = Setup::new()
        .plugin("caller", plugins::TEST_CALLER)
        .limits("caller", |s| s.allowed_hosts = vec![by_address])
        .start()
        .await;
    let event = call(&host, json!([{ "url": format!("{}/hook", remote.url) }])).await;
    assert_eq!(event["status"], "succeeded", "{event:#}");
    assert_eq!(remote.received().len(), 1);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_built_against_0_1_0_loads_unchanged_and_calls_out_through_wasi_http() {
    let remote = Remote::start().await;
    let allowed = remote.url.clone();
    let host = Setup::new()
        .plugin("legacy", plugins::TEST_LEGACY)
        .plugin("caller", plugins::TEST_CALLER)
        .limits("legacy", |s| s.allowed_hosts = vec![allowed])
        .start()
        .await;
    assert_eq!(host.contract("legacy").await, Some(json!("0.1.0")));
    assert_eq!(host.contract("caller").await, Some(json!("0.2.1")));

    let (status, answer) = host
        .post_json(
            "test.legacy",
            &json!({ "get": format!("{}/big", remote.url) }),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let event = host.wait_settled(answer["id"].as_str().expect("id")).await;
    assert_eq!(event["status"], "succeeded", "{event:#}");
    let attempt = attempt(&event);
    let writes = &attempt["effects"]["kv_writes"];
    let write = |key: &str| {
        writes
            .as_array()
            .expect("writes")
            .iter()
            .find(|w| w["key"] == key)
            .map(|w| w["value"]["text"].clone())
    };
    assert_eq!(write("seen"), Some(json!("1")), "{attempt:#}");
    assert_eq!(write("status"), Some(json!("200")), "{attempt:#}");
    assert_eq!(attempt["http"][0]["status"], 200, "{attempt:#}");
    assert_eq!(
        attempt["logs"][0]["message"],
        format!("legacy saw {}", event["event"]["id"].as_str().expect("id"))
    );
    host.stop().await;
}
