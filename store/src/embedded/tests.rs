//! The store against real sled in a temp dir.
//!
//! Longer than 600 lines on purpose: sled-only scenarios (batching, the scan
//! floor, failures and recovery) sharing one set of fixtures; each test is
//! short and self-contained.

use super::super::contract::attempt;
use super::super::types::*;
use super::*;
use crate::model::{DeliveryStatus, EventRecord, NewEvent, Outcome, now_ms};
use ulid::Ulid;

fn event(key: &str) -> NewEvent {
    NewEvent {
        topic: "orders.created".into(),
        idempotency_key: Some(key.into()),
        headers: Vec::new(),
        content_type: None,
        body: b"{}".to_vec(),
        provenance: crate::model::Provenance::Api,
    }
}

/// What the counter must equal: the indexes it summarises, counted.
fn counted(store: &SledStore) -> u64 {
    let live = store.live().expect("open");
    (live.t.due.len() + live.t.running.len()) as u64
}

fn claim_next(store: &SledStore) -> Claimed {
    let entry = store
        .due(now_ms() + 1, None, 1)
        .expect("due")
        .pop()
        .expect("something due");
    store.claim(&entry).expect("claim").expect("claimed")
}

#[tokio::test]
async fn queue_depth_follows_every_change_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path()).expect("open");
    let plugins = [Route::new("a"), Route::new("b")];
    for n in 0..3 {
        store
            .ingest(event(&format!("k{n}")), &plugins)
            .await
            .expect("ingest");
    }
    // A duplicate adds nothing.
    store.ingest(event("k0"), &plugins).await.expect("dup");
    assert_eq!(store.queue_depth(), 6);
    assert_eq!(store.queue_depth(), counted(&store));

    let steps: [(Outcome, Next); 3] = [
        (Outcome::Ok, Next::Succeeded),
        (
            Outcome::Retry("later".into()),
            Next::RetryAt(now_ms() + 60_000),
        ),
        (Outcome::Reject("no".into()), Next::Dead),
    ];
    let mut dead = None;
    for (outcome, next) in steps {
        let claimed = claim_next(&store);
        assert_eq!(store.queue_depth(), counted(&store), "after claim");
        let a = attempt(&claimed, outcome);
        assert_eq!(
            store.finish_attempt(&a, next, None).await.expect("finish"),
            Finish::Committed
        );
        assert_eq!(store.queue_depth(), counted(&store), "after {next:?}");
        if next == Next::Dead {
            dead = Some(claimed.delivery.id);
        }
    }
    assert_eq!(store.queue_depth(), 4);

    // Effects that emit an event add its deliveries.
    let claimed = claim_next(&store);
    let effects = Effects {
        emitted: vec![Emitted {
            event: event("emitted"),
            subscribers: plugins.to_vec(),
        }],
        ..Effects::default()
    };
    let a = attempt(&claimed, Outcome::Ok);
    store
        .finish_attempt(&a, Next::Succeeded, Some(&effects))
        .await
        .expect("finish with effects");
    assert_eq!(store.queue_depth(), 5);
    assert_eq!(store.queue_depth(), counted(&store));

    assert!(
        store
            .retry_dead(dead.expect("a dead letter"))
            .expect("retry")
    );
    assert_eq!(store.queue_depth(), 6);
    let entry = store.due(now_ms() + 1, None, 1).expect("due").remove(0);
    assert!(store.pause(&entry).expect("pause"));
    assert_eq!(store.queue_depth(), 5);
    assert_eq!(store.resume_paused(&entry.plugin).expect("resume"), 1);
    assert_eq!(store.queue_depth(), 6);
    let replayed = store
        .replay(claimed.delivery.id.event, &plugins, None)
        .expect("replay")
        .expect("event exists");
    assert_eq!(replayed.len(), 2);
    assert_eq!(store.queue_depth(), 8);
    assert_eq!(store.queue_depth(), counted(&store));

    let _running = claim_next(&store);
    store.close().await.expect("close");
    drop(store);
    let store = SledStore::open(dir.path()).expect("reopen");
    assert_eq!(store.queue_depth(), 8, "a running delivery still counts");
    assert_eq!(store.queue_depth(), counted(&store));
}

