//! Group commit: one flush to disk serves every write that finished before it.
//!
//! Writers call [`GroupCommit::wait`] after their transaction. A single task
//! takes every waiter queued so far, flushes once, and answers them all; the
//! waiters that arrive during that flush are served by the next one. Under
//! load this turns N flushes into about one per flush duration.
//!
//! A flush is sled's `flush` and then an `fdatasync` of sled's log file.
//! sled makes its log stable with `sync_file_range`, which writes the pages
//! out but neither flushes the device's write cache nor records a longer
//! file's new size (sled grows the log by writing past its end); sled's own
//! `fsync` comes only from its background flusher, every 200 ms. Without
//! the `fdatasync`, a power cut could lose events already acknowledged.

use super::StoreError;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

type Waiter = oneshot::Sender<Result<(), String>>;

pub struct GroupCommit {
    /// `None` once stopped. A std mutex: it is held only to clone or take
    /// the sender, never across an await.
    tx: Mutex<Option<mpsc::UnboundedSender<Waiter>>>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Flushes started so far: a flush takes every waiter queued before it
    /// starts.
    started: tokio::sync::watch::Receiver<u64>,
}

impl GroupCommit {
    /// Starts the flush task for `db`, whose log file is `log`
    /// ([`open_log`]).
    pub fn start(db: sled::Db, log: Arc<File>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (started_tx, started) = tokio::sync::watch::channel(0);
        let task = tokio::spawn(flush_loop(db, log, rx, started_tx));
        Self {
            tx: Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
            started,
        }
    }

    /// Waits for a flush that covers every write finished before the call.
    pub async fn wait(&self) -> Result<(), StoreError> {
        Self::answered(self.enqueue()?).await
    }

    /// Queues a waiter for the next flush at once; [`GroupCommit::answered`]
    /// waits for its answer.
    pub fn enqueue(&self) -> Result<oneshot::Receiver<Result<(), String>>, StoreError> {
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
        Ok(answer)
    }

    /// How many flushes have started so far.
    pub fn started(&self) -> tokio::sync::watch::Receiver<u64> {
        self.started.clone()
    }

    /// The answer to a waiter from [`GroupCommit::enqueue`].
    pub async fn answered(answer: oneshot::Receiver<Result<(), String>>) -> Result<(), StoreError> {
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

/// sled's log file (`db` in its directory), opened to be synced: an
/// `fdatasync` on any descriptor of a file syncs the file.
pub fn open_log(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join("db");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| {
            StoreError::Sled(sled::Error::Io(std::io::Error::new(
                e.kind(),
                format!("cannot open sled's log {} to sync it: {e}", path.display()),
            )))
        })
}

/// Everything committed before the call is on the device: sled's flush,
/// then the log file's data and size through the device's cache. What
/// group commit waits for, and what the store's disk probe checks.
pub fn flush_and_sync(db: &sled::Db, log: &File) -> Result<(), sled::Error> {
    db.flush()?;
    log.sync_data().map_err(|e| {
        sled::Error::Io(std::io::Error::new(
            e.kind(),
            format!("syncing sled's log failed: {e}"),
        ))
    })
}

async fn flush_loop(
    db: sled::Db,
    log: Arc<File>,
    mut rx: mpsc::UnboundedReceiver<Waiter>,
    started: tokio::sync::watch::Sender<u64>,
) {
    let mut waiters = Vec::new();
    while let Some(first) = rx.recv().await {
        waiters.push(first);
        while let Ok(more) = rx.try_recv() {
            waiters.push(more);
        }
        started.send_modify(|n| *n += 1);
        let (db, log) = (db.clone(), log.clone());
        let started = std::time::Instant::now();
        let result = match tokio::task::spawn_blocking(move || flush_and_sync(&db, &log)).await {
            Ok(result) => result.map_err(|e| e.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_log_file_sled_writes_is_found_and_flushes_answer_every_waiter() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sled::Config::new()
            .path(dir.path())
            .open()
            .expect("sled opens");
        let log = open_log(dir.path()).expect("finds the log");
        let commit = GroupCommit::start(db.clone(), Arc::new(log));
        db.insert("k", "v").expect("insert");
        let mut started = commit.started();
        assert_eq!(*started.borrow_and_update(), 0);
        let waits = futures::future::join_all((0..8).map(|_| commit.wait())).await;
        assert!(waits.iter().all(Result::is_ok), "{waits:?}");
        let after_waits = *started.borrow_and_update();
        assert!((1..=8).contains(&after_waits), "{after_waits} flushes");
        // A queued waiter is taken by the next flush to start.
        let answer = commit.enqueue().expect("queued");
        started
            .wait_for(|&n| n > after_waits)
            .await
            .expect("a flush starts");
        GroupCommit::answered(answer).await.expect("flushed");
        commit.stop().await;
        assert!(matches!(commit.wait().await, Err(StoreError::Closed)));
    }

    #[test]
    fn a_directory_without_sleds_log_is_refused_with_its_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let Err(err) = open_log(dir.path()) else {
            panic!("opened a log that is not there");
        };
        let err = err.to_string();
        assert!(err.contains("cannot open sled's log"), "{err}");
        assert!(
            err.contains(&dir.path().join("db").display().to_string()),
            "{err}"
        );
    }
}
