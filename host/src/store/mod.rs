//! The durable store: the only module that names sled.
//!
//! # Trees
//! | tree         | key                          | value                         |
//! |--------------|------------------------------|-------------------------------|
//! | `events`     | event ULID                   | `EventRecord` as JSON       |
//! | `bodies`     | event ULID                   | raw body bytes                |
//! | `idempotency`| idempotency key              | event ULID                    |
//! | `deliveries` | event ULID + seq             | `Delivery` as JSON            |
//! | `due`        | due ms + delivery            | plugin name (pending only)    |
//! | `running`    | delivery                     | empty (claimed, in flight)    |
//! | `paused`     | plugin \0 delivery           | empty (plugin not loaded)     |
//! | `dead`       | delivery                     | empty (dead letters)          |
//! | `attempts`   | delivery + attempt number    | `Attempt` as JSON             |
//! | `kv`         | plugin \0 key                | version (8 bytes) + value     |
//! | `quarantine` | ULID                         | `Quarantined` as JSON         |
//! | `versions`   | plugin \0 loaded ms + sha    | `PluginVersion` as JSON       |
//! | `schedules`  | plugin \0 schedule name       | last tick fired (ms, 8 bytes) |
//! | `ordered`    | plugin \0 key hash + delivery | empty (per-key, unfinished)   |
//!
//! # Invariants
//! - Every multi-key change is one sled transaction: an event, its
//!   idempotency key and its deliveries appear together or not at all; an
//!   attempt's record, its delivery's new state and its kv writes and emitted
//!   events commit together or not at all.
//! - A delivery is in exactly one of `due`, `running`, `paused`, `dead`, or
//!   none (succeeded), matching its `status`.
//! - A delivery with an `order_key` is in `ordered` from its creation until
//!   it succeeds or dies, changed in the same transactions; only the first
//!   entry under its key may run.
//! - [`Store::ingest`] returns only after the write is flushed to disk; many
//!   concurrent ingests share one flush (group commit).

mod commit;
mod keys;
mod read;
mod write;

pub use read::{DeadPage, EventPage, EventQuery};
pub use write::{Claimed, DueEntry, Effects, Emitted, Finish, Ingested, Next, Route};

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record in {tree}: {message}")]
    Corrupt { tree: &'static str, message: String },
    #[error("store is closed")]
    Closed,
}

/// The embedded sled store.
pub struct Store {
    db: sled::Db,
    t: Trees,
    commit: commit::GroupCommit,
    /// Monotonic ULIDs: ids made in the same millisecond still sort in the
    /// order they were made, so "newest first" is exact.
    ids: std::sync::Mutex<ulid::Generator>,
    /// Deliveries waiting or running (in `due` or `running`): the queue depth
    /// ingest's backpressure reads. Counted at open, then kept by every
    /// committed change that adds or ends such a delivery. Signed: a delivery
    /// may end (and be subtracted) before the ingest that added it has
    /// counted it, so the sum may dip below zero for a moment.
    queued: std::sync::atomic::AtomicI64,
}

#[derive(Clone)]
struct Trees {
    events: sled::Tree,
    bodies: sled::Tree,
    idempotency: sled::Tree,
    deliveries: sled::Tree,
    due: sled::Tree,
    running: sled::Tree,
    paused: sled::Tree,
    dead: sled::Tree,
    attempts: sled::Tree,
    kv: sled::Tree,
    versions: sled::Tree,
    quarantine: sled::Tree,
    ordered: sled::Tree,
    schedules: sled::Tree,
}

