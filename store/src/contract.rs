//! What every backend must do, checked on each: the embedded store in a
//! temp dir and PostgreSQL in a database of its own.
//!
//! Longer than 600 lines on purpose: it is one suite, so that every scenario
//! added here runs on both backends; each scenario is a short function.

use super::testing::TestDatabase;
use super::*;
use crate::model::{
    Attempt, DeliveryId, DeliveryStatus, EventStatus, JournalEntry, Manifest, NewEvent, Outcome,
    PluginVersion, Quarantined, now_ms,
};
use ulid::Ulid;

/// Each scenario below becomes `<scenario>::sled` and `<scenario>::postgres`.
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sled() {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = super::Store::open(dir.path()).expect("open");
                super::$scenario(&store).await;
                store.close().await.expect("close");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = super::TestDatabase::create().await else {
                    return;
                };
                let store = super::connect(&db.url).await;
                super::$scenario(&store).await;
                store.close().await.expect("close");
            }
        }
    )*};
}

on_every_backend!(
    ingest_is_idempotent_and_lists_what_it_stored,
    an_attempt_commits_its_record_and_effects_together_or_not_at_all,
    dead_letters_pauses_and_replays_move_deliveries,
    only_the_first_unfinished_delivery_of_a_key_may_run,
    a_schedule_tick_fires_once_and_never_before_the_last,
    purge_removes_finished_events_only,
    quarantine_and_version_history_round_trip,
    claims_taken_together_answer_each_entry_apart,
    idempotency_keys_count_only_within_their_scope,
    quarantine_is_bounded_by_age_and_size,
    any_ordering_key_a_body_yields_can_be_stored,
    a_deliverys_journal_keeps_its_calls_in_order_until_its_event_goes,
);

pub(super) async fn connect(url: &str) -> Store {
    Store::connect(&PgOptions {
        url: url.to_owned(),
        pool_size: 8,
        lease: std::time::Duration::from_secs(60),
    })
    .await
    .expect("connect")
}

