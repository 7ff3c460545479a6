//! Ingest batching: concurrent ingests share one transaction.
//!
//! [`Store::ingest`](super::Store::ingest) queues its event here. One task
//! per open database takes everything queued (up to [`MAX_BATCH`]), inserts
//! it in one sled transaction on the blocking pool and answers each caller;
//! the next batch gathers while that transaction runs. Each caller then waits
//! for group commit as before, so an ingest still returns only once its event
//! is on disk. One transaction per batch instead of one per event is what
//! lets ingest scale: sled's cost is mostly per transaction, not per key.

use super::write::{EventTx, Route, TxResult, finish_tx};
use super::{StoreError, Trees, note_failure};
use crate::model::EventRecord;
use sled::Transactional;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use ulid::Ulid;

/// Events per transaction at most.
pub const MAX_BATCH: usize = 512;

/// One queued ingest: `done` gets the original id for a duplicate, `None`
/// for a new event.
pub struct Job {
    pub record: EventRecord,
    pub body: Vec<u8>,
    pub routes: Vec<Route>,
    pub done: oneshot::Sender<Result<Option<Ulid>, StoreError>>,
}

pub struct Batcher {
    /// `None` once stopped. Held only to clone or take, never across an await.
    tx: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Batcher {
    pub fn start(trees: Trees, gate: Arc<RwLock<()>>, failure: Arc<Mutex<Option<String>>>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(trees, gate, failure, rx));
        Self {
            tx: Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
        }
    }

    /// Queues a job; its answer comes on its `done`.
    pub fn submit(&self, job: Job) -> Result<(), StoreError> {
        let tx = self.tx.lock().map_err(|_| StoreError::Closed)?;
        match tx.as_ref() {
            Some(tx) => tx.send(job).map_err(|_| StoreError::Closed),
            None => Err(StoreError::Closed),
        }
    }

    /// Stops taking jobs, answers those queued, and waits for the task.
    pub async fn stop(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn run(
    trees: Trees,
    gate: Arc<RwLock<()>>,
    failure: Arc<Mutex<Option<String>>>,
    mut rx: mpsc::UnboundedReceiver<Job>,
) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let (t, gate, failure) = (trees.clone(), gate.clone(), failure.clone());
        let done = tokio::task::spawn_blocking(move || {
            let results = insert(&t, &gate, &failure, &jobs);
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
                for (job, id) in jobs.into_iter().zip(ids) {
                    let _ = job.done.send(Ok(id));
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

/// Inserts every job's event in one transaction.
fn insert(
    t: &Trees,
    gate: &RwLock<()>,
    failure: &Mutex<Option<String>>,
    jobs: &[Job],
) -> Result<Vec<Option<Ulid>>, StoreError> {
    let _gate = match gate.read() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    let trees = (
        &t.events,
        &t.bodies,
        &t.idempotency,
        &t.deliveries,
        &t.due,
        &t.ordered,
    );
    let result = trees.transaction(|(events, bodies, idempotency, deliveries, due, ordered)| {
        let tx = EventTx {
            events,
            bodies,
            idempotency,
            deliveries,
            due,
            ordered: Some(ordered),
        };
        jobs.iter()
            .map(|job| tx.insert(&job.record, &job.body, &job.routes))
            .collect::<TxResult<Vec<_>>>()
    });
    let result = finish_tx(result);
    if let Err(StoreError::Sled(e)) = &result {
        note_failure(failure, e);
    }
    result?.map_err(|_| StoreError::Closed)
}
