//! The embedded store, on sled: one host, one directory.
//!
//! # Trees
//! | tree         | key                          | value                         |
//! |--------------|------------------------------|-------------------------------|
//! | `events`     | event ULID                   | record and body (see below)   |
//! | `bodies`     | event ULID                   | raw body (older stores only)  |
//! | `idempotency`| idempotency key              | event ULID                    |
//! | `deliveries` | event ULID + seq             | `Delivery` as JSON            |
//! | `due`        | due ms + delivery            | plugin name (pending only)    |
//! | `running`    | delivery                     | empty (older stores only)     |
//! | `paused`     | plugin \0 delivery           | empty (plugin not loaded)     |
//! | `dead`       | delivery                     | empty (dead letters)          |
//! | `attempts`   | delivery + attempt number    | `Attempt` as JSON             |
//! | `kv`         | plugin \0 key                | version (8 bytes) + value     |
//! | `quarantine` | ULID                         | `Quarantined` as JSON         |
//! | `versions`   | plugin \0 loaded ms + sha    | `PluginVersion` as JSON       |
//! | `schedules`  | plugin \0 schedule name       | last tick fired (ms, 8 bytes) |
//! | `ordered`    | plugin \0 key hash + delivery | empty (per-key, unfinished)   |
//! | `journal`    | delivery + call index        | `JournalEntry` as JSON        |
//!
//! An event's value in `events` is [`EVENT_WITH_BODY`], the length of its
//! record (u32, big-endian), the `EventRecord` as JSON, then the raw body:
//! one key per event, so ingest inserts one row where it inserted two.
//! Stores written before that hold the record alone (JSON, so `{` first)
//! with the body in `bodies`; both are read, and purge removes both.
//!
//! # Invariants
//! - Every multi-key change is one sled transaction: an event, its
//!   idempotency key and its deliveries appear together or not at all; an
//!   attempt's record, its delivery's new state and its kv writes and emitted
//!   events commit together or not at all.
//! - A delivery is in exactly one of `due`, `paused`, `dead`, or none
//!   (succeeded), matching its `status`. (Stores written before claims moved
//!   to memory may also hold `running` entries: [`SledStore::requeue_running`]
//!   makes them due at startup.)
//! - A claim is memory only: a claimed delivery keeps its `due` entry and its
//!   stored status (`pending`) until its attempt's record commits, which
//!   removes the entry in the same transaction. After a crash it is simply
//!   due, and runs again: the at-least-once guarantee a durable `running`
//!   mark gave, without three writes per attempt. Readers show a claimed
//!   delivery as `running`.
//! - A delivery with an `order_key` is in `ordered` from its creation until
//!   it succeeds or dies, changed in the same transactions; only the first
//!   entry under its key may run.
//! - [`SledStore::ingest`] returns only after the write is flushed to disk; many
//!   concurrent ingests share one flush (group commit).
//! - Every write holds the write gate shared; a backup holds it alone, so a
//!   backup sees no transaction half done.
//! - Once sled fails a write it refuses all later ones (its error is
//!   sticky): the store then marks itself failed, every write answers
//!   [`StoreError::Unavailable`], and [`SledStore::recover`] closes sled and
//!   opens it again from what reached the disk.

mod backup;
mod batch;
mod codec;
mod commit;
mod finish;
mod floor;
mod ingest;
mod journal;
mod keys;
mod open;
mod purge;
mod queue;
mod read;
mod redrive;
mod tx;

pub use backup::{BackupSummary, RestoreSummary, restore, verify_backup};

pub(super) use super::StoreError;

