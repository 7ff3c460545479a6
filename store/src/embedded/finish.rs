//! Result batching: attempt records without effects share one transaction.
//!
//! [`SledStore::finish_attempt`](super::SledStore::finish_attempt) queues a
//! result with no kv access and no emitted events here (the common case;
//! results with effects commit on their own, as they can conflict). One task
//! per open database takes everything queued (up to [`MAX_BATCH`]) and
//! records it in one sled transaction on the blocking pool, as ingest's
//! batcher does: sled's cost is mostly per transaction (each one writes the
//! log twice, and syncs each write), and the records no longer take the
//! runtime's threads. A lone attempt's result (no other claim held, no other
//! record being written) is recorded at once on the caller's thread instead:
//! it then waits for no hand-offs between threads. (In `cargo bench -p
//! hookhost --bench attempt`, a lone attempt's commit took 339 µs through
//! the queue and 90 µs at once.) A batch whose first result arrives while
//! other attempts still run waits up to [`GATHER`] for their results too:
//! under the unbounded load of `cargo run --release -p hookhost-bench --bin
//! load`, batches then held about 7.6 results instead of 2.7, and the disk
//! writes per attempt while draining halved.
//! A result is not flushed before its
//! answer (a record that never reaches the disk leaves its delivery due, to
//! run again), so no flush is waited for.

use super::super::types::{Finish, Next};
use super::batch::Queue;
use super::tx::{Abort, MoveTx, TxResult, finish_tx};
use super::{StoreError, Trees, note_failure};
use crate::model::{Attempt, DeliveryId, now_ms};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};

/// The longest a batch waits for the results of attempts still running.
const GATHER: std::time::Duration = std::time::Duration::from_millis(1);

/// Claims held: attempts running, or whose results wait to be recorded.
fn running(shared: &Shared) -> usize {
    match shared.claims.lock() {
        Ok(c) => c.len(),
        Err(poisoned) => poisoned.into_inner().len(),
    }
}

/// Results per transaction at most.
pub const MAX_BATCH: usize = 256;

/// One queued result of the attempt holding the claim on its delivery's
/// `due` entry at `due_at`.
pub struct Job {
    pub attempt: Attempt,
    /// The attempt, encoded by the caller outside the transaction.
    pub encoded: sled::IVec,
    pub next: Next,
    pub due_at: u64,
    pub done: oneshot::Sender<Result<Finish, StoreError>>,
}

/// What the finisher works with: the open database's trees, and the
/// store's write gate, failure flag, queue counter and claims.
pub struct Shared {
    pub trees: Trees,
    pub gate: Arc<RwLock<()>>,
    pub failure: Arc<Mutex<Option<String>>>,
    pub queued: Arc<AtomicI64>,
    pub claims: Arc<Mutex<HashMap<DeliveryId, u64>>>,
    /// Lowered to entries left due: retries, and stale claims given up.
    pub floor: Arc<super::floor::Floor>,
    /// Records being written now, queued or alone.
    pub writing: std::sync::atomic::AtomicUsize,
    /// Results recorded so far.
    pub recorded: Recorded,
}

/// Results recorded so far, by path.
#[derive(Default)]
pub struct Recorded {
    pub alone: std::sync::atomic::AtomicU64,
    pub batched: std::sync::atomic::AtomicU64,
}

pub struct Finisher {
    queue: Queue<Job>,
    shared: Arc<Shared>,
}

impl Finisher {
    pub fn start(shared: Shared) -> Self {
        let shared = Arc::new(shared);
        let served = shared.clone();
        Self {
            queue: Queue::start(|rx| run(served, rx)),
            shared,
        }
    }

