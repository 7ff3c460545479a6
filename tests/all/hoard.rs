//! A hostile handler grows everything the host keeps for its attempt: the
//! record stays within its bound, and what it leaves out is counted.

use hookhost_tests::{Setup, TestHost, attempts, plugins};
use serde_json::{Value, json};

/// The bound on one attempt's record, as JSON (`runtime::record`).
const MAX_RECORD_BYTES: usize = 256 * 1024;

async fn hoarder() -> TestHost {
    Setup::new()
        .plugin("hoard", plugins::TEST_HOARD)
        .start()
        .await
}

/// Posts `body` to the hoarder, waits for its attempt and returns it with
/// the size of its JSON.
async fn hoard(host: &TestHost, body: Value) -> (Value, usize) {
    let (status, answer) = host.post_json("test.hoard", &body).await;
    assert_eq!(status, 202, "{answer}");
    let event = host.wait_settled(answer["id"].as_str().expect("id")).await;
    let attempt = attempts(&event)[0].clone();
    let size = serde_json::to_vec(&attempt).expect("json").len();
    (attempt, size)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapped_attempt_with_megabytes_of_buffered_writes_keeps_a_bounded_record() {
    let host = hoarder().await;
    // 9 999 writes of 1 000 bytes: about 10 MB buffered, then a trap.
    let (attempt, size) = hoard(
        &host,
        json!({ "kv_writes": 9_999, "value_bytes": 1_000, "end": "trap" }),
    )
    .await;
    assert_eq!(attempt["outcome"]["kind"], "trap", "{}", attempt["outcome"]);
    assert!(size <= MAX_RECORD_BYTES, "the record is {size} bytes");
    let kept = attempt["effects"]["kv_writes"].as_array().expect("writes");
    let omitted = attempt["omitted"]["kv_writes"]["count"]
        .as_u64()
        .expect("omitted writes counted");
    assert_eq!(kept.len() as u64 + omitted, 9_999);
    assert!(!kept.is_empty(), "the first writes are kept");
    assert_eq!(kept[0]["key"], "write-00000000");
    assert_eq!(
        attempt["omitted"]["kv_writes"]["sha256"]
            .as_str()
            .map(str::len),
        Some(64)
    );
    assert_eq!(attempt["truncated"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_past_the_distinct_key_limit_trap_with_a_clear_message() {
    let host = hoarder().await;
    let (attempt, size) = hoard(&host, json!({ "kv_writes": 10_001 })).await;
    assert_eq!(attempt["outcome"]["kind"], "trap");
    let message = attempt["outcome"]["message"].as_str().expect("message");
    assert!(
        message.contains("more than 10000 distinct keys written"),
        "{message}"
    );
    assert!(size <= MAX_RECORD_BYTES, "the record is {size} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_kv_reads_are_bounded_in_count_and_in_the_record() {
    let host = hoarder().await;
    let (attempt, size) = hoard(&host, json!({ "kv_reads": 10_001 })).await;
    let message = attempt["outcome"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("more than 10000 distinct keys read"),
        "{}",
        attempt["outcome"]
    );
    assert!(size <= MAX_RECORD_BYTES, "the record is {size} bytes");
    let kept = attempt["effects"]["kv_reads"].as_array().expect("reads");
    let omitted = attempt["omitted"]["kv_reads"]["count"]
        .as_u64()
        .expect("omitted reads counted");
    assert_eq!(kept.len() as u64 + omitted, 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_log_lines_with_empty_fields_count_against_the_log_cap() {
    let host = hoarder().await;
    let (attempt, size) = hoard(
        &host,
        json!({ "empty_logs": 20_000, "log_fields": 100, "end": "ok" }),
    )
    .await;
    assert_eq!(attempt["outcome"]["kind"], "ok");
    assert!(size <= MAX_RECORD_BYTES, "the record is {size} bytes");
    let lines = attempt["logs"].as_array().expect("logs");
    // Each kept line costs its frame and its 64 kept fields' frames in the
    // 64 KiB of logs, though every string in it is empty.
    let line_bytes = 48 + 2 + 64 * (4 + 2 + 2);
    assert!(
        lines.len() <= 64 * 1024 / line_bytes,
        "{} lines kept",
        lines.len()
    );
    for line in lines {
        assert!(line["fields"].as_array().is_some_and(|f| f.len() <= 64));
    }
    assert_eq!(
        attempt["omitted"]["log_lines"].as_u64(),
        Some(20_000 - lines.len() as u64)
    );
    assert_eq!(attempt["truncated"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_reject_message_is_cut() {
    let host = hoarder().await;
    let (attempt, size) = hoard(
        &host,
        json!({ "message_bytes": 4_000_000, "end": "reject" }),
    )
    .await;
    assert_eq!(attempt["outcome"]["kind"], "reject");
    let message = attempt["outcome"]["message"].as_str().expect("message");
    assert!(message.len() <= 8 * 1024, "{} bytes", message.len());
    assert!(message.ends_with('…'));
    assert!(size <= MAX_RECORD_BYTES, "the record is {size} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emitted_idempotency_key_over_the_limit_traps() {
    let host = hoarder().await;
    let (attempt, _) = hoard(&host, json!({ "emits": 1, "emit_key_bytes": 10_000 })).await;
    assert_eq!(attempt["outcome"]["kind"], "trap");
    let message = attempt["outcome"]["message"].as_str().expect("message");
    assert!(
        message.contains("emit: idempotency key must be 1 to 255 bytes"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_cannot_emit_the_schedulers_topics() {
    let host = hoarder().await;
    let (attempt, _) = hoard(
        &host,
        json!({ "emits": 1, "emit_topic": "schedule.nightly" }),
    )
    .await;
    assert_eq!(attempt["outcome"]["kind"], "trap");
    let message = attempt["outcome"]["message"].as_str().expect("message");
    assert!(message.contains("belongs to the scheduler"), "{message}");
    let (_, listed) = host.get("/events?topic=schedule.*").await;
    assert_eq!(listed["events"].as_array().map(Vec::len), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitted_events_wait_for_room_in_the_queue_like_ingest() {
    let host = Setup::new()
        .plugin("hoard", plugins::TEST_HOARD)
        .configure(|c| c.max_queue_depth = 5)
        .start()
        .await;
    // Ten events the plugin itself subscribes to: ten more deliveries, past
    // a queue of five.
    let (attempt, _) = hoard(&host, json!({ "emits": 10, "end": "ok" })).await;
    assert_eq!(attempt["outcome"]["kind"], "retry", "{attempt:#}");
    let message = attempt["outcome"]["message"].as_str().expect("message");
    assert!(message.contains("the queue is full"), "{message}");
    assert_eq!(attempt["effects"]["committed"], false);
    let (_, listed) = host.get("/events?topic=test.hoarded").await;
    assert_eq!(listed["events"].as_array().map(Vec::len), Some(0));
    // With room, the same attempt's events are committed.
    let (attempt, _) = hoard(&host, json!({ "emits": 3, "end": "ok" })).await;
    assert_eq!(attempt["outcome"]["kind"], "ok", "{attempt:#}");
    let (_, listed) = host.get("/events?topic=test.hoarded").await;
    assert_eq!(listed["events"].as_array().map(Vec::len), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kv_key_no_store_could_record_traps_on_every_store() {
    let host = hoarder().await;
    let (attempt, _) = hoard(&host, json!({ "nul_key": true, "end": "ok" })).await;
    assert_eq!(attempt["outcome"]["kind"], "trap", "{attempt:#}");
    let message = attempt["outcome"]["message"].as_str().expect("message");
    assert!(
        message.contains("kv key must not contain a NUL byte"),
        "{message}"
    );
}
