//! Buffered effects: kv writes and emitted events commit only with success,
//! and concurrent read-modify-writes never lose an update.

use hookhost::store::Store;
use hookhost_tests::{Setup, attempts, plugins};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempt_leaves_no_kv_write_and_no_emitted_event() {
    let host = Setup::new()
        .plugin("counter", plugins::TEST_COUNTER)
        .start()
        .await;

    let (_, failed) = host.post_json("test.count", &json!({ "fail": true })).await;
    let failed = host.wait_settled(failed["id"].as_str().expect("id")).await;
    assert_eq!(failed["status"], "dead", "{failed:#}");
    assert_eq!(attempts(&failed)[0]["outcome"]["kind"], "reject");

    let (_, ok) = host.post_json("test.count", &json!({})).await;
    let ok = host.wait_settled(ok["id"].as_str().expect("id")).await;
    let fields = &attempts(&ok)[0]["logs"][0]["fields"];
    assert_eq!(
        fields[0],
        json!(["before", "0"]),
        "the failed attempt's write must not be visible"
    );
    assert_eq!(fields[1], json!(["after", "1"]));

    let (_, counted) = host.get("/events?topic=test.counted").await;
    let counted = counted["events"].as_array().expect("events");
    assert_eq!(
        counted.len(),
        1,
        "only the successful attempt emits: {counted:#?}"
    );
    let (_, emitted) = host
        .get(&format!(
            "/events/{}",
            counted[0]["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(emitted["event"]["body"]["source"], ok["event"]["id"]);
    assert_eq!(emitted["event"]["emitted_by"], ok["deliveries"][0]["id"]);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitted_event_is_stored_with_its_body_key_and_origin() {
    let host = Setup::new()
        .plugin("stripe-ledger", plugins::STRIPE_LEDGER)
        .start()
        .await;
    let payment = json!({
        "id": "evt_9", "type": "payment_intent.succeeded",
        "data": { "object": { "id": "pi_9", "amount": 150000, "currency": "USD" } }
    });
    let (_, answer) = host
        .post_json("stripe.payment_intent.succeeded", &payment)
        .await;
    let source = host.wait_settled(answer["id"].as_str().expect("id")).await;
    assert_eq!(source["status"], "succeeded");
    let logs = &attempts(&source)[0]["logs"];
    assert_eq!(logs[0]["message"], "large payment recorded", "{logs:#}");

    let (_, entries) = host.get("/events?topic=ledger.entry").await;
    let id = entries["events"][0]["id"]
        .as_str()
        .expect("ledger entry stored");
    let (_, entry) = host.get(&format!("/events/{id}")).await;
    assert_eq!(entry["event"]["body"]["cents"], 150000);
    assert_eq!(entry["event"]["body"]["currency"], "usd");
    assert_eq!(entry["event"]["idempotency_key"], "ledger-pi_9");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_never_lose_an_update() {
    const EVENTS: usize = 40;
    let host = Setup::new()
        .plugin("counter", plugins::TEST_COUNTER)
        .limits("counter", |s| s.max_concurrency = Some(8))
        .start()
        .await;

    let empty = json!({});
    let posts = (0..EVENTS).map(|_| host.post_json("test.count", &empty));
    let answers = futures::future::join_all(posts).await;
    for (status, answer) in &answers {
        assert_eq!(*status, 202, "{answer}");
    }
    for (_, answer) in &answers {
        let event = host.wait_settled(answer["id"].as_str().expect("id")).await;
        assert_eq!(event["status"], "succeeded", "{event:#}");
    }
    let setup = host.stop().await;

    let store = Store::open(setup.data_dir()).expect("reopen store");
    let (_, count) = store
        .kv_get("counter", "count")
        .await
        .expect("kv read")
        .expect("count stored");
    assert_eq!(String::from_utf8_lossy(&count), EVENTS.to_string());
    store.close().await.expect("close");
}