#[tokio::test]
async fn only_the_first_unfinished_delivery_of_a_key_may_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path()).expect("open");
    let keyed = |key: &str| Route {
        plugin: "p".into(),
        order_key: Some(key.into()),
    };
    for (n, key) in ["a", "a", "b"].iter().enumerate() {
        store
            .ingest(event(&format!("e{n}")), &[keyed(key)])
            .await
            .expect("ingest");
    }
    let due = store.due(now_ms() + 1, None, 10).expect("due");
    let blocked: Vec<bool> = due
        .iter()
        .map(|e| store.blocked(e).expect("blocked"))
        .collect();
    assert_eq!(blocked, [false, true, false], "the second `a` waits");

    // The first `a` dies: the second may run; a retry of the dead letter
    // puts it back at the head of its line.
    let first = store.claim(&due[0]).expect("claim").expect("claimed");
    let a = attempt(&first, Outcome::Reject("no".into()));
    store
        .finish_attempt(&a, Next::Dead, None)
        .await
        .expect("finish");
    assert!(!store.blocked(&due[1]).expect("blocked"));
    assert!(store.retry_dead(first.delivery.id).expect("retry"));
    assert!(store.blocked(&due[1]).expect("blocked"));

    // A retry keeps its place; success frees the line.
    let due_again = |id| {
        store
            .due(now_ms() + 1, None, 10)
            .expect("due")
            .into_iter()
            .find(|e| e.delivery == id)
            .expect("due again")
    };
    let entry = due_again(first.delivery.id);
    let again = store.claim(&entry).expect("claim").expect("claimed");
    let a = attempt(&again, Outcome::Retry("later".into()));
    store
        .finish_attempt(&a, Next::RetryAt(now_ms()), None)
        .await
        .expect("finish");
    assert!(store.blocked(&due[1]).expect("blocked"));
    let entry = due_again(first.delivery.id);
    let again = store.claim(&entry).expect("claim").expect("claimed");
    let a = attempt(&again, Outcome::Ok);
    store
        .finish_attempt(&a, Next::Succeeded, None)
        .await
        .expect("finish");
    assert!(!store.blocked(&due[1]).expect("blocked"));
    assert_eq!(
        store.live().expect("open").t.ordered.len(),
        2,
        "the finished delivery left its line"
    );
}

#[tokio::test]
async fn a_schedule_tick_fires_once_and_never_before_the_last() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path()).expect("open");
    assert_eq!(store.schedule_last("p", "nightly").expect("read"), None);
    store.schedule_start("p", "nightly", 1_000).expect("start");
    store
        .schedule_start("p", "nightly", 5_000)
        .expect("start again");
    assert_eq!(
        store.schedule_last("p", "nightly").expect("read"),
        Some(1_000)
    );
    let fire = |tick: u64| {
        let event = NewEvent {
            topic: "schedule.nightly".into(),
            idempotency_key: Some(format!("schedule:p:nightly:{tick}")),
            headers: Vec::new(),
            content_type: None,
            body: b"{}".to_vec(),
            provenance: crate::model::Provenance::Api,
        };
        let store = &store;
        async move {
            store
                .fire_schedule("p", "nightly", tick, event, &[Route::new("p")])
                .await
                .expect("fire")
        }
    };
    assert!(fire(2_000).await);
    assert!(!fire(2_000).await, "the same tick again");
    assert!(!fire(1_500).await, "an older tick");
    assert!(fire(3_000).await);
    assert_eq!(
        store.schedule_last("p", "nightly").expect("read"),
        Some(3_000)
    );
    assert_eq!(store.live().expect("open").t.events.len(), 2);
    assert_eq!(store.queue_depth(), 2);
}

#[tokio::test]
async fn the_queue_depth_survives_an_end_counted_before_its_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path()).expect("open");
    // The dispatcher may finish a delivery before the ingest that created it
    // has added it to the count: the sum must still come back to zero.
    store.queued_sub(1);
    assert_eq!(store.queue_depth(), 0);
    store.queued_add(1);
    assert_eq!(store.queue_depth(), 0);
    store.queued_add(2);
    assert_eq!(store.queue_depth(), 2);
}