impl Store {
    /// Opens (or creates) the store in `dir`. Must be called inside a tokio
    /// runtime: it starts the group-commit task.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = open_db(dir)?;
        let tree = |name: &str| db.open_tree(name);
        let t = Trees {
            events: tree("events")?,
            bodies: tree("bodies")?,
            idempotency: tree("idempotency")?,
            deliveries: tree("deliveries")?,
            due: tree("due")?,
            running: tree("running")?,
            paused: tree("paused")?,
            dead: tree("dead")?,
            attempts: tree("attempts")?,
            kv: tree("kv")?,
            versions: tree("versions")?,
            quarantine: tree("quarantine")?,
            ordered: tree("ordered")?,
            schedules: tree("schedules")?,
        };
        let queued = (t.due.len() + t.running.len()) as i64;
        let commit = commit::GroupCommit::start(db.clone());
        Ok(Self {
            db,
            t,
            commit,
            ids: std::sync::Mutex::new(ulid::Generator::new()),
            queued: std::sync::atomic::AtomicI64::new(queued),
        })
    }

    /// Deliveries pending (due now or later) or running.
    pub fn queue_depth(&self) -> u64 {
        self.queued
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(0) as u64
    }

    fn queued_add(&self, n: usize) {
        self.queued
            .fetch_add(n as i64, std::sync::atomic::Ordering::Relaxed);
    }

    fn queued_sub(&self, n: usize) {
        self.queued
            .fetch_sub(n as i64, std::sync::atomic::Ordering::Relaxed);
    }

    /// A new id, greater than every id this store made before.
    pub fn new_id(&self) -> ulid::Ulid {
        self.ids
            .lock()
            .ok()
            .and_then(|mut g| g.generate().ok())
            .unwrap_or_else(|| ulid::Ulid::from_datetime(std::time::SystemTime::now()))
    }

    /// Waits until everything written so far is on disk, sharing the flush
    /// with every other caller waiting at the same time.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.commit.wait().await
    }

    /// Flushes and stops the group-commit task. Writes after this fail.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.commit.stop().await;
        self.db.flush_async().await?;
        Ok(())
    }

    /// The version and value of `key` in `plugin`'s kv space.
    pub fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        match self.t.kv.get(keys::kv(plugin, key))? {
            None => Ok(None),
            Some(raw) => {
                let (version, value) = keys::parse_kv_value(&raw).ok_or(StoreError::Corrupt {
                    tree: "kv",
                    message: "value shorter than its version".into(),
                })?;
                Ok(Some((version, value.to_vec())))
            }
        }
    }

    /// Appends a loaded version to a plugin's history.
    pub fn record_version(
        &self,
        plugin: &str,
        version: &crate::model::PluginVersion,
    ) -> Result<(), StoreError> {
        let mut key = keys::plugin_prefix(plugin);
        key.extend_from_slice(&version.loaded_at_ms.to_be_bytes());
        key.extend_from_slice(version.sha256.as_bytes());
        self.t.versions.insert(key, encode(version))?;
        Ok(())
    }

    /// A plugin's loaded versions, oldest first.
    pub fn versions(&self, plugin: &str) -> Result<Vec<crate::model::PluginVersion>, StoreError> {
        self.t
            .versions
            .scan_prefix(keys::plugin_prefix(plugin))
            .map(|item| decode("versions", &item?.1))
            .collect()
    }

    /// Keeps a refused body (flushed, like an ingest).
    pub async fn quarantine(&self, record: &crate::model::Quarantined) -> Result<(), StoreError> {
        self.t
            .quarantine
            .insert(keys::event(record.id), encode(record))?;
        self.durable().await
    }

    /// Quarantined bodies, newest first, older than `before`, at most `limit`.
    pub fn quarantined(
        &self,
        before: Option<ulid::Ulid>,
        limit: usize,
    ) -> Result<Vec<crate::model::Quarantined>, StoreError> {
        let range = match before {
            Some(b) => self.t.quarantine.range(..keys::event(b).to_vec()),
            None => self.t.quarantine.range::<Vec<u8>, _>(..),
        };
        range
            .rev()
            .take(limit.clamp(1, 1000))
            .map(|item| decode("quarantine", &item?.1))
            .collect()
    }

    /// One quarantined body.
    pub fn quarantined_one(
        &self,
        id: ulid::Ulid,
    ) -> Result<Option<crate::model::Quarantined>, StoreError> {
        self.t
            .quarantine
            .get(keys::event(id))?
            .map(|raw| decode("quarantine", &raw))
            .transpose()
    }

    /// Forgets a quarantined body (it was re-ingested).
    pub fn release(&self, id: ulid::Ulid) -> Result<(), StoreError> {
        self.t.quarantine.remove(keys::event(id))?;
        Ok(())
    }

    /// Bytes the store occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }
}

/// How long [`Store::open`] waits for a previous holder of the store's
/// lock to let go: sled releases it from background threads shortly after
/// the last handle is dropped, so a quick restart in the same process (or
/// right after the old process exits) may find it still held.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    let give_up = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new()
            .path(dir)
            .flush_every_ms(Some(200))
            .open()
        {
            Ok(db) => return Ok(db),
            // sled reports a held lock only as text in an I/O error.
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < give_up =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Our records are plain structs of strings and numbers: serialising them
    // to JSON cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        tree,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
