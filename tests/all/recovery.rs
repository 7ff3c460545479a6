//! Durability across restarts and crashes.

use hookhost::model::NewEvent;
use hookhost::store::Store;
use hookhost_tests::{Setup, attempts, plugins};

/// Stores a `test.count` event with a delivery to `counter` directly, as a
/// host would have before stopping; with `claimed`, leaves the delivery
/// `running`, as a crash mid-attempt would. Returns the event id.
async fn stored_counter_event(setup: &Setup, claimed: bool) -> String {
    let store = Store::open(setup.data_dir()).expect("open");
    let event = NewEvent {
        topic: "test.count".into(),
        idempotency_key: None,
        headers: Vec::new(),
        content_type: Some("application/json".into()),
        body: b"{}".to_vec(),
        provenance: hookhost::model::Provenance::Api,
    };
    let ingested = store
        .ingest(event, &[hookhost::store::Route::new("counter")])
        .await
        .expect("ingest");
    if claimed {
        let due = store.due(u64::MAX, None, 10).await.expect("due");
        assert_eq!(due.len(), 1);
        assert!(store.claim(&due[0]).await.expect("claim").is_some());
    }
    store.close().await.expect("close");
    ingested.id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_event_is_in_the_store_after_a_restart() {
    let host = Setup::new().start().await;
    let body = b"{\"order\": 17, \"total\": \"12.50\"}".to_vec();
    let (status, answer) = host
        .post(
            "shop.order.created",
            body.clone(),
            &[
                ("content-type", "application/json"),
                ("idempotency-key", "o-17"),
            ],
        )
        .await;
    assert_eq!(status, 202);
    let id = answer["id"].as_str().expect("id").to_owned();

    let host = host.stop().await.start().await;
    let (status, event) = host.get(&format!("/events/{id}")).await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(
        event["event"]["body"],
        serde_json::json!({ "order": 17, "total": "12.50" })
    );
    let (status, again) = host
        .post("shop.order.created", body, &[("idempotency-key", "o-17")])
        .await;
    assert_eq!(
        (status, again["id"].as_str()),
        (200, Some(id.as_str())),
        "the key survives the restart"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_left_running_by_a_crash_is_claimed_again_after_restart() {
    let setup = Setup::new().plugin("counter", plugins::TEST_COUNTER);
    let id = stored_counter_event(&setup, true).await;

    let host = setup.start().await;
    let event = host.wait_settled(&id).await;
    assert_eq!(event["status"], "succeeded", "{event:#}");
    assert_eq!(attempts(&event).len(), 1);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_for_a_missing_plugin_waits_paused_and_resumes_when_it_returns() {
    let setup = Setup::new();
    let id = stored_counter_event(&setup, false).await;

    let host = setup.start().await;
    let paused = host
        .wait_event(&id, |e| e["deliveries"][0]["status"] == "paused")
        .await;
    assert_eq!(
        paused["status"], "pending",
        "a paused delivery is not finished: {paused:#}"
    );

    let host = host
        .stop()
        .await
        .plugin("counter", plugins::TEST_COUNTER)
        .start()
        .await;
    let event = host.wait_settled(&id).await;
    assert_eq!(event["status"], "succeeded", "{event:#}");
    host.stop().await;
}
