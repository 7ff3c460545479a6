//! Handlers in Python and JavaScript on the same WIT world as the Rust ones,
//! run end to end through the real host: the examples in `plugins/`
//! (`order-tally`, componentize-py; `lead-router`, componentize-js) and the
//! sandbox probes in `tests/guests/`.
//!
//! The guests are built with their own toolchains (`xtask::polyglot`). When
//! one is missing, its tests say so and pass, so `cargo test` works on a
//! machine with only Rust; `.ci/run` installs both and sets
//! `HOOKHOST_REQUIRE_POLYGLOT=1`, which turns a missing toolchain into a
//! failure.
//!
//! Longer than 600 lines on purpose: one test binary, so each guest (an 18 MB
//! Python component compiles for seconds) builds once for all its tests.

use hookhost::model::RetryPolicy;
use hookhost_tests::{Setup, TestHost, WAIT};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use xtask::polyglot::{self, BuildError, Guest};

/// Large guests compile for a while (an 18 MB Python guest takes seconds
/// even in a release build) before the host serves.
const READY: Duration = Duration::from_secs(180);

/// The built component, or `None` when its toolchain is missing and not
/// required.
fn component(guest: &Guest) -> Option<PathBuf> {
    match polyglot::build(guest) {
        Ok(path) => Some(path),
        Err(BuildError::Missing(why)) => {
            assert!(
                std::env::var("HOOKHOST_REQUIRE_POLYGLOT").is_err(),
                "HOOKHOST_REQUIRE_POLYGLOT is set but {why}"
            );
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipping {}: {why}", guest.name);
            }
            None
        }
        Err(BuildError::Failed(why)) => panic!("{why}"),
    }
}

/// A quick retry policy for the tests: two attempts, 10 ms apart.
fn quick_retry(s: &mut hookhost::config::PluginSettings) {
    s.retry = Some(RetryPolicy {
        max_attempts: 2,
        initial_backoff_ms: 10,
        max_backoff_ms: 10,
    });
}

async fn post(host: &TestHost, topic: &str, body: &str) -> String {
    let (status, answer) = host
        .post(
            topic,
            body.as_bytes().to_vec(),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    answer["id"].as_str().expect("id").to_owned()
}

/// The attempts of the first delivery, once settled.
async fn settled(host: &TestHost, id: &str) -> (String, Vec<Value>) {
    settled_within(host, id, WAIT).await
}

/// [`settled`], waiting up to `wait` (longer for a plugin still compiling).
async fn settled_within(host: &TestHost, id: &str, wait: Duration) -> (String, Vec<Value>) {
    let event = host
        .wait_event_within(id, wait, |e| {
            e["status"] == "succeeded" || e["status"] == "dead"
        })
        .await;
    let attempts = event["deliveries"][0]["attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    (
        event["status"].as_str().unwrap_or_default().to_owned(),
        attempts,
    )
}

/// Bodies of the events on `topic`, oldest first.
async fn emitted(host: &TestHost, topic: &str) -> Vec<Value> {
    let (_, list) = host.get(&format!("/events?topic={topic}&limit=100")).await;
    let mut bodies = Vec::new();
    for e in list["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .rev()
    {
        let (_, event) = host
            .get(&format!("/events/{}", e["id"].as_str().expect("id")))
            .await;
        bodies.push(event["event"]["body"].clone());
    }
    bodies
}

/// What one example must show: kv and emit on success, a returned retry
/// and reject, and an uncaught exception recorded as a trap with its message.
struct Example {
    guest: Guest,
    topic: &'static str,
    emits: &'static str,
    first: &'static str,
    second: &'static str,
    retry: &'static str,
    reject: &'static str,
    raise: &'static str,
    /// Text the uncaught exception leaves in the attempt.
    raised: &'static str,
    /// The config key of the URL the example queues a request to, after
    /// commit, for each success.
    outbox_url: &'static str,
}

/// A 127.0.0.1 receiver that records each request's idempotency key and
/// answers 200.
async fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let keys = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, keys)
}