#[tokio::test]
async fn concurrent_ingests_with_one_key_store_one_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path()).expect("open");
    let plugins = [Route::new("a"), Route::new("b")];
    // Queued together, they share a transaction: the key each one sets must
    // be seen by the next one's lookup, before anything is committed.
    let all =
        futures::future::join_all((0..20).map(|_| store.ingest(event("same"), &plugins))).await;
    let all: Vec<Ingested> = all.into_iter().map(|r| r.expect("ingest")).collect();
    assert_eq!(all.iter().filter(|i| !i.duplicate).count(), 1);
    assert!(all.iter().all(|i| i.id == all[0].id), "{all:?}");
    let live = store.live().expect("open");
    assert_eq!((live.t.events.len(), live.t.deliveries.len()), (1, 2));
    assert_eq!(store.queue_depth(), 2);
}

#[tokio::test]
async fn an_older_stores_event_with_its_body_apart_is_read_and_purged_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path()).expect("open");
    // As stores wrote an event before its body moved into its value.
    let old = EventRecord {
        id: Ulid::from_parts(now_ms() - 1_000, 7),
        topic: "orders.created".into(),
        idempotency_key: None,
        received_at_ms: now_ms() - 1_000,
        headers: vec![("x-shop".into(), "one".into())],
        content_type: Some("application/json".into()),
        emitted_by: None,
        provenance: None,
    };
    let live = store.live().expect("open");
    live.t
        .events
        .insert(keys::event(old.id), encode(&old))
        .expect("insert");
    live.t
        .bodies
        .insert(keys::event(old.id), &br#"{"old":true}"#[..])
        .expect("insert");
    let new = NewEvent {
        body: br#"{"new":true}"#.to_vec(),
        ..event("new")
    };
    let new = store.ingest(new, &[]).await.expect("ingest").id;
    assert_eq!(live.t.bodies.len(), 1, "a new event's body is in its value");

    let (record, body) = store.event(old.id).expect("read").expect("found");
    assert_eq!(
        (record, body.as_slice()),
        (old.clone(), &br#"{"old":true}"#[..])
    );
    let (record, body) = store.event(new).expect("read").expect("found");
    assert_eq!((record.id, body.as_slice()), (new, &br#"{"new":true}"#[..]));
    let (record, body, _) = store.event_view(old.id).expect("view").expect("found");
    assert_eq!(
        (record, body.as_slice()),
        (old.clone(), &br#"{"old":true}"#[..])
    );
    let (_, body, _) = store.event_view(new).expect("view").expect("found");
    assert_eq!(body, br#"{"new":true}"#);
    let page = store
        .list_events(&EventQuery {
            limit: 10,
            ..EventQuery::default()
        })
        .expect("list");
    let listed: Vec<Ulid> = page.events.iter().map(|(e, _)| e.id).collect();
    assert_eq!(listed, [new, old.id]);

    let report = store.purge(now_ms() + 1, None, 10).expect("purge");
    assert_eq!(report.purged, 2);
    assert_eq!((live.t.events.len(), live.t.bodies.len()), (0, 0));
}

#[test]
fn an_event_value_holds_its_record_and_body_and_a_short_one_is_corrupt() {
    let record = EventRecord {
        id: Ulid::from_parts(1, 2),
        topic: "t".into(),
        idempotency_key: Some("k".into()),
        received_at_ms: 1,
        headers: Vec::new(),
        content_type: None,
        emitted_by: None,
        provenance: Some(crate::model::Provenance::Api),
    };
    let encoded = encode(&record);
    let value = event_value(&record, b"body");
    let (decoded, body) = decode_event(&value).expect("decodes");
    assert_eq!((decoded, body), (record.clone(), Some(&b"body"[..])));
    // An empty body is kept as empty, not taken for an older value.
    let empty = event_value(&record, b"");
    assert_eq!(decode_event(&empty).expect("decodes").1, Some(&b""[..]));
    let (_, body) = decode_event(&encoded).expect("an older value");
    assert_eq!(body, None);
    let cut = &value[..value.len() - 10];
    assert!(matches!(
        decode_event(cut),
        Err(StoreError::Corrupt { tree: "events", .. })
    ));
}

/// Every tree's length, by name.
fn sizes(store: &SledStore) -> Vec<(&'static str, usize)> {
    let t = store.live().expect("open").t.clone();
    vec![
        ("events", t.events.len()),
        ("idempotency", t.idempotency.len()),
        ("deliveries", t.deliveries.len()),
        ("attempts", t.attempts.len()),
    ]
}

#[tokio::test]
async fn purge_removes_only_finished_events_before_the_cutoff_with_everything_they_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path()).expect("open");
    let plugin = [Route::new("p")];
    // 0: succeeded; 1: dead letter; 2: pending; 3: no subscriber.
    let done = store.ingest(event("done"), &plugin).await.expect("ingest");
    let claimed = claim_next(&store);
    let a = attempt(&claimed, Outcome::Ok);
    store
        .finish_attempt(&a, Next::Succeeded, None)
        .await
        .expect("finish");
    let dead = store.ingest(event("dead"), &plugin).await.expect("ingest");
    let claimed = claim_next(&store);
    let a = attempt(&claimed, Outcome::Reject("no".into()));
    store
        .finish_attempt(&a, Next::Dead, None)
        .await
        .expect("finish");
    let pending = store
        .ingest(event("pending"), &plugin)
        .await
        .expect("ingest");
    let unrouted = store.ingest(event("unrouted"), &[]).await.expect("ingest");
    let cutoff = now_ms() + 1;
    // Received after the cutoff: kept though finished.
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    let young = store.ingest(event("young"), &[]).await.expect("ingest");

    // One event examined per pass: the cursor walks them all.
    let mut after = None;
    let mut purged = 0;
    let mut passes = 0;
    loop {
        let report = store.purge(cutoff, after, 1).expect("purge");
        purged += report.purged;
        passes += 1;
        after = report.resume_after;
        if after.is_none() {
            break;
        }
    }
    assert_eq!((purged, passes), (2, 4), "four old events, one per pass");
    for (id, kept) in [
        (done.id, false),
        (dead.id, true),
        (pending.id, true),
        (unrouted.id, false),
        (young.id, true),
    ] {
        assert_eq!(store.event(id).expect("read").is_some(), kept, "{id}");
    }
    assert!(store.deliveries_of(done.id).expect("read").is_empty());
    assert_eq!(
        sizes(&store),
        [
            ("events", 3),
            ("idempotency", 3),
            ("deliveries", 2),
            ("attempts", 1)
        ]
    );
    // The key went with its event: the same key is a new event now.
    let again = store.ingest(event("done"), &[]).await.expect("ingest");
    assert!(!again.duplicate);
    // A dead letter's key is still known.
    assert!(
        store
            .ingest(event("dead"), &[])
            .await
            .expect("ingest")
            .duplicate
    );
    // Nothing to do: an empty pass.
    let report = store.purge(cutoff, None, 10).expect("purge");
    assert_eq!((report.examined, report.purged), (2, 0));
}

#[tokio::test]
async fn a_replayed_event_is_not_purged_while_its_new_delivery_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path()).expect("open");
    let plugin = [Route::new("p")];
    let ingested = store.ingest(event("k"), &plugin).await.expect("ingest");
    let claimed = claim_next(&store);
    let a = attempt(&claimed, Outcome::Ok);
    store
        .finish_attempt(&a, Next::Succeeded, None)
        .await
        .expect("finish");
    // Read as finished, then replayed before the removal commits.
    let record = store.event(ingested.id).expect("read").expect("event").0;
    let doomed = store.finished(record).expect("read").expect("finished");
    store
        .replay(ingested.id, &plugin, None)
        .expect("replay")
        .expect("event");
    assert_eq!(store.remove_events(&[doomed]).expect("remove"), 0);
    assert!(store.event(ingested.id).expect("read").is_some());
    // Purged, replay answers that there is no such event.
    let cutoff = now_ms() + 1;
    let claimed = claim_next(&store);
    let a = attempt(&claimed, Outcome::Ok);
    store
        .finish_attempt(&a, Next::Succeeded, None)
        .await
        .expect("finish");
    assert_eq!(store.purge(cutoff, None, 10).expect("purge").purged, 1);
    assert_eq!(
        store.replay(ingested.id, &plugin, None).expect("replay"),
        None
    );
}

#[tokio::test]
async fn a_claim_lives_in_memory_and_a_restart_makes_its_delivery_due_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path()).expect("open");
    store
        .ingest(event("c1"), &[Route::new("a")])
        .await
        .expect("ingest");
    let claimed = claim_next(&store);
    let id = claimed.delivery.id;
    assert_eq!(claimed.delivery.status, DeliveryStatus::Running);
    let shown = store.delivery(id).expect("read").expect("delivery");
    assert_eq!(
        shown.status,
        DeliveryStatus::Running,
        "readers see the claim"
    );
    assert!(
        store.due(now_ms() + 1, None, 10).expect("due").is_empty(),
        "a claimed delivery is not offered again"
    );
    let entry = DueEntry {
        at_ms: claimed.event.received_at_ms,
        delivery: id,
        plugin: "a".into(),
    };
    assert!(
        !store.pause(&entry).expect("pause"),
        "a claim is not paused"
    );

    // Given up: due again at once, and a late result from the attempt that
    // gave it up is refused.
    store.unclaim(id);
    assert_eq!(store.due(now_ms() + 1, None, 10).expect("due").len(), 1);
    let a = attempt(&claimed, Outcome::Ok);
    assert_eq!(
        store
            .finish_attempt(&a, Next::Succeeded, None)
            .await
            .expect("finish"),
        Finish::Stale
    );

    // Claimed again, then the process stops before the result: the delivery
    // is due after the restart, with nothing of the lost attempt written.
    let claimed = claim_next(&store);
    store.close().await.expect("close");
    drop(store);
    let store = SledStore::open(dir.path()).expect("reopen");
    let shown = store.delivery(id).expect("read").expect("delivery");
    assert_eq!(shown.status, DeliveryStatus::Pending);
    assert_eq!(shown.attempts, 0);
    assert_eq!(store.queue_depth(), 1);
    let again = claim_next(&store);
    assert_eq!(again.delivery.id, id);
    assert_eq!(
        again.delivery.attempts + 1,
        attempt(&claimed, Outcome::Ok).number
    );
    let a = attempt(&again, Outcome::Ok);
    assert_eq!(
        store
            .finish_attempt(&a, Next::Succeeded, None)
            .await
            .expect("finish"),
        Finish::Committed
    );
    assert!(store.due(now_ms() + 1, None, 10).expect("due").is_empty());
    assert_eq!(store.queue_depth(), 0);
    assert_eq!(
        store.delivery(id).expect("read").expect("delivery").status,
        DeliveryStatus::Succeeded
    );
}

