//! Jobs served by one task, with their answers on oneshot channels: the
//! plumbing of every batcher (the embedded store's ingest and result
//! finisher, the PostgreSQL store's ingest and result batches).

use crate::StoreError;
use std::sync::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Jobs served by one task.
pub struct Queue<J> {
    /// `None` once stopped. Held only to clone or take, never across an await.
    tx: Mutex<Option<mpsc::UnboundedSender<J>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl<J: Send + 'static> Queue<J> {
    /// Spawns `serve` on the queue's receiving end.
    pub fn start<F>(serve: impl FnOnce(mpsc::UnboundedReceiver<J>) -> F) -> Self
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(serve(rx));
        Self {
            tx: Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
        }
    }

    /// Queues a job; its answer comes on its `done`.
    pub fn submit(&self, job: J) -> Result<(), StoreError> {
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

/// Adds to `jobs` what is queued now, until it holds `max`: a batch is
/// whatever arrived while the last one was being written.
pub fn top_up<J>(rx: &mut mpsc::UnboundedReceiver<J>, jobs: &mut Vec<J>, max: usize) {
    while jobs.len() < max {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
}
