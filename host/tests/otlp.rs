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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}/v1/traces", listener.local_addr().expect("addr"));
    let receiver = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let built = xtask::build_plugins(&["test-counter"]).expect("build the counter plugin");
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    std::fs::copy(&built[0], plugins.join("counter.wasm")).expect("install counter");
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
