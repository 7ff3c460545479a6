//! Flow control: backpressure on a full queue, per-key ordering.

use hookhost::model::RetryPolicy;
use hookhost_tests::{Setup, plugins};
use serde_json::{Value, json};

/// A plugin whose deliveries stay queued: every attempt asks for a retry
/// ten minutes later.
fn stuck_flaky(setup: Setup) -> Setup {
    setup
        .plugin("flaky", plugins::TEST_ALWAYS_RETRY)
        .limits("flaky", |s| {
            s.retry = Some(RetryPolicy {
                max_attempts: 10,
                initial_backoff_ms: 600_000,
                max_backoff_ms: 600_000,
            })
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_new_deliveries_with_503_and_retry_after() {
    let host = stuck_flaky(Setup::new())
        .configure(|c| c.max_queue_depth = 3)
        .start()
        .await;
    for n in 0..3 {
        let (status, answer) = host.post_json("test.retry", &json!({ "n": n })).await;
        assert_eq!(status, 202, "{answer}");
    }
    let refused = reqwest::Client::new()
        .post(host.url("/events/test.retry"))
        .header("idempotency-key", "the-fourth")
        .json(&json!({ "n": 3 }))
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let answer: Value = refused.json().await.expect("json");
    assert_eq!(answer["queue_depth"], 3, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .expect("error")
            .contains("queue is full"),
        "{answer}"
    );
    // An event no plugin takes adds nothing to the queue: still accepted.
    let (status, _) = host.post_json("nobody.listens", &json!({})).await;
    assert_eq!(status, 202);
    // Replays would add deliveries: refused the same way.
    let (_, list) = host.get("/events?topic=test.retry").await;
    let events = list["events"].as_array().expect("events");
    assert_eq!(events.len(), 3, "the refused event was not stored");
    let first = events[0]["id"].as_str().expect("id");
    let replay = reqwest::Client::new()
        .post(host.url(&format!("/events/{first}/replay")))
        .send()
        .await
        .expect("replay");
    assert_eq!(replay.status().as_u16(), 503);

    // The depth is rebuilt from the store at start: still full after a
    // restart, and a larger limit lets the sender's retry in.
    let setup = host.stop().await;
    let host = setup.start().await;
    let (status, _) = host.post_json("test.retry", &json!({ "n": 3 })).await;
    assert_eq!(status, 503, "the queue is as full after a restart");
    let host = host
        .stop()
        .await
        .configure(|c| c.max_queue_depth = 4)
        .start()
        .await;
    let (status, answer) = host.post_json("test.retry", &json!({ "n": 3 })).await;
    assert_eq!(status, 202, "{answer}");
    host.stop().await;
}
