//! Group commit: one flush to disk serves every write that finished before it.
//!
//! Writers call [`GroupCommit::wait`] after their transaction. A single task
//! takes every waiter queued so far, flushes once, and answers them all; the
//! waiters that arrive during that flush are served by the next one. Under
//! load this turns N flushes into about one per flush duration.

use super::StoreError;
use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

type Waiter = oneshot::Sender<Result<(), String>>;

pub struct GroupCommit {
    /// `None` once stopped. A std mutex: it is held only to clone or take
    /// the sender, never across an await.
    tx: Mutex<Option<mpsc::UnboundedSender<Waiter>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl GroupCommit {
    pub fn start(db: sled::Db) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(flush_loop(db, rx));
        Self {
            tx: Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
        }
    }

    pub async fn wait(&self) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        let sent = self
            .tx
            .lock()
            .map_err(|_| StoreError::Closed)?
            .as_ref()
            .map(|tx| tx.send(done).is_ok())
            .unwrap_or(false);
        if !sent {
            return Err(StoreError::Closed);
        }
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Sled(sled::Error::Io(std::io::Error::other(
                message,
            )))),
            Err(_) => Err(StoreError::Closed),
        }
    }

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

async fn flush_loop(db: sled::Db, mut rx: mpsc::UnboundedReceiver<Waiter>) {
    let mut waiters = Vec::new();
    while let Some(first) = rx.recv().await {
        waiters.push(first);
        while let Ok(more) = rx.try_recv() {
            waiters.push(more);
        }
        let db = db.clone();
        let started = std::time::Instant::now();
        let result = match tokio::task::spawn_blocking(move || db.flush()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("flush task failed: {e}")),
        };
        crate::metrics::flushed(started.elapsed(), waiters.len());
        if let Err(e) = &result {
            tracing::error!(error = %e, waiters = waiters.len(), "flush failed: writes not acknowledged");
        }
        for waiter in waiters.drain(..) {
            let _ = waiter.send(result.clone());
        }
    }
}