#[tokio::test]
async fn a_delivery_left_running_by_an_older_version_is_requeued_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path()).expect("open");
    let ingested = store
        .ingest(event("old"), &[Route::new("a")])
        .await
        .expect("ingest");
    let entry = store.due(now_ms() + 1, None, 1).expect("due").remove(0);
    // How versions before memory-only claims marked a claim on disk.
    {
        let live = store.live().expect("open");
        let mut d = store.delivery(entry.delivery).expect("read").expect("d");
        d.status = DeliveryStatus::Running;
        live.t
            .due
            .remove(keys::due(entry.at_ms, entry.delivery))
            .expect("due");
        live.t
            .deliveries
            .insert(keys::delivery(d.id), encode(&d))
            .expect("delivery");
        live.t
            .running
            .insert(keys::delivery(d.id), &[])
            .expect("running");
    }
    assert!(store.due(now_ms() + 1, None, 10).expect("due").is_empty());
    assert_eq!(store.requeue_running().expect("requeue"), 1);
    let claimed = claim_next(&store);
    assert_eq!(claimed.event.id, ingested.id);
    assert_eq!(store.live().expect("open").t.running.len(), 0);
}

#[tokio::test]
async fn results_recorded_at_once_share_batches_and_each_settles_its_delivery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SledStore::open(dir.path()).expect("open"));
    for n in 0..60 {
        store
            .ingest(event(&format!("b{n}")), &[Route::new("a")])
            .await
            .expect("ingest");
    }
    let due = store.due(now_ms() + 1, None, 100).expect("due");
    assert_eq!(due.len(), 60);
    let mut results = tokio::task::JoinSet::new();
    for (n, entry) in due.iter().enumerate() {
        let claimed = store.claim(entry).expect("claim").expect("claimed");
        let (outcome, next) = match n % 3 {
            0 => (Outcome::Ok, Next::Succeeded),
            1 => (Outcome::Reject("no".into()), Next::Dead),
            _ => (
                Outcome::Retry("later".into()),
                Next::RetryAt(now_ms() + 60_000),
            ),
        };
        let store = store.clone();
        results.spawn(async move {
            let a = attempt(&claimed, outcome);
            let finish = store.finish_attempt(&a, next, None).await;
            (claimed.delivery.id, next, finish.expect("finish"))
        });
    }
    let mut settled = 0;
    while let Some(done) = results.join_next().await {
        let (id, next, finish) = done.expect("task");
        assert_eq!(finish, Finish::Committed);
        let d = store.delivery(id).expect("read").expect("delivery");
        let want = match next {
            Next::Succeeded => DeliveryStatus::Succeeded,
            Next::Dead => DeliveryStatus::Dead,
            Next::RetryAt(_) => DeliveryStatus::Pending,
        };
        assert_eq!(d.status, want);
        assert_eq!(d.attempts, 1);
        assert_eq!(store.attempts_of(id).expect("attempts").len(), 1);
        settled += 1;
    }
    assert_eq!(settled, 60);
    // Only the 20 retries wait, due later; nothing is claimed any more.
    assert!(store.due(now_ms() + 1, None, 100).expect("due").is_empty());
    assert_eq!(
        store.due(now_ms() + 120_000, None, 100).expect("due").len(),
        20
    );
    assert_eq!(store.queue_depth(), 20);
    assert_eq!(store.queue_depth(), counted(&store));
    assert_eq!(store.live().expect("open").t.dead.len(), 20);
}