use codec::{decode, decode_event, encode, event_value};
pub(crate) use open::describe;
use open::{LOCK_WAIT, open_db};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// The embedded sled store.
pub struct SledStore {
    dir: PathBuf,
    /// sled's page cache, in bytes.
    cache_bytes: u64,
    /// The open database; `None` while it is being reopened.
    live: RwLock<Option<Arc<Live>>>,
    /// Writers hold it shared, a backup alone.
    gate: Arc<RwLock<()>>,
    /// Why the last write failed, until the store recovers.
    failure: Arc<Mutex<Option<String>>>,
    ids: super::types::Ids,
    /// Deliveries waiting or running (in `due` or `running`): the queue depth
    /// ingest's backpressure reads. Counted at open, then kept by every
    /// committed change that adds or ends such a delivery. Signed: a delivery
    /// may end (and be subtracted) before the ingest that added it has
    /// counted it, so the sum may dip below zero for a moment.
    queued: Arc<std::sync::atomic::AtomicI64>,
    /// Deliveries claimed by an attempt in flight, with the due time of the
    /// `due` entry each was claimed from.
    claims: Claims,
}

type Claims = Arc<Mutex<std::collections::HashMap<crate::model::DeliveryId, u64>>>;

/// One opening of the sled database.
struct Live {
    db: sled::Db,
    /// sled's log file, synced after each of sled's flushes.
    log: Arc<std::fs::File>,
    t: Trees,
    commit: Arc<commit::GroupCommit>,
    batcher: batch::Batcher,
    finisher: finish::Finisher,
    /// Where the dispatcher's scan of `due` starts.
    floor: Arc<floor::Floor>,
}

/// The open database for a write, with the write gate held shared: hold it
/// only around synchronous work, never across an await.
struct Writing<'a> {
    _gate: std::sync::RwLockReadGuard<'a, ()>,
    live: Arc<Live>,
}

