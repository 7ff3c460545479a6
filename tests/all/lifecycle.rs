//! Data lifecycle: retention, backup and restore, a disk that fills.

use hookhost::model::RetryPolicy;
use hookhost_tests::{Setup, TestHost, WAIT, plugins};
use serde_json::{Value, json};
use std::time::Duration;

/// Posts a JSON event and returns its id.
async fn post_id(host: &TestHost, topic: &str, body: &Value) -> String {
    let (status, answer) = host.post_json(topic, body).await;
    assert_eq!(status, 202, "{answer}");
    answer["id"].as_str().expect("id").to_owned()
}

/// Polls until `GET /events/{id}` answers `status`.
async fn wait_status(host: &TestHost, id: &str, status: u16) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (now, answer) = host.get(&format!("/events/{id}")).await;
        if now == status {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "event {id} still answers {now}, not {status}: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_finished_events_and_keeps_dead_letters() {
    let host = Setup::new()
        .plugin("counter", plugins::TEST_COUNTER)
        .plugin("flaky", plugins::TEST_ALWAYS_RETRY)
        .limits("flaky", |s| {
            s.retry = Some(RetryPolicy {
                max_attempts: 1,
                initial_backoff_ms: 10,
                max_backoff_ms: 10,
            })
        })
        .configure(|c| {
            c.retention.max_age = "1s".into();
            c.retention.check_every = "50ms".into();
            c.retention.batch = 2;
        })
        .start()
        .await;
    let counted = post_id(&host, "test.count", &json!({})).await;
    let dead = post_id(&host, "test.retry", &json!({})).await;
    let unrouted = post_id(&host, "nobody.listens", &json!({})).await;
    host.wait_event(&counted, |e| e["status"] == "succeeded")
        .await;
    host.wait_event(&dead, |e| e["status"] == "dead").await;

    // Finished and older than a second: gone, attempts and logs with them.
    wait_status(&host, &counted, 404).await;
    wait_status(&host, &unrouted, 404).await;
    // The dead letter stays until it is handled, however old.
    let (status, event) = host.get(&format!("/events/{dead}")).await;
    assert_eq!(status, 200, "{event}");
    let (_, letters) = host.get("/dead-letters").await;
    assert_eq!(
        letters["dead_letters"].as_array().map(Vec::len),
        Some(1),
        "{letters}"
    );
    let metrics = reqwest::get(host.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let purged: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hookhost_purged_events_total "))
        .expect("purge counter")
        .parse()
        .expect("number");
    assert!(purged >= 2.0, "{purged}");
    host.stop().await;
}