/// A result is recorded at once only when its attempt runs alone; beside
/// other running attempts it joins the queue's batches (each sled
/// transaction costs synced log writes, so fewer is cheaper).
#[tokio::test]
async fn only_a_lone_attempt_records_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path()).expect("open");
    for key in ["x", "y"] {
        store
            .ingest(event(key), &[Route::new("a")])
            .await
            .expect("ingest");
    }
    let first = claim_next(&store);
    let second = claim_next(&store);
    let recorded = || store.live().expect("open").finisher.recorded();
    assert_eq!(recorded(), (0, 0));
    // Two claims held: the first result goes through the queue.
    let a = attempt(&first, Outcome::Ok);
    let finish = store.finish_attempt(&a, Next::Succeeded, None).await;
    assert_eq!(finish.expect("finish"), Finish::Committed);
    assert_eq!(recorded(), (0, 1));
    // The second now runs alone: recorded at once.
    let b = attempt(&second, Outcome::Ok);
    let finish = store.finish_attempt(&b, Next::Succeeded, None).await;
    assert_eq!(finish.expect("finish"), Finish::Committed);
    assert_eq!(recorded(), (1, 1));
    for id in [first.delivery.id, second.delivery.id] {
        let d = store.delivery(id).expect("read").expect("delivery");
        assert_eq!(d.status, DeliveryStatus::Succeeded);
    }
    assert_eq!(store.queue_depth(), 0);
}

