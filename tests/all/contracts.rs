//! Typed contracts: violating bodies get 422 and wait in quarantine.

use hookhost_tests::{Setup, plugins};
use serde_json::{Value, json};

const STRICT: &str = r#"{"type":"object","required":["id","total_cents"],
    "properties":{"id":{"type":"string"},"total_cents":{"type":"integer","minimum":0}}}"#;
const RELAXED: &str = r#"{"type":"object","required":["id"]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn violating_bodies_are_refused_quarantined_and_reingested_once_the_schema_is_fixed() {
    let setup = Setup::new().plugin("noop", plugins::TEST_NOOP);
    let schema = setup.data_dir().with_file_name("order.schema.json");
    std::fs::write(&schema, STRICT).expect("write schema");
    let host = setup
        .configure(|c| {
            c.contracts.insert("orders.*".into(), schema.clone());
        })
        .start()
        .await;

    let (status, ok) = host
        .post_json("orders.created", &json!({ "id": "o1", "total_cents": 500 }))
        .await;
    assert_eq!(status, 202, "{ok}");
    let (status, refused) = host
        .post_json("orders.created", &json!({ "id": 7, "total_cents": -1 }))
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"], "body violates the contract for orders.*");
    let violations: Vec<&str> = refused["violations"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(
        violations.iter().any(|v| v.starts_with("/id:"))
            && violations.iter().any(|v| v.starts_with("/total_cents:"))
    );
    let quarantined = refused["quarantine_id"]
        .as_str()
        .expect("quarantine id")
        .to_owned();

    let (_, events) = host.get("/events?topic=orders.*").await;
    assert_eq!(
        events["events"].as_array().expect("events").len(),
        1,
        "the refused body is not an event"
    );
    let (_, list) = host.get("/quarantine").await;
    assert_eq!(list["quarantine"][0]["id"], quarantined.as_str());
    assert_eq!(list["quarantine"][0]["contract"], "orders.*");

    let client = reqwest::Client::new();
    let again = client
        .post(host.url(&format!("/quarantine/{quarantined}/reingest")))
        .json(&json!({}))
        .send()
        .await
        .expect("post");
    assert_eq!(again.status(), 422, "the schema has not changed");

    // The operator relaxes the schema and restarts.
    std::fs::write(&schema, RELAXED).expect("rewrite schema");
    let host = host.stop().await.start().await;
    let released = client
        .post(host.url(&format!("/quarantine/{quarantined}/reingest")))
        .json(&json!({}))
        .send()
        .await
        .expect("post");
    assert_eq!(released.status(), 202);
    let answer: Value = released.json().await.expect("json");
    let (_, event) = host
        .get(&format!("/events/{}", answer["id"].as_str().expect("id")))
        .await;
    assert_eq!(
        event["event"]["body"],
        json!({ "id": 7, "total_cents": -1 })
    );
    let (_, list) = host.get("/quarantine").await;
    assert_eq!(list["quarantine"], json!([]));
    host.stop().await;
}