async fn example_end_to_end(example: Example, check: impl Fn(&[Value])) {
    let Some(path) = component(&example.guest) else {
        return;
    };
    let name = example.guest.name;
    let (url, received) = receiver().await;
    let host = Setup::new()
        .plugin(name, path.to_str().expect("path"))
        .limits(name, |s| {
            quick_retry(s);
            s.allowed_hosts = vec![url.clone()];
            s.config
                .insert(example.outbox_url.into(), format!("{url}/after"));
        })
        .ready_within(READY)
        .start()
        .await;
    let (_, plugin) = host.get(&format!("/plugins/{name}")).await;
    assert_eq!(plugin["loaded"], true, "{plugin}");

    // Success: kv carries state from one event to the next, emits commit.
    let mut succeeded = Vec::new();
    let mut ids = Vec::new();
    for body in [example.first, example.second] {
        let id = post(&host, example.topic, body).await;
        succeeded.push(format!("{id}:{name}:outbox:0"));
        ids.push(id.clone());
        let (status, attempts) = settled(&host, &id).await;
        assert_eq!(status, "succeeded", "{attempts:#?}");
        assert_eq!(attempts[0]["outcome"]["kind"], "ok");
        assert!(!attempts[0]["logs"].as_array().expect("logs").is_empty());
        assert_eq!(attempts[0]["version"], plugin["version"]);
    }
    check(&emitted(&host, example.emits).await);
    // Replayed offline with what it read (its clocks, its secure random, the
    // kv values it saw), each success does again exactly what it did.
    for id in &ids {
        let answer = reqwest::Client::new()
            .post(host.url(&format!("/events/{id}/replay-exact")))
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("replay");
        assert_eq!(answer.status(), 200);
        let report: Value = answer.json().await.expect("json");
        assert_eq!(report["exact"], true, "{report:#}");
    }

    // A returned retry is retried by the policy, then dead.
    let id = post(&host, example.topic, example.retry).await;
    let (status, attempts) = settled(&host, &id).await;
    assert_eq!(status, "dead");
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    assert!(attempts.iter().all(|a| a["outcome"]["kind"] == "retry"));
    // A reject is not retried.
    let id = post(&host, example.topic, example.reject).await;
    let (status, attempts) = settled(&host, &id).await;
    assert_eq!((status.as_str(), attempts.len()), ("dead", 1));
    assert_eq!(attempts[0]["outcome"]["kind"], "reject");
    // An uncaught exception traps; its message is in the attempt.
    let id = post(&host, example.topic, example.raise).await;
    let (_, attempts) = settled(&host, &id).await;
    let last = attempts.last().expect("an attempt");
    assert_eq!(last["outcome"]["kind"], "trap", "{last:#}");
    let recorded = format!("{}{}", last["stderr"], last["outcome"]["message"]);
    assert!(recorded.contains(example.raised), "{last:#}");
    // Nothing a failed attempt did was committed.
    assert_eq!(emitted(&host, example.emits).await.len(), 2);
    // Each success queued one request, sent after its commit; the failures
    // queued nothing.
    assert_eq!(emitted(&host, "hookhost.outbox").await.len(), 2);
    let deadline = std::time::Instant::now() + WAIT;
    while received.lock().expect("log").len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the outbox sent nothing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut keys = received.lock().expect("log").clone();
    keys.sort();
    succeeded.sort();
    assert_eq!(keys, succeeded);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_runs_end_to_end() {
    let example = Example {
        guest: polyglot::EXAMPLES[0],
        topic: "shop.order.paid",
        emits: "shop.customer.updated",
        first: r#"{"order_id": "o-1", "customer": "c-42", "total_cents": 2500, "currency": "eur"}"#,
        second: r#"{"order_id": "o-2", "customer": "c-42", "total_cents": 1000}"#,
        retry: r#"{"order_id": "o-3", "customer": "c-42", "status": "pending"}"#,
        reject: r#"{"total_cents": 100}"#,
        raise: r#"{"order_id": "o-4", "customer": "c-42", "total_cents": "lots"}"#,
        raised: "ValueError",
        outbox_url: "receipt_url",
    };
    example_end_to_end(example, |updates| {
        assert_eq!(updates.len(), 2, "{updates:?}");
        assert_eq!(updates[1]["customer"], "c-42");
        assert_eq!(updates[1]["orders"], 2, "kv kept the first order");
        assert_eq!(updates[1]["lifetime_cents"], 3500);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_example_runs_end_to_end() {
    let example = Example {
        guest: polyglot::EXAMPLES[1],
        topic: "form.submitted",
        emits: "crm.lead.created",
        first: r#"{"email": "ada@example.com", "name": "Ada", "message": "Call me"}"#,
        second: r#"{"email": "Grace@Example.com", "name": "Grace", "message": " Quote, please "}"#,
        retry: r#"{"email": "bob@example.com", "captcha": "pending"}"#,
        reject: r#"{"name": "no email"}"#,
        raise: r#"{"email": "eve@example.com", "message": 42}"#,
        raised: "TypeError",
        outbox_url: "alert_url",
    };
    example_end_to_end(example, |leads| {
        assert_eq!(leads.len(), 2, "{leads:?}");
        assert_eq!(leads[1]["email"], "grace@example.com");
        assert_eq!(leads[1]["summary"], "Quote, please");
        assert_eq!(leads[1]["leads_from_domain"], 2, "kv kept the first lead");
    })
    .await;
}

/// A probe that spins is stopped by fuel, and, given fuel enough, by the
/// deadline; the host goes on serving. A new version compiling after a
/// restart does not hold up ingest.
async fn limits_hold(guest: Guest, topic: &str) {
    let Some(path) = component(&guest) else {
        return;
    };
    let name = guest.name;
    let host = Setup::new()
        .plugin(name, path.to_str().expect("path"))
        .limits(name, |s| {
            s.fuel = Some(300_000_000);
            s.timeout_ms = Some(30_000);
            s.retry = Some(RetryPolicy {
                max_attempts: 1,
                initial_backoff_ms: 10,
                max_backoff_ms: 10,
            });
        })
        .ready_within(READY)
        .start()
        .await;
    let id = post(&host, topic, r#"{"spin": true}"#).await;
    let (_, attempts) = settled(&host, &id).await;
    assert_eq!(
        attempts[0]["outcome"]["kind"], "out_of_fuel",
        "{attempts:#?}"
    );
    assert!(attempts[0]["fuel_consumed"].as_u64().expect("fuel") >= 300_000_000);
    let ok = post(&host, topic, "{}").await;
    assert_eq!(settled(&host, &ok).await.0, "succeeded");

    // A new version of the known plugin (the same code with a custom
    // section appended, so a new sha256) must compile, for seconds: the
    // restarted host serves meanwhile and routes its events to it.
    let setup = host.stop().await.limits(name, |s| {
        s.fuel = Some(10_000_000_000_000);
        s.timeout_ms = Some(500);
    });
    let bytes = std::fs::read(&path).expect("read component");
    std::fs::write(
        setup.plugin_path(name),
        hookhost_tests::variant(&bytes, "a new version"),
    )
    .expect("write the new version");
    let host = setup.ready_when_serving().start().await;
    let (_, plugins) = host.get("/plugins").await;
    assert_eq!(plugins["loading"], serde_json::json!([name]), "{plugins}");
    let id = post(&host, topic, r#"{"spin": true}"#).await;
    let (_, routed) = host.get(&format!("/events/{id}")).await;
    assert_eq!(routed["deliveries"][0]["plugin"], name, "{routed}");
    let (_, attempts) = settled_within(&host, &id, READY).await;
    assert_eq!(attempts[0]["outcome"]["kind"], "deadline", "{attempts:#?}");
    let took_ms = attempts[0]["duration_us"].as_u64().expect("duration") / 1000;
    assert!(
        (500..WAIT.as_millis() as u64).contains(&took_ms),
        "{took_ms} ms"
    );
    let ok = post(&host, topic, "{}").await;
    assert_eq!(settled(&host, &ok).await.0, "succeeded");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuel_and_deadline_stop_a_python_guest() {
    limits_hold(polyglot::PROBES[0], "py.probe").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuel_and_deadline_stop_a_javascript_guest() {
    limits_hold(polyglot::PROBES[1], "js.probe").await;
}

/// The text of kv key `key` as the attempt wrote it.
fn written(attempt: &Value, key: &str) -> Option<String> {
    attempt["effects"]["kv_writes"]
        .as_array()?
        .iter()
        .find(|w| w["key"] == key)
        .and_then(|w| w["value"]["text"].as_str().map(str::to_owned))
}

/// A guest calls an allowed server on 127.0.0.1 through the `http`
/// interface (the request arrives, with the host's default idempotency
/// key), and a call to a host not on its list is refused and recorded.
/// `denied` is the refusal as the guest stored it.
async fn calls_out(guest: Guest, topic: &str, lang: &str, denied: &str) {
    let Some(path) = component(&guest) else {
        return;
    };
    let server = hookhost::testing::RecordingServer::start()
        .await
        .expect("server");
    let url = server.url.clone();
    let name = guest.name;
    let allowed = url.clone();
    let host = Setup::new()
        .plugin(name, path.to_str().expect("path"))
        .limits(name, |s| s.allowed_hosts = vec![allowed])
        .ready_within(READY)
        .start()
        .await;
    let body = serde_json::json!({ "fetch": format!("{url}/hook") }).to_string();
    let id = post(&host, topic, &body).await;
    let (status, attempts) = settled(&host, &id).await;
    assert_eq!(status, "succeeded", "{attempts:#?}");
    assert_eq!(
        written(&attempts[0], "status").as_deref(),
        Some("200"),
        "{attempts:#?}"
    );
    assert_eq!(
        server.received(),
        [(
            Some(format!("{id}:{name}:0")),
            serde_json::json!({ "from": lang, "event": id })
        )]
    );
    assert_eq!(attempts[0]["http"][0]["status"], 200, "{attempts:#?}");

    let id = post(&host, topic, r#"{"fetch": "http://127.0.0.2:9/hook"}"#).await;
    let (status, attempts) = settled(&host, &id).await;
    assert_eq!(status, "succeeded", "{attempts:#?}");
    assert_eq!(
        written(&attempts[0], "error").as_deref(),
        Some(denied),
        "{attempts:#?}"
    );
    let recorded = attempts[0]["http"][0]["error"].as_str().unwrap_or_default();
    assert!(recorded.contains("allowed_hosts"), "{attempts:#?}");
    assert_eq!(server.received().len(), 1);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_guest_calls_out_through_the_http_interface() {
    calls_out(
        polyglot::PROBES[0],
        "py.probe",
        "py",
        "Error_Denied: not in the plugin's allowed_hosts",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_guest_calls_out_through_the_http_interface() {
    calls_out(
        polyglot::PROBES[1],
        "js.probe",
        "js",
        r#"{"tag":"denied","val":"not in the plugin's allowed_hosts"}"#,
    )
    .await;
}

/// A toolchain's result, or `None` (and a note) when it is missing and not
/// required.
fn unless_missing<T>(result: Result<T, BuildError>, what: &str) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(BuildError::Missing(why)) => {
            assert!(
                std::env::var("HOOKHOST_REQUIRE_POLYGLOT").is_err(),
                "HOOKHOST_REQUIRE_POLYGLOT is set but {why}"
            );
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipping {what}: {why}");
            }
            None
        }
        Err(BuildError::Failed(why)) => panic!("{what}: {why}"),
    }
}

#[test]
fn the_examples_pass_their_own_tests_without_a_host() {
    for guest in polyglot::EXAMPLES {
        let dir = xtask::workspace_root().join(guest.dir);
        if let Some(output) = unless_missing(polyglot::own_tests(&dir, guest.lang), guest.name) {
            assert!(
                output.contains("passed") || output.contains("# pass"),
                "{output}"
            );
            assert!(!output.contains("# pass 0"), "no test ran: {output}");
        }
    }
}

/// The Python and JavaScript examples read their payloads as the types their
/// contracts generate: the committed types are what the schemas generate
/// today, each handler type-checks against them, and a copy of the handler
/// that misspells a field the type declares does not.
#[test]
fn the_examples_read_their_payloads_as_their_contracts_types() {
    let root = xtask::workspace_root();
    // A field access in each handler, the same access misspelt, and the
    // misspelt name the checker names.
    let misspell = [
        (r#"order["customer"]"#, r#"order["customr"]"#, "customr"),
        ("lead.message", "lead.mesage", "mesage"),
    ];
    for (types, (field, typo, name)) in xtask::types::EXAMPLES.iter().zip(misspell) {
        let Some(fresh) = unless_missing(xtask::types::generate(types), types.out) else {
            continue;
        };
        let committed = std::fs::read_to_string(root.join(types.out)).expect("committed types");
        assert!(
            committed == fresh,
            "{} differs from what {} generates: run `cargo xtask types`",
            types.out,
            types.schema
        );
        let handler = root.join(types.handler);
        if let Err(e) = xtask::types::check(&handler, types.lang) {
            panic!("{}: {e}", types.handler);
        }

        let source = std::fs::read_to_string(&handler).expect("handler");
        assert!(source.contains(field), "{} reads {field}", types.handler);
        let dir = tempfile::tempdir().expect("tempdir");
        let types_file = std::path::Path::new(types.out).file_name().expect("name");
        std::fs::copy(root.join(types.out), dir.path().join(types_file)).expect("copy types");
        let sdk = root.join("sdk/js/index.js");
        let misspelt = source
            .replacen(field, typo, 1)
            .replace("../../sdk/js/index.js", &sdk.to_string_lossy());
        let copy = dir.path().join(handler.file_name().expect("name"));
        std::fs::write(&copy, misspelt).expect("write copy");
        match xtask::types::check(&copy, types.lang) {
            Err(BuildError::Failed(complaint)) => assert!(complaint.contains(name), "{complaint}"),
            other => panic!("{} with {typo} type-checks: {other:?}", types.handler),
        }
    }
}

/// `hookhost new --lang <lang>`: the folder's own tests pass with no host,
/// it builds as is, and the host serves it: an order is handled, the
/// allow-listed notify call arrives at a server on 127.0.0.1 with the
/// default idempotency key, and a copy whose notify_url is not allowed has
/// the refusal recorded in its attempt.
async fn scaffolded(lang: hookhost::scaffold::Lang, build_as: polyglot::Lang) {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("tally");
    hookhost::scaffold::create("tally", &folder, lang, None).expect("scaffold");
    let Some(output) = unless_missing(polyglot::own_tests(&folder, build_as), "own tests") else {
        return;
    };
    assert!(
        output.contains("5 passed") || output.contains("# pass 5"),
        "{output}"
    );
    let wasm = dir.path().join("tally.wasm");
    if unless_missing(polyglot::toolchain(build_as), "build").is_none() {
        return;
    }
    hookhost::dev::build::build(&folder, lang, &wasm).expect("the scaffold builds as is");
    // Its golden cases pass in the sandbox, offline, as written.
    let verdicts = hookhost::harness::run(
        &wasm,
        &[folder.join("cases")],
        &hookhost::harness::Options::default(),
    )
    .await
    .expect("hookhost test");
    assert_eq!(verdicts.len(), 2);
    for (case, verdict) in &verdicts {
        assert!(
            matches!(verdict, hookhost::harness::Verdict::Passed),
            "{}: {verdict:?}",
            case.display()
        );
    }
    let server = hookhost::testing::RecordingServer::start()
        .await
        .expect("server");
    let url = server.url.clone();
    let allowed = url.clone();
    let notify = format!("{url}/hook");
    let wasm = wasm.to_str().expect("path").to_owned();
    let host = Setup::new()
        .plugin("tally", &wasm)
        .plugin("tally-elsewhere", &wasm)
        .limits("tally", |s| {
            s.allowed_hosts = vec![allowed];
            s.config.insert("notify_url".into(), notify);
        })
        .limits("tally-elsewhere", |s| {
            quick_retry(s);
            s.config
                .insert("notify_url".into(), "https://api.example.com/totals".into());
        })
        .ready_within(READY)
        .start()
        .await;
    let id = post(&host, "shop.order.created", r#"{"amount": 5}"#).await;
    let event = host
        .wait_event_within(&id, READY, |e| {
            e["deliveries"].as_array().is_some_and(|d| {
                d.iter()
                    .all(|d| d["status"] == "succeeded" || d["status"] == "dead")
            })
        })
        .await;
    let served = hookhost_tests::delivery_to(&event, "tally");
    assert_eq!(served["status"], "succeeded", "{event:#}");
    assert_eq!(
        server.received(),
        [(
            Some(format!("{id}:tally:0")),
            serde_json::json!({ "topic": "shop.order.created", "total": 5 })
        )]
    );
    let refused = hookhost_tests::delivery_to(&event, "tally-elsewhere");
    assert_eq!(refused["status"], "dead", "{event:#}");
    let call = &refused["attempts"][0]["http"][0];
    assert!(
        call["error"]
            .as_str()
            .is_some_and(|e| e.contains("allowed_hosts")),
        "{event:#}"
    );
    assert_eq!(server.received().len(), 1);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaffolded_python_handler_tests_builds_and_serves() {
    scaffolded(
        hookhost::scaffold::Lang::Python,
        polyglot::Lang::Python { module: "app" },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaffolded_javascript_handler_tests_builds_and_serves() {
    scaffolded(
        hookhost::scaffold::Lang::Js,
        polyglot::Lang::JavaScript { file: "handler.js" },
    )
    .await;
}

/// Compiling a Python candidate takes seconds; that is the host's time, not
/// a slow client's, so the request timeout (here far shorter than any
/// compile of it) bounds reading the upload, not the compile behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_that_compiles_longer_than_the_request_timeout_is_accepted() {
    let Some(path) = component(&polyglot::EXAMPLES[0]) else {
        return;
    };
    let host = Setup::new()
        .configure(|c| c.request_timeout_ms = 300)
        .start()
        .await;
    let bytes = std::fs::read(&path).expect("component");
    let (status, answer) = host.upload_candidate("order-tally", bytes).await;
    assert_eq!(status, 201, "{answer}");
    assert!(answer["version"].is_string(), "{answer}");
    host.stop().await;
}