/// Readers look the claims up while the dispatcher claims and attempts
/// record: no lock order between sled's and the claims' may deadlock them.
#[test]
fn readers_and_claims_running_at_once_never_wait_for_each_other() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(rt.block_on(async { SledStore::open(dir.path()).expect("open") }));
    let mut ids = Vec::new();
    for n in 0..300 {
        let ingested = rt
            .block_on(store.ingest(event(&format!("r{n}")), &[Route::new("a")]))
            .expect("ingest");
        ids.push(ingested.id);
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let reader = {
        let (store, stop, ids) = (store.clone(), stop.clone(), ids.clone());
        std::thread::spawn(move || {
            let mut views = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for id in &ids {
                    store.event_view(*id).expect("view").expect("event");
                    store.deliveries_of(*id).expect("deliveries");
                    views += 1;
                }
            }
            views
        })
    };
    let claimer = {
        let (store, handle) = (store.clone(), rt.handle().clone());
        std::thread::spawn(move || {
            // Claimed one at a time, then several together, as the
            // dispatcher does.
            let mut limit = 1;
            loop {
                let due = store.due(now_ms() + 1, None, limit).expect("due");
                if due.is_empty() {
                    break;
                }
                for claimed in store.claim_many(&due) {
                    let claimed = claimed.expect("claim").expect("claimed");
                    let a = attempt(&claimed, Outcome::Ok);
                    let finish = handle.block_on(store.finish_attempt(&a, Next::Succeeded, None));
                    assert_eq!(finish.expect("finish"), Finish::Committed);
                }
                limit = limit % 4 + 1;
            }
            let _ = done_tx.send(());
        })
    };
    let finished = done_rx.recv_timeout(std::time::Duration::from_secs(60));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(
        finished.is_ok(),
        "claims and records stopped making progress beside readers"
    );
    claimer.join().expect("claimer");
    assert!(reader.join().expect("reader") > 0);
    assert_eq!(store.queue_depth(), 0);
}

