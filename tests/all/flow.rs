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
        .json(&json!({}))
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

fn attempts_of(event: &Value) -> &Vec<Value> {
    event["deliveries"][0]["attempts"]
        .as_array()
        .expect("attempts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_ordering_runs_one_key_in_ingest_order_and_other_keys_past_it() {
    use hookhost::model::Ordering;
    let host = Setup::new()
        .plugin("seq", plugins::TEST_SEQUENCE)
        .limits("seq", |s| {
            s.ordering = Some(Ordering::PerKey);
            s.order_key = Some("/key".into());
        })
        .start()
        .await;
    let post = |body: Value| {
        let host = &host;
        async move {
            let (status, answer) = host.post_json("test.seq", &body).await;
            assert_eq!(status, 202, "{answer}");
            answer["id"].as_str().expect("id").to_owned()
        }
    };
    // a1 is held (it keeps asking to be retried); a2 shares its key, b1
    // does not.
    let a1 = post(json!({ "key": "a", "n": 1, "hold": true })).await;
    let a2 = post(json!({ "key": "a", "n": 2 })).await;
    let b1 = post(json!({ "key": "b", "n": 1 })).await;

    let b1 = host.wait_settled(&b1).await;
    assert_eq!(b1["status"], "succeeded", "another key is not held up");
    host.wait_event(&a1, |e| attempts_of(e).len() >= 2).await;
    let (_, waiting) = host.get(&format!("/events/{a2}")).await;
    assert_eq!(
        attempts_of(&waiting).len(),
        0,
        "a2 waits while a1 retries: {waiting:#}"
    );
    assert_eq!(waiting["deliveries"][0]["status"], "pending");
    assert_eq!(waiting["deliveries"][0]["order_key"], "a");

    post(json!({ "release": true, "key": "r" })).await;
    let a1 = host.wait_settled(&a1).await;
    let a2 = host.wait_settled(&a2).await;
    assert_eq!(a1["status"], "succeeded");
    assert_eq!(a2["status"], "succeeded");
    let a1_last = attempts_of(&a1).last().expect("an attempt");
    let a1_ended = a1_last["started_at_ms"].as_u64().expect("start")
        + a1_last["duration_us"].as_u64().expect("duration") / 1000;
    let a2_started = attempts_of(&a2)[0]["started_at_ms"]
        .as_u64()
        .expect("start");
    assert!(
        a2_started >= a1_ended,
        "a2 started at {a2_started}, before a1 ended at {a1_ended}"
    );
    let setup = host.stop().await;
    let store = hookhost::store::Store::open(setup.data_dir()).expect("reopen store");
    let seen = async |key: &str| {
        store
            .kv_get("seq", &format!("seen:{key}"))
            .await
            .expect("kv read")
            .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
    };
    assert_eq!(seen("a").await.as_deref(), Some("[1,2]"), "ingest order");
    assert_eq!(seen("b").await.as_deref(), Some("[1]"));
    store.close().await.expect("close");
}

/// A retry falling due while the dispatcher scans is still run: the timer
/// is set from the scan's own instant. Each event is posted alone, so no
/// other wake-up could rescue a retry the timer missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_due_within_milliseconds_always_run() {
    let host = Setup::new()
        .plugin("flaky", plugins::TEST_ALWAYS_RETRY)
        .limits("flaky", |s| {
            s.retry = Some(RetryPolicy {
                max_attempts: 4,
                initial_backoff_ms: 2,
                max_backoff_ms: 2,
            })
        })
        .start()
        .await;
    for n in 0..20 {
        let (status, answer) = host.post_json("test.retry", &json!({ "n": n })).await;
        assert_eq!(status, 202, "{answer}");
        let id = answer["id"].as_str().expect("id").to_owned();
        let event = host
            .wait_event_within(&id, std::time::Duration::from_secs(20), |e| {
                e["deliveries"][0]["status"] == "dead"
            })
            .await;
        let attempts = event["deliveries"][0]["attempts"]
            .as_array()
            .expect("attempts");
        assert_eq!(attempts.len(), 4, "{event:#}");
    }
    host.stop().await;
}
