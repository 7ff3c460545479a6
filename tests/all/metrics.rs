//! `GET /metrics`: Prometheus text that counts what happened.

use hookhost_tests::{Setup, plugins};
use serde_json::json;

/// The value of the sample of `name` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_ingest_attempts_reloads_and_the_queue() {
    // The recorder is per process: a plugin name no other test uses keeps
    // these samples apart.
    let host = Setup::new()
        .plugin("metered", plugins::TEST_COUNTER)
        .start()
        .await;
    for body in [json!({}), json!({}), json!({ "fail": true })] {
        let (status, answer) = host.post_json("test.count", &body).await;
        assert_eq!(status, 202, "{answer}");
        host.wait_settled(answer["id"].as_str().expect("id")).await;
    }
    let response = reqwest::get(host.url("/metrics")).await.expect("scrape");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.expect("text");
    let metered = r#"plugin="metered""#;
    assert_eq!(
        sample(
            &text,
            "hookhost_attempts_total",
            &[metered, r#"outcome="ok""#]
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "hookhost_attempts_total",
            &[metered, r#"outcome="reject""#]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "hookhost_attempt_duration_seconds_count", &[metered]),
        Some(3.0)
    );
    assert!(sample(&text, "hookhost_attempt_fuel_sum", &[metered]).is_some_and(|f| f > 0.0));
    assert_eq!(
        sample(
            &text,
            "hookhost_reloads_total",
            &[metered, r#"result="ok""#]
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &text,
            "hookhost_ingest_total",
            &[r#"source="events""#, r#"status="202""#]
        )
        .is_some_and(|n| n >= 3.0)
    );
    assert!(
        sample(
            &text,
            "hookhost_ingest_duration_seconds_bucket",
            &[r#"source="events""#]
        )
        .is_some()
    );
    assert!(
        sample(&text, "hookhost_queue_depth", &[]).is_some(),
        "{text}"
    );
    assert!(sample(&text, "hookhost_plugins_loaded", &[]).is_some_and(|n| n >= 1.0));
    // The three events went through ingest's batched transactions, and the
    // attempts' instance slots stayed warm after their instances ended.
    assert!(
        sample(
            &text,
            "hookhost_store_transaction_items_sum",
            &[r#"kind="ingest""#]
        )
        .is_some_and(|n| n >= 3.0),
        "{text}"
    );
    assert!(
        sample(&text, "hookhost_wasm_warm_memories", &[]).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    let warm = sample(&text, "hookhost_wasm_warm_memory_bytes", &[]).expect("warm bytes");
    assert!(warm > 0.0, "{text}");
    // A Rust guest's linear memory is about 1.1 MB; an attempt writes a few
    // pages of it, and a warm slot keeps only those where Linux can tell.
    if hookhost::runtime::resets_written_pages_only() {
        let slots = sample(&text, "hookhost_wasm_warm_memories", &[]).expect("slots");
        assert!(
            warm / slots < 256.0 * 1024.0,
            "{warm} bytes in {slots} slots"
        );
    }
    host.stop().await;
}
