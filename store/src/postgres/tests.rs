//! What only a shared store must do: several hosts on one database.

use super::super::contract::{attempt, event};
use super::super::types::*;
use super::testing::TestDatabase;
use super::*;
use crate::model::{DeliveryId, NewEvent, Outcome};
use std::collections::HashSet;

async fn host(url: &str, lease: Duration) -> PgStore {
    PgStore::connect(&PgOptions {
        url: url.to_owned(),
        pool_size: 4,
        lease,
    })
    .await
    .expect("connect")
}

/// Claims and finishes every due delivery it can until none is left.
async fn work(store: &PgStore) -> Vec<DeliveryId> {
    let mut done = Vec::new();
    loop {
        let due = store.due(now_ms() + 1, None, 8).await.expect("due");
        if due.is_empty() {
            return done;
        }
        for entry in due {
            if let Some(claimed) = store.claim(&entry).await.expect("claim") {
                let a = attempt(&claimed, Outcome::Ok);
                assert_eq!(
                    store
                        .finish_attempt(&a, Next::Succeeded, None)
                        .await
                        .expect("finish"),
                    Finish::Committed
                );
                done.push(claimed.delivery.id);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_sharing_a_database_never_run_one_delivery_twice() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let hosts = [
        host(&db.url, Duration::from_secs(60)).await,
        host(&db.url, Duration::from_secs(60)).await,
        host(&db.url, Duration::from_secs(60)).await,
    ];
    let mut ids = HashSet::new();
    for n in 0..60 {
        let routes = [Route::new("a"), Route::new("b")];
        let stored = hosts[n % 3]
            .ingest(event(&format!("k{n}")), &routes)
            .await
            .expect("ingest");
        ids.insert(stored.id);
    }
    let (x, y, z) = tokio::join!(work(&hosts[0]), work(&hosts[1]), work(&hosts[2]));
    let all: Vec<DeliveryId> = x.iter().chain(&y).chain(&z).copied().collect();
    let distinct: HashSet<DeliveryId> = all.iter().copied().collect();
    assert_eq!(all.len(), 120, "every delivery ran");
    assert_eq!(distinct.len(), 120, "none ran twice");
    assert!(distinct.iter().all(|d| ids.contains(&d.event)));
    for h in &hosts {
        h.close().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_goes_to_another_host_and_the_late_result_is_refused() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    // The first host's lease runs out at once, as if it had died.
    let (dying, live) = (
        host(&db.url, Duration::from_millis(1)).await,
        host(&db.url, Duration::from_secs(60)).await,
    );
    let stored = dying
        .ingest(event("lease"), &[Route::new("a")])
        .await
        .expect("ingest");
    let entry = dying
        .due(now_ms() + 1, None, 1)
        .await
        .expect("due")
        .remove(0);
    let first = dying.claim(&entry).await.expect("claim").expect("claimed");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while live.requeue_running().await.expect("reap") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the expired lease was never reaped"
        );
        tokio::task::yield_now().await;
    }
    let entry = live
        .due(now_ms() + 1, None, 1)
        .await
        .expect("due")
        .remove(0);
    let second = live.claim(&entry).await.expect("claim").expect("claimed");
    assert_eq!(second.delivery.id, first.delivery.id);
    let effects = |value: &[u8]| Effects {
        reads: vec![("count".into(), 0)],
        writes: vec![("count".into(), Some(value.to_vec()))],
        emitted: Vec::new(),
    };
    let by_live = attempt(&second, Outcome::Ok);
    assert_eq!(
        live.finish_attempt(&by_live, Next::Succeeded, Some(&effects(b"live")))
            .await
            .expect("finish"),
        Finish::Committed
    );
    let late = attempt(&first, Outcome::Ok);
    assert_eq!(
        dying
            .finish_attempt(&late, Next::Succeeded, Some(&effects(b"late")))
            .await
            .expect("finish"),
        Finish::Stale,
        "the host that lost its lease commits nothing"
    );
    let (_, value) = live.kv_get("a", "count").await.expect("kv").expect("kv");
    assert_eq!(value, b"live");
    let attempts = live.attempts_of(first.delivery.id).await.expect("attempts");
    assert_eq!(attempts.len(), 1);
    let d = live
        .delivery(first.delivery.id)
        .await
        .expect("read")
        .expect("delivery");
    assert_eq!(d.status, DeliveryStatus::Succeeded);
    assert_eq!(d.id.event, stored.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_attempts_that_read_a_key_one_commits_and_one_conflicts() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (x, y) = (
        host(&db.url, Duration::from_secs(60)).await,
        host(&db.url, Duration::from_secs(60)).await,
    );
    for key in ["c1", "c2"] {
        x.ingest(event(key), &[Route::new("a")])
            .await
            .expect("ingest");
    }
    let due = x.due(now_ms() + 1, None, 2).await.expect("due");
    let cx = x.claim(&due[0]).await.expect("claim").expect("claimed");
    let cy = y.claim(&due[1]).await.expect("claim").expect("claimed");
    let effects = Effects {
        reads: vec![("count".into(), 0)],
        writes: vec![("count".into(), Some(b"1".to_vec()))],
        emitted: Vec::new(),
    };
    let (ax, ay) = (attempt(&cx, Outcome::Ok), attempt(&cy, Outcome::Ok));
    let (fx, fy) = tokio::join!(
        x.finish_attempt(&ax, Next::Succeeded, Some(&effects)),
        y.finish_attempt(&ay, Next::Succeeded, Some(&effects)),
    );
    let mut outcomes = [fx.expect("finish"), fy.expect("finish")];
    outcomes.sort_by_key(|f| format!("{f:?}"));
    assert_eq!(outcomes, [Finish::Committed, Finish::Conflict]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_starting_together_migrate_the_schema_once() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (a, b, c) = tokio::join!(
        host(&db.url, Duration::from_secs(60)),
        host(&db.url, Duration::from_secs(60)),
        host(&db.url, Duration::from_secs(60)),
    );
    let client = a.pool.get().await.expect("connection");
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM hookhost_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("migrations")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let known: Vec<i32> = schema::MIGRATIONS.iter().map(|(v, _)| *v).collect();
    assert_eq!(versions, known);
    // A database from a newer host is refused, not misread.
    client
        .execute(
            "INSERT INTO hookhost_migrations (version, applied_ms) VALUES (9999, 0)",
            &[],
        )
        .await
        .expect("insert");
    let Err(e) = PgStore::connect(&PgOptions {
        url: db.url.clone(),
        pool_size: 2,
        lease: Duration::from_secs(60),
    })
    .await
    else {
        panic!("a newer schema must be refused");
    };
    assert!(e.to_string().contains("9999"), "{e}");
    for h in [a, b, c] {
        h.close().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_bodies_are_queryable_and_other_bodies_are_kept_as_bytes() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let store = host(&db.url, Duration::from_secs(60)).await;
    let json = store.ingest(event("j"), &[]).await.expect("ingest").id;
    let raw = store
        .ingest(
            NewEvent {
                body: b"\x00\x01binary".to_vec(),
                content_type: None,
                ..event("r")
            },
            &[],
        )
        .await
        .expect("ingest")
        .id;
    let client = store.pool.get().await.expect("connection");
    let found: Vec<Vec<u8>> = client
        .query("SELECT id FROM events WHERE body_json->>'key' = 'j'", &[])
        .await
        .expect("query")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(found, vec![id_bytes(json)]);
    let (_, body) = store.event(raw).await.expect("read").expect("event");
    assert_eq!(body, b"\x00\x01binary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_reported_until_it_is_back() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let store = host(&db.url, Duration::from_secs(60)).await;
    assert_eq!(store.failure(), None);
    let admin = super::testing::connect(&db.server).await.expect("admin");
    let shut = |allow: bool| format!("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {allow}", db.name);
    admin.batch_execute(&shut(false)).await.expect("refuse");
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&db.name],
        )
        .await
        .expect("terminate");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.failure().is_none() {
        assert!(std::time::Instant::now() < deadline, "never noticed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(matches!(
        store.ingest(event("down"), &[]).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(store.recover().await.is_err());

    admin.batch_execute(&shut(true)).await.expect("allow");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.recover().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.failure(), None);
    assert!(
        !store
            .ingest(event("up"), &[])
            .await
            .expect("ingest")
            .duplicate
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lease_is_renewed_or_given_back_and_a_lost_one_is_not() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let a = host(&db.url, Duration::from_secs(60)).await;
    let b = host(&db.url, Duration::from_secs(60)).await;
    let stored = a
        .ingest(event("renewed"), &[Route::new("p")])
        .await
        .expect("ingest");
    let due = a.due(now_ms() + 1, None, 8).await.expect("due");
    let claimed = a.claim(&due[0]).await.expect("claim").expect("claimed");
    let id = claimed.delivery.id;
    let lease_left = || async {
        let c = a.pool.get().await.expect("conn");
        let row = c
            .query_one(
                &format!(
                    "SELECT lease_until - {DB_NOW_MS} FROM deliveries WHERE event = $1 AND seq = $2"
                ),
                &[&id_bytes(stored.id), &(id.seq as i32)],
            )
            .await
            .expect("lease");
        row.get::<_, Option<i64>>(0)
    };
    // The lease has nearly run out, as after a long claim.
    a.pool
        .get()
        .await
        .expect("conn")
        .execute(
            &format!("UPDATE deliveries SET lease_until = {DB_NOW_MS} + 10 WHERE event = $1"),
            &[&id_bytes(stored.id)],
        )
        .await
        .expect("age the lease");
    assert!(lease_left().await.expect("leased") <= 10);
    assert!(!b.renew_lease(id).await.expect("renew"), "not b's lease");
    assert!(a.renew_lease(id).await.expect("renew"));
    assert!(
        lease_left().await.expect("leased") > 50_000,
        "a full lease from now"
    );

    // Given back, it is due at once for any host, with no attempt recorded.
    assert!(!b.give_back(id).await.expect("give back"), "not b's claim");
    assert!(a.give_back(id).await.expect("give back"));
    assert_eq!(lease_left().await, None);
    assert!(!a.renew_lease(id).await.expect("renew"), "given back");
    let due = b.due(now_ms() + 1, None, 8).await.expect("due");
    assert_eq!(due.len(), 1, "due again");
    let again = b.claim(&due[0]).await.expect("claim").expect("claimed");
    assert_eq!(again.delivery.attempts, 0, "no attempt was charged");
    let done = attempt(&again, Outcome::Ok);
    b.finish_attempt(&done, Next::Succeeded, None)
        .await
        .expect("finish");
    assert!(!b.renew_lease(id).await.expect("renew"), "finished");
    a.close().await.expect("close");
    b.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_commit_in_batches_and_a_bad_one_fails_alone() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let store = host(&db.url, Duration::from_secs(60)).await;
    let routes = [Route::new("a")];
    // Forty ingests at once, keyed and not: a key sent twice is one event,
    // and a topic PostgreSQL cannot store (a NUL in text) fails by itself.
    let mut events: Vec<NewEvent> = (0..40)
        .map(|n| NewEvent {
            idempotency_key: (n % 2 == 0).then(|| format!("k{n}")),
            ..event("unused")
        })
        .collect();
    events[7].topic = "bad\0topic".into();
    events[9].idempotency_key = Some("k8".into());
    let stored =
        futures::future::join_all(events.into_iter().map(|e| store.ingest(e, &routes))).await;
    let error = stored[7].as_ref().expect_err("a NUL in a topic is refused");
    assert!(error.to_string().contains("database"), "{error}");
    let ok: Vec<&Ingested> = stored
        .iter()
        .enumerate()
        .filter(|(n, _)| *n != 7)
        .map(|(n, r)| r.as_ref().unwrap_or_else(|e| panic!("ingest {n}: {e}")))
        .collect();
    let (k8, again) = (&stored[8], &stored[9]);
    let (k8, again) = (k8.as_ref().expect("k8"), again.as_ref().expect("k8 again"));
    assert_eq!(k8.id, again.id, "one event per idempotency key");
    assert_eq!(
        [k8.duplicate, again.duplicate]
            .iter()
            .filter(|d| **d)
            .count(),
        1,
        "exactly one of the two is the duplicate"
    );
    assert_eq!(ok.iter().filter(|i| !i.duplicate).count(), 38);
    assert_eq!(store.queue_depth(), 38);

    // Every due delivery claimed in one call; a second call finds none due.
    let due = store.due(now_ms() + 1, None, 100).await.expect("due");
    assert_eq!(due.len(), 38);
    let claimed: Vec<Claimed> = store
        .claim_many(&due)
        .await
        .into_iter()
        .map(|c| c.expect("claim").expect("due"))
        .collect();
    assert!(
        claimed
            .iter()
            .zip(&due)
            .all(|(c, e)| c.delivery.id == e.delivery),
        "answers in the order asked"
    );
    assert!(
        store
            .claim_many(&due)
            .await
            .into_iter()
            .all(|c| matches!(c, Ok(None))),
        "a claimed delivery is not due"
    );

    // Their results at once: one names an attempt its delivery is not at
    // and is refused; the rest commit.
    let mut attempts: Vec<crate::model::Attempt> =
        claimed.iter().map(|c| attempt(c, Outcome::Ok)).collect();
    attempts[3].number += 1;
    let finished = futures::future::join_all(
        attempts
            .iter()
            .map(|a| store.finish_attempt(a, Next::Succeeded, None)),
    )
    .await;
    for (n, f) in finished.iter().enumerate() {
        let expected = if n == 3 {
            Finish::Stale
        } else {
            Finish::Committed
        };
        assert_eq!(f.as_ref().expect("finish"), &expected, "result {n}");
    }
    for (n, c) in claimed.iter().enumerate() {
        let d = store
            .delivery(c.delivery.id)
            .await
            .expect("read")
            .expect("kept");
        let expected = if n == 3 {
            DeliveryStatus::Running
        } else {
            DeliveryStatus::Succeeded
        };
        assert_eq!(d.status, expected, "delivery {n}");
        let recorded = store.attempts_of(c.delivery.id).await.expect("attempts");
        assert_eq!(recorded.len(), usize::from(n != 3), "delivery {n}");
    }
    assert_eq!(
        store.queue_depth(),
        1,
        "only the refused result's delivery is left"
    );
    store.close().await.expect("close");
}