/// The scan floor skips claimed entries at the head of `due`, and every way
/// an entry below it becomes unclaimed brings the next scan back to it.
#[tokio::test]
async fn the_scan_floor_skips_claims_and_never_hides_an_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path()).expect("open");
    let plugins = [Route::new("a")];
    for n in 0..4 {
        store
            .ingest(event(&format!("f{n}")), &plugins)
            .await
            .expect("ingest");
    }
    let due_now = || {
        store
            .due(now_ms() + 1, None, 10)
            .expect("due")
            .into_iter()
            .map(|e| e.delivery)
            .collect::<Vec<_>>()
    };
    let claimed: Vec<Claimed> = (0..3).map(|_| claim_next(&store)).collect();
    let (a, b) = (claimed[0].delivery.id, claimed[1].delivery.id);
    let fourth = due_now();
    assert_eq!(fourth.len(), 1, "three of four claimed");
    let floor = store.live().expect("open").floor.scan().from;
    assert_eq!(
        floor.map(|k| keys::parse_due(&k).expect("key").1),
        Some(fourth[0]),
        "the scan moved the floor to the first unclaimed entry"
    );
    let fourth = store
        .claim(&store.due(now_ms() + 1, None, 1).expect("due")[0])
        .expect("claim")
        .expect("claimed");
    assert!(due_now().is_empty(), "all four claimed");

    // A claim given up: its entry, below the floor, is due again.
    store.unclaim(b);
    assert_eq!(due_now(), vec![b]);
    let b = claim_next(&store);

    // A retry recorded due before the floor.
    let retry_at = claimed[0].delivery.next_attempt_at_ms.unwrap_or(0);
    let recorded = store
        .finish_attempt(
            &attempt(&claimed[0], Outcome::Retry("again".into())),
            Next::RetryAt(retry_at),
            None,
        )
        .await
        .expect("finish");
    assert_eq!(recorded, Finish::Committed);
    assert_eq!(due_now(), vec![a], "the retry is found below the floor");

    // A retry recorded with effects (its own transaction), due before the
    // floor too: before every other entry.
    let b_at = 1;
    let effects = Effects {
        writes: vec![("seen".into(), Some(b"1".to_vec()))],
        ..Effects::default()
    };
    let recorded = store
        .finish_attempt(
            &attempt(&b, Outcome::Retry("again".into())),
            Next::RetryAt(b_at),
            Some(&effects),
        )
        .await
        .expect("finish");
    assert_eq!(recorded, Finish::Committed);
    assert_eq!(due_now(), vec![b.delivery.id, a]);

    // The other claims end; only the retries are left.
    for done in [&claimed[2], &fourth] {
        let recorded = store
            .finish_attempt(&attempt(done, Outcome::Ok), Next::Succeeded, None)
            .await
            .expect("finish");
        assert_eq!(recorded, Finish::Committed);
    }
    assert_eq!(due_now(), vec![b.delivery.id, a]);
}

#[tokio::test]
async fn a_key_stored_bare_by_an_older_version_still_dedupes_a_senders_retry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path()).expect("open");
    let routes = [Route::new("p")];
    let first = store.ingest(event("k"), &routes).await.expect("ingest");
    // As an older version stored it: the bare key.
    let t = store.live().expect("open").t.clone();
    let scoped = crate::model::dedupe_key(Some(&crate::model::Provenance::Api), "k");
    let id = t
        .idempotency
        .remove(scoped.as_bytes())
        .expect("remove")
        .expect("entry");
    t.idempotency.insert("k", id).expect("insert");
    let again = store.ingest(event("k"), &routes).await.expect("again");
    assert_eq!((again.id, again.duplicate), (first.id, true));
    store.close().await.expect("close");
}