    /// Records one result on this thread if no other record is being
    /// written; else hands it back, to be queued.
    pub fn record_alone(
        &self,
        attempt: &Attempt,
        next: Next,
        due_at: u64,
    ) -> Option<Result<Finish, StoreError>> {
        let writing = &self.shared.writing;
        if writing.fetch_add(1, Ordering::AcqRel) != 0 {
            writing.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let encoded = super::encode(attempt).into();
        let result =
            record(&self.shared, &[(attempt, &encoded, next, due_at)]).map(|mut f| f.remove(0));
        writing.fetch_sub(1, Ordering::AcqRel);
        if result.is_ok() {
            self.shared.recorded.alone.fetch_add(1, Ordering::Relaxed);
        }
        Some(result)
    }

    /// Results recorded so far: (at once, in the queue's batches).
    #[cfg(test)]
    pub fn recorded(&self) -> (u64, u64) {
        let r = &self.shared.recorded;
        (
            r.alone.load(Ordering::Relaxed),
            r.batched.load(Ordering::Relaxed),
        )
    }

    /// Queues a result; its answer comes on its `done`.
    pub fn submit(&self, job: Job) -> Result<(), StoreError> {
        self.queue.submit(job)
    }

    /// Stops taking results, records those queued, and waits for the task.
    pub async fn stop(&self) {
        self.queue.stop().await
    }
}

async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        crate::jobs::top_up(&mut rx, &mut jobs, MAX_BATCH);
        // Attempts still running will report soon: wait a little for them,
        // so that one transaction records them all.
        let gather_until = tokio::time::Instant::now() + GATHER;
        while jobs.len() < MAX_BATCH && jobs.len() < running(&shared) {
            match tokio::time::timeout_at(gather_until, rx.recv()).await {
                Ok(Some(job)) => jobs.push(job),
                Ok(None) | Err(_) => break,
            }
        }
        let s = shared.clone();
        s.writing.fetch_add(1, Ordering::AcqRel);
        let done = tokio::task::spawn_blocking(move || {
            let items: Vec<_> = jobs
                .iter()
                .map(|j| (&j.attempt, &j.encoded, j.next, j.due_at))
                .collect();
            let started = std::time::Instant::now();
            let results = record(&s, &items);
            crate::metrics::transaction("record", started.elapsed(), items.len());
            s.writing.fetch_sub(1, Ordering::AcqRel);
            if results.is_ok() {
                s.recorded
                    .batched
                    .fetch_add(items.len() as u64, Ordering::Relaxed);
            }
            (jobs, results)
        })
        .await;
        // A panicked batch drops its jobs: their callers see the store
        // closed, and give their claims up.
        let Ok((jobs, results)) = done else {
            tracing::error!("a batch of attempt records failed; its deliveries run again");
            continue;
        };
        match results {
            Ok(finished) => {
                for (job, finish) in jobs.into_iter().zip(finished) {
                    let _ = job.done.send(Ok(finish));
                }
            }
            Err(e) => {
                let text = e.to_string();
                for job in jobs {
                    let _ = job.done.send(Err(StoreError::Unavailable(text.clone())));
                }
            }
        }
    }
}

/// One result: the attempt, the attempt encoded (outside the transaction),
/// its delivery's next state, and the due time of the entry it was claimed
/// from.
type Item<'a> = (&'a Attempt, &'a sled::IVec, Next, u64);

/// Records every result in one transaction; a result whose claim no longer
/// matches its delivery is `Stale` and writes nothing.
fn record(shared: &Shared, jobs: &[Item<'_>]) -> Result<Vec<Finish>, StoreError> {
    let t = &shared.trees;
    let _gate = match shared.gate.read() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    let now = now_ms();
    let trees = (&t.deliveries, &t.due, &t.dead, &t.attempts, &t.ordered);
    let result = trees.transaction(|(deliveries, due, dead, attempts, ordered)| {
        let moves = MoveTx {
            deliveries,
            due,
            dead,
            attempts,
            ordered: Some(ordered),
        };
        jobs.iter()
            .map(|&(attempt, encoded, next, due_at)| {
                match moves.claimed_delivery(attempt.delivery, due_at) {
                    Ok(d) => moves.record(d, due_at, (attempt, encoded), next, now)?,
                    Err(ConflictableTransactionError::Abort(Abort::Stale)) => {
                        return Ok(Finish::Stale);
                    }
                    Err(e) => return Err(e),
                }
                Ok(Finish::Committed)
            })
            .collect::<TxResult<Vec<_>>>()
    });
    let result = finish_tx(result);
    if let Err(StoreError::Sled(e)) = &result {
        note_failure(&shared.failure, e);
    }
    let finished = result?.map_err(|_| StoreError::Closed)?;
    // Settled once committed, whether or not the attempts still wait.
    let mut claims = match shared.claims.lock() {
        Ok(c) => c,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut ended = 0;
    let mut lowest: Option<super::floor::DueKey> = None;
    for ((attempt, _, next, due_at), finish) in jobs.iter().zip(&finished) {
        let id = attempt.delivery;
        claims.remove(&id);
        let left_due = match (finish, next) {
            (Finish::Committed, Next::RetryAt(at)) => Some(*at),
            (Finish::Committed, _) => {
                ended += 1;
                None
            }
            // Whatever its entry holds now, no claim covers it.
            _ => Some(*due_at),
        };
        if let Some(at) = left_due {
            let key = super::keys::due(at, id);
            lowest = Some(lowest.map_or(key, |l| l.min(key)));
        }
    }
    drop(claims);
    shared.queued.fetch_sub(ended, Ordering::Relaxed);
    // After the claims are gone: a scan that still saw one claimed keeps
    // the floor at or below it.
    if let Some(lowest) = lowest {
        shared.floor.lower(lowest);
    }
    Ok(finished)
}
