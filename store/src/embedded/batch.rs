//! Ingest batching: concurrent ingests share one transaction.
//!
//! [`SledStore::ingest`](super::SledStore::ingest) queues its event here. One task
//! per open database takes everything queued (up to [`MAX_BATCH`]) and
//! inserts it in one sled transaction on the blocking pool; then the batch
//! waits for group commit as one waiter and answers each caller once its
//! event is on disk. The next batch gathers until the flush that takes the
//! previous one has started, then commits while it runs: one ingest
//! transaction per flush. One transaction and one flush wait per batch
//! instead of one per event is what lets ingest scale: sled's cost is
//! mostly per transaction, not per key. (With a batch committed as soon as
//! the last one was, a flush served 1.6 ingest transactions on average at
//! 10 000 events/s; `docs/performance.md`.)

use super::commit::GroupCommit;
use super::tx::{EventRows, EventTx, TxResult, finish_tx};
use super::{StoreError, Trees, note_failure};
pub use crate::jobs::Queue;
use sled::Transactional;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};
use ulid::Ulid;

/// Events per transaction at most.
pub const MAX_BATCH: usize = 512;

/// One queued ingest: `done` gets the original id for a duplicate, `None`
/// for a new event.
pub struct Job {
    /// Encoded by the caller, outside the transaction.
    pub rows: EventRows,
    pub done: oneshot::Sender<Result<Option<Ulid>, StoreError>>,
}

/// What the batch task works with: the open database's trees and group
/// commit, and the store's write gate, failure flag and queue counter.
pub struct Shared {
    pub trees: Trees,
    pub commit: Arc<GroupCommit>,
    /// Lowered to the new `due` entries once they are committed.
    pub floor: Arc<super::floor::Floor>,
    pub gate: Arc<RwLock<()>>,
    pub failure: Arc<Mutex<Option<String>>>,
    pub queued: Arc<AtomicI64>,
}

pub type Batcher = Queue<Job>;

/// Starts ingest's batch task.
pub fn start(shared: Shared) -> Batcher {
    Queue::start(|rx| run(Arc::new(shared), rx))
}

async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut flushes = tokio::task::JoinSet::new();
    let mut started = shared.commit.started();
    // Flushes started before the last batch's waiter was queued.
    let mut before_last: Option<u64> = None;
    loop {
        // One batch per flush: until the flush that takes the last batch has
        // started, a new batch would wait for the same flush as a second
        // transaction (sled's cost is mostly per transaction, and each takes
        // its global lock alone); the events arriving meanwhile join the next
        // batch instead. A closed group commit ends the wait.
        if let Some(n) = before_last.take() {
            let _ = started.wait_for(|&now| now > n).await;
        }
        let Some(first) = rx.recv().await else {
            break;
        };
        // Reap finished flush waits (they answer their callers themselves).
        while flushes.try_join_next().is_some() {}
        let mut jobs = vec![first];
        crate::jobs::top_up(&mut rx, &mut jobs, MAX_BATCH);
        let s = shared.clone();
        let done = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let results = insert(&s, &jobs);
            crate::metrics::transaction("ingest", started.elapsed(), jobs.len());
            (jobs, results)
        })
        .await;
        // A panicked batch drops its jobs: their callers see the store closed.
        let Ok((jobs, results)) = done else {
            tracing::error!("an ingest batch failed; its events were not stored");
            continue;
        };
        match results {
            Ok(ids) => {
                let flushed_before = *started.borrow_and_update();
                let answer = shared.commit.enqueue();
                if answer.is_ok() {
                    before_last = Some(flushed_before);
                }
                let shared = shared.clone();
                flushes.spawn(async move {
                    let flushed = match answer {
                        Ok(answer) => GroupCommit::answered(answer).await,
                        Err(e) => Err(e),
                    };
                    match flushed {
                        Ok(()) => {
                            for (job, id) in jobs.into_iter().zip(ids) {
                                let _ = job.done.send(Ok(id));
                            }
                        }
                        Err(e) => {
                            if let StoreError::Sled(e) = &e {
                                note_failure(&shared.failure, e);
                            }
                            let text = e.to_string();
                            for job in jobs {
                                let _ = job.done.send(Err(StoreError::Unavailable(text.clone())));
                            }
                        }
                    }
                });
            }
            Err(e) => {
                let text = e.to_string();
                for job in jobs {
                    let _ = job.done.send(Err(StoreError::Unavailable(text.clone())));
                }
            }
        }
    }
    while flushes.join_next().await.is_some() {}
}

/// Inserts every job's event in one transaction.
fn insert(shared: &Shared, jobs: &[Job]) -> Result<Vec<Option<Ulid>>, StoreError> {
    let t = &shared.trees;
    let _gate = match shared.gate.read() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    let trees = (&t.events, &t.idempotency, &t.deliveries, &t.due, &t.ordered);
    let result = trees.transaction(|(events, idempotency, deliveries, due, ordered)| {
        let tx = EventTx {
            events,
            idempotency,
            deliveries,
            due,
            ordered: Some(ordered),
        };
        jobs.iter()
            .map(|job| tx.insert(&job.rows))
            .collect::<TxResult<Vec<_>>>()
    });
    let result = finish_tx(result);
    if let Err(StoreError::Sled(e)) = &result {
        note_failure(&shared.failure, e);
    }
    let ids = result?.map_err(|_| StoreError::Closed)?;
    // Counted once committed, whether or not its callers still wait.
    let added: usize = jobs
        .iter()
        .zip(&ids)
        .filter(|(_, id)| id.is_none())
        .map(|(job, _)| job.rows.deliveries())
        .sum();
    shared.queued.fetch_add(added as i64, Ordering::Relaxed);
    let lowest = jobs
        .iter()
        .zip(&ids)
        .filter(|(_, id)| id.is_none())
        .filter_map(|(job, _)| job.rows.first_due())
        .min();
    if let Some(lowest) = lowest {
        shared.floor.lower(lowest);
    }
    Ok(ids)
}