impl std::ops::Deref for Writing<'_> {
    type Target = Live;
    fn deref(&self) -> &Live {
        &self.live
    }
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
    journal: sled::Tree,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`. Must be called inside a tokio
    /// runtime: it starts the group-commit task.
    #[cfg(test)]
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// [`SledStore::open`] with sled's page cache bounded to `cache_bytes`.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let gate = Arc::new(RwLock::new(()));
        let failure = Arc::new(Mutex::new(None));
        let queued = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let claims = Claims::default();
        let live = Live::open(dir, cache_bytes, &gate, &failure, &queued, &claims)?;
        queued.store(
            (live.t.due.len() + live.t.running.len()) as i64,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(Self {
            dir: dir.to_owned(),
            cache_bytes,
            live: RwLock::new(Some(Arc::new(live))),
            gate,
            failure,
            ids: super::types::Ids::default(),
            queued,
            claims,
        })
    }

    /// The open database, for reading.
    fn live(&self) -> Result<Arc<Live>, StoreError> {
        let live = match self.live.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        live.ok_or_else(|| StoreError::Unavailable(self.failure().unwrap_or_default()))
    }

    /// The open database, for writing: refused while the store is failed.
    fn writing(&self) -> Result<Writing<'_>, StoreError> {
        if let Some(reason) = self.failure() {
            return Err(StoreError::Unavailable(reason));
        }
        let gate = match self.gate.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        Ok(Writing {
            _gate: gate,
            live: self.live()?,
        })
    }

    /// The claims of attempts in flight. Never hold them while calling sled
    /// (see [`SledStore::claim`]).
    fn claims(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<crate::model::DeliveryId, u64>> {
        match self.claims.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A stored delivery as readers see it: `running` while claimed.
    fn shown(&self, mut d: crate::model::Delivery) -> crate::model::Delivery {
        if self.claims().contains_key(&d.id) {
            d.status = crate::model::DeliveryStatus::Running;
        }
        d
    }

    /// Why writes are refused, if they are.
    pub fn failure(&self) -> Option<String> {
        match self.failure.lock() {
            Ok(f) => f.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Passes an error through, marking the store failed if sled could not
    /// write: sled refuses every write after its first I/O error.
    fn noted<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Sled(e)) = &result {
            note_failure(&self.failure, e);
        }
        result
    }

    /// Closes sled and opens it again from what reached the disk, then
    /// checks that it can write. On success, clears the failure. Waits for
    /// operations in flight to let go first. Claims stay: the attempts
    /// holding them record their results once the store is back, or give
    /// them up; a result that never reached the disk left its delivery due.
    pub async fn recover(&self) -> Result<(), StoreError> {
        let old = match self.live.write() {
            Ok(mut l) => l.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(old) = old {
            old.batcher.stop().await;
            old.finisher.stop().await;
            old.commit.stop().await;
            let give_up = std::time::Instant::now() + LOCK_WAIT;
            while Arc::strong_count(&old) > 1 && std::time::Instant::now() < give_up {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            drop(old);
        }
        let (dir, cache_bytes) = (self.dir.clone(), self.cache_bytes);
        let (gate, failure, queued, claims) = (
            self.gate.clone(),
            self.failure.clone(),
            self.queued.clone(),
            self.claims.clone(),
        );
        let opened = tokio::task::spawn_blocking(move || {
            let live = Live::open(&dir, cache_bytes, &gate, &failure, &queued, &claims)?;
            live.probe()?;
            Ok::<_, StoreError>(live)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("reopening failed: {e}")))?;
        let live = match opened {
            Ok(live) => live,
            Err(e) => {
                // Stay closed: the next try opens it again.
                return Err(e);
            }
        };
        let queued = (live.t.due.len() + live.t.running.len()) as i64;
        self.queued
            .store(queued, std::sync::atomic::Ordering::Relaxed);
        match self.live.write() {
            Ok(mut l) => *l = Some(Arc::new(live)),
            Err(poisoned) => *poisoned.into_inner() = Some(Arc::new(live)),
        }
        match self.failure.lock() {
            Ok(mut f) => *f = None,
            Err(poisoned) => *poisoned.into_inner() = None,
        }
        let requeued = self.requeue_running()?;
        tracing::info!(requeued, "the store recovered and accepts writes again");
        Ok(())
    }
}

/// Marks the store failed after sled could not write (once: the first
/// reason stands until it recovers).
fn note_failure(failure: &Mutex<Option<String>>, e: &sled::Error) {
    let mut failure = match failure.lock() {
        Ok(f) => f,
        Err(poisoned) => poisoned.into_inner(),
    };
    if failure.is_none() {
        tracing::error!(error = %e, "the store cannot write; refusing writes until it recovers");
        *failure = Some(describe(e));
    }
}

impl Live {
    fn open(
        dir: &Path,
        cache_bytes: u64,
        gate: &Arc<RwLock<()>>,
        failure: &Arc<Mutex<Option<String>>>,
        queued: &Arc<std::sync::atomic::AtomicI64>,
        claims: &Claims,
    ) -> Result<Self, StoreError> {
        let db = open_db(dir, cache_bytes)?;
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
            journal: tree("journal")?,
        };
        let log = Arc::new(commit::open_log(dir)?);
        let commit = Arc::new(commit::GroupCommit::start(db.clone(), log.clone()));
        let floor = Arc::new(floor::Floor::default());
        let batcher = batch::start(batch::Shared {
            trees: t.clone(),
            commit: commit.clone(),
            floor: floor.clone(),
            gate: gate.clone(),
            failure: failure.clone(),
            queued: queued.clone(),
        });
        let finisher = finish::Finisher::start(finish::Shared {
            trees: t.clone(),
            gate: gate.clone(),
            failure: failure.clone(),
            queued: queued.clone(),
            claims: claims.clone(),
            floor: floor.clone(),
            writing: Default::default(),
            recorded: Default::default(),
        });
        Ok(Self {
            db,
            log,
            t,
            commit,
            batcher,
            finisher,
            floor,
        })
    }

    /// Writes one small record and flushes it as group commit does (sled's
    /// flush, then the log's `fdatasync`): whether the disk takes writes.
    fn probe(&self) -> Result<(), StoreError> {
        self.db
            .insert("probe", &crate::model::now_ms().to_be_bytes())?;
        commit::flush_and_sync(&self.db, &self.log)?;
        Ok(())
    }
}

impl SledStore {
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
        self.ids.next()
    }

    /// Waits until everything written so far is on disk, sharing the flush
    /// with every other caller waiting at the same time.
    pub async fn durable(&self) -> Result<(), StoreError> {
        let live = self.live()?;
        let result = live.commit.wait().await;
        self.noted(result)
    }

    /// Flushes and stops the group-commit task. Writes after this fail.
    pub async fn close(&self) -> Result<(), StoreError> {
        let live = self.live()?;
        live.batcher.stop().await;
        live.finisher.stop().await;
        live.commit.stop().await;
        live.db.flush_async().await?;
        Ok(())
    }

    /// The version and value of `key` in `plugin`'s kv space.
    pub fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        match self.live()?.t.kv.get(keys::kv(plugin, key))? {
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
        let s = self.writing()?;
        let result = s.t.versions.insert(key, encode(version));
        self.noted(result.map(drop).map_err(Into::into))
    }

    /// A plugin's loaded versions, oldest first.
    pub fn versions(&self, plugin: &str) -> Result<Vec<crate::model::PluginVersion>, StoreError> {
        self.live()?
            .t
            .versions
            .scan_prefix(keys::plugin_prefix(plugin))
            .map(|item| decode("versions", &item?.1))
            .collect()
    }

    /// Keeps a refused body (flushed, like an ingest).
    pub async fn quarantine(&self, record: &crate::model::Quarantined) -> Result<(), StoreError> {
        {
            let s = self.writing()?;
            let result =
                s.t.quarantine
                    .insert(keys::event(record.id), encode(record));
            self.noted(result.map_err(Into::into))?;
        }
        self.durable().await
    }

    /// Quarantined bodies, newest first, older than `before`, at most `limit`.
    pub fn quarantined(
        &self,
        before: Option<ulid::Ulid>,
        limit: usize,
    ) -> Result<Vec<crate::model::Quarantined>, StoreError> {
        let live = self.live()?;
        let range = match before {
            Some(b) => live.t.quarantine.range(..keys::event(b).to_vec()),
            None => live.t.quarantine.range::<Vec<u8>, _>(..),
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
        self.live()?
            .t
            .quarantine
            .get(keys::event(id))?
            .map(|raw| decode("quarantine", &raw))
            .transpose()
    }

    /// Forgets a quarantined body (it was re-ingested).
    pub fn release(&self, id: ulid::Ulid) -> Result<(), StoreError> {
        let s = self.writing()?;
        let result = s.t.quarantine.remove(keys::event(id));
        self.noted(result.map(drop).map_err(Into::into))
    }

    /// See [`Store::purge_quarantine`](crate::Store::purge_quarantine).
    /// Not flushed: a removal lost to a power cut is made again by the next
    /// purge.
    pub fn purge_quarantine(&self, cutoff_ms: u64, max_bytes: u64) -> Result<usize, StoreError> {
        let doomed = {
            let live = self.live()?;
            let mut kept = 0u64;
            let mut doomed = Vec::new();
            for item in live.t.quarantine.iter().rev() {
                let (key, value) = item?;
                let received_at_ms = <[u8; 16]>::try_from(key.as_ref())
                    .map(|k| ulid::Ulid(u128::from_be_bytes(k)).timestamp_ms())
                    .unwrap_or(0);
                if received_at_ms >= cutoff_ms {
                    kept = kept.saturating_add(value.len() as u64);
                    if kept <= max_bytes {
                        continue;
                    }
                }
                doomed.push(key);
            }
            doomed
        };
        let s = self.writing()?;
        for key in &doomed {
            let result = s.t.quarantine.remove(key);
            self.noted(result.map(drop).map_err(Into::into))?;
        }
        Ok(doomed.len())
    }

    /// Bytes the store occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.live()?.db.size_on_disk()?)
    }
}

/// sled's page cache unless configured (`store_cache_mb`). sled's own
/// default, 1 GiB, lets a long-running host's RSS grow with its store
/// (about 2.6 KB per stored event, measured by the `soak` benchmark);
/// events are mostly read back within seconds of being written, and the
/// OS page cache holds the rest.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

#[cfg(test)]
mod tests;
