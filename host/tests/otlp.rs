//! OTLP export (built with `--features otlp`): the real binary sends its
//! spans, attempts included, to a local OTLP/HTTP receiver.
#![cfg(feature = "otlp")]

mod common;

use axum::body::Bytes;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_receiver() {
    let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let log = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let log = log.clone();
            async move {
                log.lock().expect("log").push(body.to_vec());
                ""
            }
        }),
    );
    let (base, receiver) = common::serve_local(app).await;
    let endpoint = format!("{base}/v1/traces");

    let dir = tempfile::tempdir().expect("tempdir");
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    common::install_test_plugin(&plugins, "test-counter", "counter");
    let mut host = common::start_with(
        &data,
        &plugins,
        &[("HOOKHOST_OTLP_ENDPOINT", endpoint.as_str())],
    );
    let client = reqwest::Client::new();
    let answer: serde_json::Value = client
        .post(format!("{}/events/test.count", host.base))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let id = answer["id"].as_str().expect("id");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let event: serde_json::Value = client
            .get(format!("{}/events/{id}", host.base))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        if event["status"] == "succeeded" {
            break;
        }
        assert!(Instant::now() < deadline, "{event:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A graceful stop flushes the spans still batched.
    let stopped = std::process::Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", host.child.id())])
        .status()
        .expect("kill");
    assert!(stopped.success());
    assert!(host.child.wait().expect("wait").success());

    let bodies = received.lock().expect("log").clone();
    let all: Vec<u8> = bodies.concat();
    let has = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    assert!(!bodies.is_empty(), "no OTLP request arrived");
    assert!(has(b"hookhost"), "the service name is in the export");
    assert!(has(b"attempt"), "the attempt span is exported");
    assert!(has(id.as_bytes()), "spans carry the event id");
    receiver.abort();
}
