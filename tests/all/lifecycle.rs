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
            c.retention.batch = Some(2);
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

/// Everything a store holds that a user sees, in order: each event with its
/// body, deliveries and attempts, and the counter plugin's kv count.
async fn contents(store: &hookhost::store::Store) -> (Vec<Value>, Option<i64>) {
    let mut out = Vec::new();
    let mut query = hookhost::store::EventQuery {
        limit: 1000,
        ..Default::default()
    };
    loop {
        let page = store.list_events(&query).await.expect("list");
        for (record, deliveries) in &page.events {
            let (_, body) = store.event(record.id).await.expect("read").expect("event");
            let mut attempts = Vec::new();
            for d in deliveries {
                attempts.push(store.attempts_of(d.id).await.expect("attempts"));
            }
            out.push(json!({
                "event": record,
                "body": String::from_utf8_lossy(&body),
                "deliveries": deliveries,
                "attempts": attempts,
            }));
        }
        match page.next_cursor {
            Some(cursor) => query.before = Some(cursor),
            None => break,
        }
    }
    let count = store
        .kv_get("counter", "count")
        .await
        .expect("kv")
        .map(|(_, v)| serde_json::from_slice(&v).expect("a number"));
    (out, count)
}

/// Saves `GET /backup` to `path`.
async fn backup(host: &TestHost, path: &std::path::Path) {
    let response = reqwest::get(host.url("/backup")).await.expect("backup");
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.expect("body");
    std::fs::write(path, &bytes).expect("write backup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_live_traffic_restores_to_a_consistent_store() {
    let host = Setup::new()
        .plugin("counter", plugins::TEST_COUNTER)
        .start()
        .await;
    let host = std::sync::Arc::new(host);
    let scratch = tempfile::tempdir().expect("tempdir");

    // Four senders post until told to stop, keeping what was acknowledged.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut senders = Vec::new();
    for sender in 0..4 {
        let (host, stop, acked) = (host.clone(), stop.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 2_000 {
                let id = post_id(&host, "test.count", &json!({ "sender": sender, "n": n })).await;
                acked.lock().expect("lock").push(id);
                n += 1;
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while acked.lock().expect("lock").len() < 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "traffic did not start"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before: Vec<String> = acked.lock().expect("lock").clone();
    let live_file = scratch.path().join("live.backup");
    backup(&host, &live_file).await;
    let after_backup = acked.lock().expect("lock").len();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in senders {
        s.await.expect("sender");
    }
    assert!(
        acked.lock().expect("lock").len() > after_backup || after_backup > before.len(),
        "traffic went on during the backup"
    );

    // Restored: every event acknowledged before the backup is there, and
    // the kv count matches the succeeded deliveries exactly, as it would in
    // a store stopped at one moment.
    let restored_dir = scratch.path().join("restored");
    let summary = hookhost::store::restore(&live_file, &restored_dir).expect("restore");
    assert!(summary.records > 0);
    {
        let store = hookhost::store::Store::open(&restored_dir).expect("open restored");
        for id in &before {
            let id = id.parse().expect("ulid");
            assert!(store.event(id).await.expect("read").is_some(), "{id} lost");
        }
        let (events, count) = contents(&store).await;
        let succeeded = events
            .iter()
            .filter(|e| {
                e["event"]["topic"] == "test.count" && e["deliveries"][0]["status"] == "succeeded"
            })
            .count() as i64;
        let emitted = events
            .iter()
            .filter(|e| e["event"]["topic"] == "test.counted")
            .count() as i64;
        assert_eq!(
            count.unwrap_or(0),
            succeeded,
            "kv count vs succeeded deliveries"
        );
        assert_eq!(emitted, succeeded, "emitted events vs succeeded deliveries");
        store.close().await.expect("close");
    }
    // Restoring over data is refused.
    let err = hookhost::store::restore(&live_file, &restored_dir).expect_err("not empty");
    assert!(err.to_string().contains("not empty"), "{err}");

    // Quiet now: a second backup restores to exactly the same contents.
    let last = acked.lock().expect("lock").last().cloned().expect("some");
    host.wait_settled(&last).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, page) = host.get("/events?status=pending&limit=1").await;
        if page["events"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue did not drain"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let quiet_file = scratch.path().join("quiet.backup");
    backup(&host, &quiet_file).await;
    let host = std::sync::Arc::into_inner(host).expect("senders are done");
    let setup = host.stop().await;
    let source = hookhost::store::Store::open(setup.data_dir()).expect("open source");
    let original = contents(&source).await;
    source.close().await.expect("close");
    drop(source);
    let copy_dir = scratch.path().join("copy");
    hookhost::store::restore(&quiet_file, &copy_dir).expect("restore");
    let copy = hookhost::store::Store::open(&copy_dir).expect("open copy");
    let copied = contents(&copy).await;
    assert_eq!(copied.1, original.1, "kv count");
    assert_eq!(copied.0.len(), original.0.len(), "events");
    assert!(copied == original, "contents differ");
    assert_eq!(original.1, Some(acked.lock().expect("lock").len() as i64));

    // A damaged file is refused before anything is written.
    let mut bytes = std::fs::read(&quiet_file).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    let damaged = scratch.path().join("damaged.backup");
    std::fs::write(&damaged, &bytes).expect("write");
    let err =
        hookhost::store::restore(&damaged, &scratch.path().join("never")).expect_err("damaged");
    assert!(err.to_string().contains("damaged"), "{err}");
    assert!(!scratch.path().join("never").exists());
    bytes.truncate(middle);
    std::fs::write(&damaged, &bytes).expect("write");
    let err = hookhost::store::verify_backup(&damaged).expect_err("truncated");
    assert!(err.to_string().contains("truncated"), "{err}");
}