pub(super) fn event(key: &str) -> NewEvent {
    NewEvent {
        topic: "orders.created".into(),
        idempotency_key: Some(key.into()),
        headers: vec![("x-source".into(), "test".into())],
        content_type: Some("application/json".into()),
        body: format!(r#"{{"key":"{key}"}}"#).into_bytes(),
        provenance: crate::model::Provenance::Api,
    }
}

pub(super) fn attempt(claimed: &Claimed, outcome: Outcome) -> Attempt {
    Attempt {
        delivery: claimed.delivery.id,
        number: claimed.delivery.attempts + 1,
        plugin: claimed.delivery.plugin.clone(),
        version: "v".into(),
        started_at_ms: now_ms(),
        duration_us: 1,
        fuel_consumed: 1,
        peak_memory_bytes: 0,
        outcome,
        // A NUL in captured output must round-trip.
        logs: Vec::new(),
        stdout: "out\u{0}put".into(),
        stderr: String::new(),
        truncated: false,
        effects: None,
        http: Vec::new(),
        omitted: None,
        inputs: None,
    }
}

/// Claims the earliest due delivery of `event`.
pub(super) async fn claim_of(store: &Store, event: Ulid) -> Claimed {
    let entry = store
        .due(now_ms() + 1, None, 1000)
        .await
        .expect("due")
        .into_iter()
        .find(|e| e.delivery.event == event)
        .expect("a due delivery of the event");
    store.claim(&entry).await.expect("claim").expect("claimed")
}

async fn status_of(store: &Store, id: DeliveryId) -> DeliveryStatus {
    store
        .delivery(id)
        .await
        .expect("read")
        .expect("delivery")
        .status
}

async fn ingest_is_idempotent_and_lists_what_it_stored(store: &Store) {
    let routes = [Route::new("a"), Route::new("b")];
    let first = store.ingest(event("k1"), &routes).await.expect("ingest");
    assert!(!first.duplicate);
    let again = store.ingest(event("k1"), &routes).await.expect("again");
    assert_eq!(
        again,
        Ingested {
            id: first.id,
            duplicate: true
        }
    );
    let other = store.ingest(event("k2"), &routes[..1]).await.expect("k2");
    assert_eq!(store.queue_depth(), 3, "two deliveries, then one");

    let (record, body) = store.event(first.id).await.expect("read").expect("event");
    assert_eq!(record.topic, "orders.created");
    assert_eq!(record.headers, vec![("x-source".into(), "test".into())]);
    assert_eq!(body, br#"{"key":"k1"}"#);
    let deliveries = store.deliveries_of(first.id).await.expect("deliveries");
    let plugins: Vec<&str> = deliveries.iter().map(|d| d.plugin.as_str()).collect();
    assert_eq!(plugins, ["a", "b"]);
    assert!(
        deliveries
            .iter()
            .all(|d| d.status == DeliveryStatus::Pending)
    );

    let all = store
        .list_events(&EventQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    let ids: Vec<Ulid> = all.events.iter().map(|(e, _)| e.id).collect();
    assert_eq!(ids, [other.id, first.id], "newest first");
    assert_eq!(all.next_cursor, None);
    let to_b = store
        .list_events(&EventQuery {
            plugin: Some("b".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(to_b.events.len(), 1);
    let paged = store
        .list_events(&EventQuery {
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("page");
    assert_eq!(paged.events.len(), 1);
    let rest = store
        .list_events(&EventQuery {
            limit: 10,
            before: paged.next_cursor,
            ..Default::default()
        })
        .await
        .expect("next page");
    assert_eq!(rest.events[0].0.id, first.id);
    let none = store
        .list_events(&EventQuery {
            topic: Some("refunds.*".into()),
            status: Some(EventStatus::Pending),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert!(none.events.is_empty());
}

async fn an_attempt_commits_its_record_and_effects_together_or_not_at_all(store: &Store) {
    let first = store
        .ingest(event("e1"), &[Route::new("a")])
        .await
        .expect("ingest");
    let claimed = claim_of(store, first.id).await;
    assert_eq!(claimed.event.id, first.id);
    assert_eq!(claimed.body, br#"{"key":"e1"}"#);
    let entry = DueEntry {
        at_ms: claimed.event.received_at_ms,
        delivery: claimed.delivery.id,
        plugin: "a".into(),
    };
    assert!(
        store.claim(&entry).await.expect("claim").is_none(),
        "a claimed delivery cannot be claimed again"
    );

    let effects = Effects {
        reads: vec![("count".into(), 0)],
        writes: vec![("count".into(), Some(b"1".to_vec()))],
        emitted: vec![Emitted {
            event: NewEvent {
                topic: "orders.counted".into(),
                ..event("emitted-1")
            },
            subscribers: vec![Route::new("b")],
        }],
    };
    let a = attempt(&claimed, Outcome::Ok);
    assert_eq!(
        store
            .finish_attempt(&a, Next::Succeeded, Some(&effects))
            .await
            .expect("finish"),
        Finish::Committed
    );
    let (version, value) = store
        .kv_get("a", "count")
        .await
        .expect("kv")
        .expect("written");
    assert_eq!(value, b"1");
    assert!(store.kv_get("b", "count").await.expect("kv").is_none());
    let (_, _, view) = store
        .event_view(first.id)
        .await
        .expect("view")
        .expect("event");
    assert_eq!(view.len(), 1);
    assert_eq!(view[0].0.status, DeliveryStatus::Succeeded);
    assert_eq!(view[0].0.attempts, 1);
    assert_eq!(view[0].1.len(), 1);
    assert_eq!(view[0].1[0].stdout, "out\u{0}put");
    let counted = store
        .list_events(&EventQuery {
            topic: Some("orders.counted".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(counted.events.len(), 1, "the emitted event");
    assert_eq!(counted.events[0].0.emitted_by, Some(claimed.delivery.id));
    assert_eq!(counted.events[0].1[0].plugin, "b");

    // Read before the write above: its commit conflicts, and nothing of it
    // lands; the delivery is still running.
    let second = store
        .ingest(event("e2"), &[Route::new("a")])
        .await
        .expect("ingest");
    let claimed2 = claim_of(store, second.id).await;
    let stale_read = Effects {
        reads: vec![("count".into(), 0)],
        writes: vec![("count".into(), Some(b"2".to_vec()))],
        emitted: Vec::new(),
    };
    let a2 = attempt(&claimed2, Outcome::Ok);
    assert_eq!(
        store
            .finish_attempt(&a2, Next::Succeeded, Some(&stale_read))
            .await
            .expect("finish"),
        Finish::Conflict
    );
    assert_eq!(
        store.kv_get("a", "count").await.expect("kv"),
        Some((version, b"1".to_vec()))
    );
    assert_eq!(
        status_of(store, claimed2.delivery.id).await,
        DeliveryStatus::Running
    );
    assert!(
        store
            .attempts_of(claimed2.delivery.id)
            .await
            .expect("attempts")
            .is_empty()
    );
    // With the version it now sees, it commits.
    let fresh = Effects {
        reads: vec![("count".into(), version)],
        ..stale_read
    };
    assert_eq!(
        store
            .finish_attempt(&a2, Next::Succeeded, Some(&fresh))
            .await
            .expect("finish"),
        Finish::Committed
    );
    let (newer, value) = store.kv_get("a", "count").await.expect("kv").expect("kv");
    assert_eq!(value, b"2");
    assert!(newer > version, "versions only grow");
    // The same result again: the delivery is no longer running.
    assert_eq!(
        store
            .finish_attempt(&a2, Next::Succeeded, None)
            .await
            .expect("finish"),
        Finish::Stale
    );
}

async fn dead_letters_pauses_and_replays_move_deliveries(store: &Store) {
    let ingested = store
        .ingest(event("d1"), &[Route::new("a")])
        .await
        .expect("ingest");
    let claimed = claim_of(store, ingested.id).await;
    let id = claimed.delivery.id;
    let a = attempt(&claimed, Outcome::Reject("no".into()));
    store
        .finish_attempt(&a, Next::Dead, None)
        .await
        .expect("finish");
    assert_eq!(status_of(store, id).await, DeliveryStatus::Dead);
    let dead = store.dead_letters(None, None, 10).await.expect("dead");
    assert_eq!(
        dead.deliveries.iter().map(|d| d.id).collect::<Vec<_>>(),
        [id]
    );
    assert!(
        store
            .dead_letters(Some("b"), None, 10)
            .await
            .expect("dead")
            .deliveries
            .is_empty()
    );
    assert!(store.retry_dead(id).await.expect("retry"));
    assert!(!store.retry_dead(id).await.expect("retry"), "not dead now");
    let retried = store.delivery(id).await.expect("read").expect("delivery");
    assert_eq!(retried.status, DeliveryStatus::Pending);
    assert_eq!(retried.attempts_before_retry, 1);

    let entry = store
        .due(now_ms() + 1, None, 10)
        .await
        .expect("due")
        .into_iter()
        .find(|e| e.delivery == id)
        .expect("due again");
    assert!(store.pause(&entry).await.expect("pause"));
    assert_eq!(status_of(store, id).await, DeliveryStatus::Paused);
    assert!(!store.pause(&entry).await.expect("pause"), "paused already");
    assert_eq!(store.resume_paused("b").await.expect("resume"), 0);
    assert_eq!(store.resume_paused("a").await.expect("resume"), 1);
    assert_eq!(status_of(store, id).await, DeliveryStatus::Pending);

    let ids = store
        .replay(ingested.id, &[Route::new("b")], Some("abc"))
        .await
        .expect("replay")
        .expect("the event exists");
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].seq, 1);
    let replayed = store.delivery(ids[0]).await.expect("read").expect("new");
    assert_eq!(
        (replayed.plugin.as_str(), replayed.pinned_version.as_deref()),
        ("b", Some("abc"))
    );
    assert_eq!(
        store
            .replay(Ulid::new(), &[Route::new("b")], None)
            .await
            .expect("replay"),
        None
    );
    assert!(
        store.next_due_after(0).await.expect("next").is_some(),
        "something is due after the epoch"
    );
    assert_eq!(
        store
            .next_due_after(now_ms() + 3_600_000)
            .await
            .expect("next"),
        None
    );
}

async fn only_the_first_unfinished_delivery_of_a_key_may_run(store: &Store) {
    let keyed = |key: &str| Route {
        plugin: "p".into(),
        order_key: Some(key.into()),
    };
    let mut ids = Vec::new();
    for (n, key) in ["a", "a", "b"].iter().enumerate() {
        ids.push(
            store
                .ingest(event(&format!("o{n}")), &[keyed(key)])
                .await
                .expect("ingest")
                .id,
        );
    }
    let due = store.due(now_ms() + 1, None, 10).await.expect("due");
    let mut blocked = Vec::new();
    for e in &due {
        blocked.push(store.blocked(e).await.expect("blocked"));
    }
    assert_eq!(blocked, [false, true, false], "the second `a` waits");

    // The first `a` dies: the second may run; the dead letter, retried,
    // is back at the head of its line.
    let first = store.claim(&due[0]).await.expect("claim").expect("claimed");
    let a = attempt(&first, Outcome::Reject("no".into()));
    store
        .finish_attempt(&a, Next::Dead, None)
        .await
        .expect("finish");
    assert!(!store.blocked(&due[1]).await.expect("blocked"));
    assert!(store.retry_dead(first.delivery.id).await.expect("retry"));
    assert!(store.blocked(&due[1]).await.expect("blocked"));

    // A retry keeps its place; success frees the line.
    let again = claim_of(store, ids[0]).await;
    let a = attempt(&again, Outcome::Retry("later".into()));
    store
        .finish_attempt(&a, Next::RetryAt(now_ms()), None)
        .await
        .expect("finish");
    assert!(store.blocked(&due[1]).await.expect("blocked"));
    let again = claim_of(store, ids[0]).await;
    let a = attempt(&again, Outcome::Ok);
    store
        .finish_attempt(&a, Next::Succeeded, None)
        .await
        .expect("finish");
    assert!(!store.blocked(&due[1]).await.expect("blocked"));
}

async fn a_schedule_tick_fires_once_and_never_before_the_last(store: &Store) {
    let tick = |key: &str| NewEvent {
        topic: "schedule.p.nightly".into(),
        ..event(key)
    };
    let routes = [Route::new("p")];
    assert_eq!(
        store.schedule_last("p", "nightly").await.expect("read"),
        None
    );
    store
        .schedule_start("p", "nightly", 1_000)
        .await
        .expect("start");
    store
        .schedule_start("p", "nightly", 5)
        .await
        .expect("again");
    assert_eq!(
        store.schedule_last("p", "nightly").await.expect("read"),
        Some(1_000),
        "the first start stands"
    );
    assert!(
        !store
            .fire_schedule("p", "nightly", 1_000, tick("t0"), &routes)
            .await
            .expect("fire")
    );
    assert!(
        store
            .fire_schedule("p", "nightly", 2_000, tick("t1"), &routes)
            .await
            .expect("fire")
    );
    assert!(
        !store
            .fire_schedule("p", "nightly", 1_500, tick("t2"), &routes)
            .await
            .expect("fire"),
        "never a tick before the last"
    );
    // Two firings of one tick at once: one wins.
    let (x, y) = tokio::join!(
        store.fire_schedule("p", "nightly", 3_000, tick("t3"), &routes),
        store.fire_schedule("p", "nightly", 3_000, tick("t4"), &routes),
    );
    assert_eq!(
        [x.expect("fire"), y.expect("fire")]
            .iter()
            .filter(|f| **f)
            .count(),
        1
    );
    assert_eq!(
        store.schedule_last("p", "nightly").await.expect("read"),
        Some(3_000)
    );
    let fired = store
        .list_events(&EventQuery {
            topic: Some("schedule.*".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(fired.events.len(), 2, "ticks 2000 and 3000");
}

async fn purge_removes_finished_events_only(store: &Store) {
    let finished = store.ingest(event("p1"), &[]).await.expect("ingest");
    let pending = store
        .ingest(event("p2"), &[Route::new("a")])
        .await
        .expect("ingest");
    let report = store.purge(now_ms() + 1, None, 100).await.expect("purge");
    assert_eq!((report.examined, report.purged), (2, 1));
    assert_eq!(report.resume_after, None);
    assert!(store.event(finished.id).await.expect("read").is_none());
    assert!(store.event(pending.id).await.expect("read").is_some());
    let again = store.ingest(event("p1"), &[]).await.expect("ingest");
    assert!(!again.duplicate, "its idempotency key went with it");
}

async fn a_deliverys_journal_keeps_its_calls_in_order_until_its_event_goes(store: &Store) {
    let ingested = store
        .ingest(event("j1"), &[Route::new("a")])
        .await
        .expect("ingest");
    let claimed = claim_of(store, ingested.id).await;
    let id = claimed.delivery.id;
    let entry = |index: u32, request: &str| JournalEntry {
        index,
        request: request.into(),
        status: 200,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: vec![0, 1, 0xff, index as u8],
    };
    assert!(store.journaled(id).await.expect("read").is_empty());
    for index in [0, 1, 2] {
        store
            .journal(id, &entry(index, "first"))
            .await
            .expect("journal");
    }
    // A retry whose call 1 differed journals its own call there.
    store
        .journal(id, &entry(1, "second"))
        .await
        .expect("journal");
    let other = store
        .ingest(event("j2"), &[Route::new("a")])
        .await
        .expect("ingest");
    let other = claim_of(store, other.id).await.delivery.id;
    store
        .journal(other, &entry(0, "other"))
        .await
        .expect("journal");
    assert_eq!(
        store.journaled(id).await.expect("read"),
        vec![entry(0, "first"), entry(1, "second"), entry(2, "first")]
    );

    let done = attempt(&claimed, Outcome::Ok);
    let finished = store
        .finish_attempt(&done, Next::Succeeded, None)
        .await
        .expect("finish");
    assert_eq!(finished, Finish::Committed);
    let report = store.purge(now_ms() + 1, None, 100).await.expect("purge");
    assert_eq!(report.purged, 1, "{report:?}");
    assert!(
        store.journaled(id).await.expect("read").is_empty(),
        "purged with its event"
    );
    assert_eq!(
        store.journaled(other).await.expect("read").len(),
        1,
        "not another's"
    );
}

async fn any_ordering_key_a_body_yields_can_be_stored(store: &Store) {
    let long = format!(r#"{{"k": "{}"}}"#, "x".repeat(100_000));
    for body in [br#"{"k": "a\u0000b"}"#.as_slice(), long.as_bytes()] {
        let order_key = crate::model::OrderBy::Body("/k".into()).key_of(None, body);
        let route = Route {
            plugin: "ordered".into(),
            order_key,
        };
        let mut new = event("ordered");
        new.idempotency_key = None;
        new.body = body.to_vec();
        store.ingest(new, &[route]).await.expect("stored");
    }
}

async fn quarantine_is_bounded_by_age_and_size(store: &Store) {
    let now = now_ms();
    let body = |at: u64, n: u128| Quarantined {
        id: Ulid::from_parts(at, n),
        received_at_ms: at,
        topic: "orders.created".into(),
        idempotency_key: None,
        headers: Vec::new(),
        content_type: None,
        body: vec![b'x'; 1000],
        contract: "orders.*".into(),
        violations: vec!["not JSON".into()],
        provenance: None,
    };
    let old = body(now - 10_000, 1);
    let new: Vec<Quarantined> = (1..=3).map(|n| body(now, n)).collect();
    for q in std::iter::once(&old).chain(&new) {
        store.quarantine(q).await.expect("quarantine");
    }
    let size = serde_json::to_vec(&new[0]).expect("json").len() as u64;
    // Room for two and a half: the two newest stay.
    let removed = store
        .purge_quarantine(now - 5_000, size * 5 / 2)
        .await
        .expect("purge");
    assert_eq!(removed, 2);
    let kept: Vec<Ulid> = store
        .quarantined(None, 10)
        .await
        .expect("list")
        .iter()
        .map(|q| q.id)
        .collect();
    assert_eq!(kept, [new[2].id, new[1].id]);
    // Within both bounds, nothing goes.
    let removed = store.purge_quarantine(0, u64::MAX).await.expect("purge");
    assert_eq!(removed, 0);
}

async fn quarantine_and_version_history_round_trip(store: &Store) {
    let q = Quarantined {
        id: store.new_id(),
        received_at_ms: now_ms(),
        topic: "orders.created".into(),
        idempotency_key: None,
        headers: Vec::new(),
        content_type: None,
        body: b"\x00\xffnot json".to_vec(),
        contract: "orders.*".into(),
        violations: vec!["not JSON".into()],
        provenance: None,
    };
    store.quarantine(&q).await.expect("quarantine");
    assert_eq!(
        store.quarantined(None, 10).await.expect("list"),
        vec![q.clone()]
    );
    assert_eq!(
        store.quarantined_one(q.id).await.expect("one"),
        Some(q.clone())
    );
    assert!(
        store
            .quarantined(Some(q.id), 10)
            .await
            .expect("list")
            .is_empty()
    );
    store.release(q.id).await.expect("release");
    assert_eq!(store.quarantined_one(q.id).await.expect("one"), None);

    for (at, sha) in [(10, "aa"), (20, "bb")] {
        let v = PluginVersion {
            sha256: sha.into(),
            loaded_at_ms: at,
            size_bytes: 1,
            manifest: Manifest::default(),
            source: "file".into(),
        };
        store.record_version("p", &v).await.expect("record");
    }
    let shas: Vec<String> = store
        .versions("p")
        .await
        .expect("versions")
        .into_iter()
        .map(|v| v.sha256)
        .collect();
    assert_eq!(shas, ["aa", "bb"]);
    assert!(store.versions("q").await.expect("versions").is_empty());
    assert!(store.size_on_disk().await.expect("size") > 0);
}

async fn claims_taken_together_answer_each_entry_apart(store: &Store) {
    let routes = [Route::new("a")];
    let mut ids = Vec::new();
    for key in ["c1", "c2", "c3"] {
        ids.push(store.ingest(event(key), &routes).await.expect("ingest").id);
    }
    let due = store.due(now_ms() + 1, None, 10).await.expect("due");
    assert_eq!(due.len(), 3);
    // The second entry is claimed alone first: taken together, it is the
    // only one answered `None`, and the others are still claimed.
    let alone = store.claim(&due[1]).await.expect("claim").expect("claimed");
    let together = store.claim_many(&due).await;
    assert_eq!(together.len(), 3);
    let claimed: Vec<Option<Ulid>> = together
        .into_iter()
        .map(|c| c.expect("claim").map(|c| c.event.id))
        .collect();
    assert_eq!(claimed, [Some(ids[0]), None, Some(ids[2])]);
    assert_eq!(alone.event.id, ids[1]);
    for entry in [&due[0], &due[2]] {
        assert!(
            store.claim(entry).await.expect("claim again").is_none(),
            "claimed once only"
        );
    }
    assert!(store.claim_many(&[]).await.is_empty());
}

async fn idempotency_keys_count_only_within_their_scope(store: &Store) {
    use crate::model::Provenance;
    let routes = [Route::new("p")];
    let from = |provenance: Provenance, key: &str| NewEvent {
        provenance,
        ..event(key)
    };
    let shop = || Provenance::Source {
        name: "shop".into(),
        verified: true,
    };
    let api = store.ingest(event("k1"), &routes).await.expect("api");
    let hooked = store
        .ingest(from(shop(), "k1"), &routes)
        .await
        .expect("hook");
    assert!(!hooked.duplicate, "a source's key is not the api's");
    assert_ne!(hooked.id, api.id);
    let again = store
        .ingest(from(shop(), "k1"), &routes)
        .await
        .expect("again");
    assert_eq!((again.id, again.duplicate), (hooked.id, true));
    let emitted = Provenance::Emitted { plugin: "p".into() };
    assert!(
        !store
            .ingest(from(emitted, "k1"), &routes)
            .await
            .expect("emitted")
            .duplicate
    );

    // An anonymous post cannot claim a schedule's future tick.
    let key = "schedule:p:hourly:3000";
    assert!(
        !store
            .ingest(event(key), &routes)
            .await
            .expect("claim")
            .duplicate
    );
    store
        .schedule_start("p", "hourly", 1_000)
        .await
        .expect("start");
    let tick = from(
        Provenance::Schedule {
            plugin: "p".into(),
            name: "hourly".into(),
        },
        key,
    );
    assert!(
        store
            .fire_schedule("p", "hourly", 3_000, tick, &routes)
            .await
            .expect("fire"),
        "the tick fires"
    );
    let (record, _) = store.event(hooked.id).await.expect("read").expect("event");
    assert_eq!(record.provenance, Some(shop()));
    assert_eq!(record.idempotency_key.as_deref(), Some("k1"), "shown bare");
}
