//! The store against real sled in a temp dir.

use super::*;
use crate::model::{Attempt, NewEvent, Outcome, now_ms};

fn event(key: &str) -> NewEvent {
    NewEvent {
        topic: "orders.created".into(),
        idempotency_key: Some(key.into()),
        headers: Vec::new(),
        content_type: None,
        body: b"{}".to_vec(),
    }
}

fn attempt(claimed: &Claimed, outcome: Outcome) -> Attempt {
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
        logs: Vec::new(),
        stdout: String::new(),
        stderr: String::new(),
        truncated: false,
        effects: None,
        http: Vec::new(),
    }
}

/// What the counter must equal: the indexes it summarises, counted.
fn counted(store: &Store) -> u64 {
    (store.t.due.len() + store.t.running.len()) as u64
}

fn claim_next(store: &Store) -> Claimed {
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
    let store = Store::open(dir.path()).expect("open");
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
            store.finish_attempt(&a, next, None).expect("finish"),
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
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.queue_depth(), 8, "a running delivery still counts");
    assert_eq!(store.queue_depth(), counted(&store));
}

#[tokio::test]
async fn only_the_first_unfinished_delivery_of_a_key_may_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
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
    store.finish_attempt(&a, Next::Dead, None).expect("finish");
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
        .expect("finish");
    assert!(store.blocked(&due[1]).expect("blocked"));
    let entry = due_again(first.delivery.id);
    let again = store.claim(&entry).expect("claim").expect("claimed");
    let a = attempt(&again, Outcome::Ok);
    store
        .finish_attempt(&a, Next::Succeeded, None)
        .expect("finish");
    assert!(!store.blocked(&due[1]).expect("blocked"));
    assert_eq!(
        store.t.ordered.len(),
        2,
        "the finished delivery left its line"
    );
}

#[tokio::test]
async fn a_schedule_tick_fires_once_and_never_before_the_last() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
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
    assert_eq!(store.t.events.len(), 2);
    assert_eq!(store.queue_depth(), 2);
}

#[tokio::test]
async fn the_queue_depth_survives_an_end_counted_before_its_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    // The dispatcher may finish a delivery before the ingest that created it
    // has added it to the count: the sum must still come back to zero.
    store.queued_sub(1);
    assert_eq!(store.queue_depth(), 0);
    store.queued_add(1);
    assert_eq!(store.queue_depth(), 0);
    store.queued_add(2);
    assert_eq!(store.queue_depth(), 2);
}
