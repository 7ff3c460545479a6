//! The durable store: events, deliveries, attempts, kv, and the rest of what
//! the host keeps. The only module that names a database.
//!
//! [`Store`] is the boundary the rest of the host sees: every method is the
//! same whichever backend holds the data, with the same guarantees:
//! - an event, its idempotency key and its deliveries appear together or
//!   not at all, and [`Store::ingest`] returns only once they are durable;
//! - an attempt's record, its delivery's next state and, on success, its kv
//!   writes (checked against the versions it read) and emitted events commit
//!   together or not at all;
//! - a delivery is claimed by one attempt at a time.
//!
//! The backend is `embedded/` (sled, in the data directory: one host).

#[cfg(test)]
mod contract;
mod embedded;
mod postgres;
mod types;

pub use embedded::{BackupSummary, RestoreSummary, restore, verify_backup};
pub use postgres::PgOptions;
#[doc(hidden)]
pub use postgres::testing;
pub use types::{
    Claimed, DeadPage, DueEntry, Effects, Emitted, EventPage, EventQuery, Finish, Ingested, Next,
    Published, PurgeReport, Route,
};

use crate::model::{
    Attempt, Delivery, DeliveryId, EventRecord, NewEvent, PluginVersion, Quarantined,
};
use std::path::Path;
use std::sync::Arc;
use ulid::Ulid;

/// sled's page cache unless configured (`store_cache_mb`).
pub const DEFAULT_CACHE_BYTES: u64 = embedded::DEFAULT_CACHE_BYTES;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {}", embedded::describe(.0))]
    Sled(#[from] ::sled::Error),
    #[error("corrupt record in {tree}: {message}")]
    Corrupt { tree: &'static str, message: String },
    #[error("store is closed")]
    Closed,
    /// A write failed (disk full, read-only, I/O error) and the store has
    /// not recovered yet: nothing can be written.
    #[error("the store cannot write: {0}")]
    Unavailable(String),
    #[error("backup: {0}")]
    Backup(String),
    /// The database refused a statement.
    #[error("database error: {0}")]
    Database(String),
}

/// The host's store.
pub struct Store {
    backend: Backend,
}

enum Backend {
    Embedded(Arc<embedded::SledStore>),
    Postgres(postgres::PgStore),
}

/// An event with its body, and each of its deliveries with their attempts.
pub type EventView = (EventRecord, Vec<u8>, Vec<(Delivery, Vec<Attempt>)>);

impl Store {
    /// Opens (or creates) the embedded store in `dir`. Must be called inside
    /// a tokio runtime: it starts the group-commit task.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// Connects to a PostgreSQL database shared with other hosts, creating
    /// or migrating its schema.
    pub async fn connect(options: &PgOptions) -> Result<Self, StoreError> {
        Ok(Self {
            backend: Backend::Postgres(postgres::PgStore::connect(options).await?),
        })
    }

    /// Whether other hosts may change the store: the dispatcher then looks
    /// for due deliveries every so often, not only when this host wakes it.
    pub fn shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// [`Store::open`] with sled's page cache bounded to `cache_bytes`.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        Ok(Self {
            backend: Backend::Embedded(Arc::new(embedded::SledStore::open_with_cache(
                dir,
                cache_bytes,
            )?)),
        })
    }

    /// Why writes are refused, if they are.
    pub fn failure(&self) -> Option<String> {
        match &self.backend {
            Backend::Embedded(s) => s.failure(),
            Backend::Postgres(p) => p.failure(),
        }
    }

    /// Reopens a failed store from what reached the disk, then makes the
    /// deliveries left running due again.
    pub async fn recover(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.recover().await,
            Backend::Postgres(p) => p.recover().await,
        }
    }

    /// Deliveries pending (due now or later) or running.
    pub fn queue_depth(&self) -> u64 {
        match &self.backend {
            Backend::Embedded(s) => s.queue_depth(),
            Backend::Postgres(p) => p.queue_depth(),
        }
    }

    /// A new id, greater than every id this store made before.
    pub fn new_id(&self) -> Ulid {
        match &self.backend {
            Backend::Embedded(s) => s.new_id(),
            Backend::Postgres(p) => p.new_id(),
        }
    }

    /// Waits until everything written so far is durable.
    pub async fn durable(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.durable().await,
            // Every PostgreSQL commit is durable when it returns.
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Makes everything durable and stops background work. Writes after
    /// this fail.
    pub async fn close(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.close().await,
            Backend::Postgres(p) => p.close().await,
        }
    }

    /// The version and value of `key` in `plugin`'s kv space.
    pub async fn kv_get(
        &self,
        plugin: &str,
        key: &str,
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.kv_get(plugin, key),
            Backend::Postgres(p) => p.kv_get(plugin, key).await,
        }
    }

    /// Appends a loaded version to a plugin's history.
    pub async fn record_version(
        &self,
        plugin: &str,
        version: &PluginVersion,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.record_version(plugin, version),
            Backend::Postgres(p) => p.record_version(plugin, version).await,
        }
    }

    /// Makes `sha256` (whose bytes are `bytes`) the version of `plugin` that
    /// every host sharing the store runs, unless it already is, or (with
    /// `unless_since`) the shared version changed at or after that time.
    /// Returns whether it changed; a store of one host keeps nothing.
    pub async fn publish_plugin(
        &self,
        plugin: &str,
        sha256: &str,
        bytes: &[u8],
        unless_since: Option<u64>,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Embedded(_) => Ok(false),
            Backend::Postgres(p) => p.publish_plugin(plugin, sha256, bytes, unless_since).await,
        }
    }

    /// Marks `plugin` removed for every host sharing the store.
    pub async fn unpublish_plugin(&self, plugin: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Embedded(_) => Ok(false),
            Backend::Postgres(p) => p.unpublish_plugin(plugin).await,
        }
    }

    /// Every plugin's shared current version (none for a store of one host).
    pub async fn published_plugins(&self) -> Result<Vec<Published>, StoreError> {
        match &self.backend {
            Backend::Embedded(_) => Ok(Vec::new()),
            Backend::Postgres(p) => p.published_plugins().await,
        }
    }

    /// The bytes of a published version.
    pub async fn plugin_blob(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.backend {
            Backend::Embedded(_) => Ok(None),
            Backend::Postgres(p) => p.plugin_blob(sha256).await,
        }
    }

    /// A plugin's loaded versions, oldest first.
    pub async fn versions(&self, plugin: &str) -> Result<Vec<PluginVersion>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.versions(plugin),
            Backend::Postgres(p) => p.versions(plugin).await,
        }
    }

    /// Keeps a refused body, durably.
    pub async fn quarantine(&self, record: &Quarantined) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.quarantine(record).await,
            Backend::Postgres(p) => p.quarantine(record).await,
        }
    }

    /// Quarantined bodies, newest first, older than `before`, at most `limit`.
    pub async fn quarantined(
        &self,
        before: Option<Ulid>,
        limit: usize,
    ) -> Result<Vec<Quarantined>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.quarantined(before, limit),
            Backend::Postgres(p) => p.quarantined(before, limit).await,
        }
    }

    /// One quarantined body.
    pub async fn quarantined_one(&self, id: Ulid) -> Result<Option<Quarantined>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.quarantined_one(id),
            Backend::Postgres(p) => p.quarantined_one(id).await,
        }
    }

    /// Forgets a quarantined body (it was re-ingested).
    pub async fn release(&self, id: Ulid) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.release(id),
            Backend::Postgres(p) => p.release(id).await,
        }
    }

    /// Removes the quarantined bodies received before `cutoff_ms`, and the
    /// oldest of the rest past the newest `max_bytes` (counted as stored,
    /// JSON); returns how many it removed.
    pub async fn purge_quarantine(
        &self,
        cutoff_ms: u64,
        max_bytes: u64,
    ) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => {
                let s = s.clone();
                tokio::task::spawn_blocking(move || s.purge_quarantine(cutoff_ms, max_bytes))
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("purge stopped: {e}")))?
            }
            Backend::Postgres(p) => p.purge_quarantine(cutoff_ms, max_bytes).await,
        }
    }

    /// Bytes the store occupies on disk.
    pub async fn size_on_disk(&self) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.size_on_disk(),
            Backend::Postgres(p) => p.size_on_disk().await,
        }
    }

    /// Writes a consistent snapshot of the embedded store to `out`. Blocks:
    /// call it on the blocking pool.
    pub fn backup(&self, out: impl std::io::Write) -> Result<BackupSummary, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.backup(out),
            Backend::Postgres(_) => Err(StoreError::Backup(
                "a PostgreSQL store is backed up with the database's own tools (pg_dump)".into(),
            )),
        }
    }

    /// Removes the finished events received before `cutoff_ms`, examining
    /// at most `limit` events from just after `after` (or the oldest).
    pub async fn purge(
        &self,
        cutoff_ms: u64,
        after: Option<Ulid>,
        limit: usize,
    ) -> Result<PurgeReport, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => {
                let s = s.clone();
                tokio::task::spawn_blocking(move || s.purge(cutoff_ms, after, limit))
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("purge stopped: {e}")))?
            }
            Backend::Postgres(p) => p.purge(cutoff_ms, after, limit).await,
        }
    }

    /// Dead letters, optionally of one plugin, after `after`, at most `limit`.
    pub async fn dead_letters(
        &self,
        plugin: Option<&str>,
        after: Option<DeliveryId>,
        limit: usize,
    ) -> Result<DeadPage, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.dead_letters(plugin, after, limit),
            Backend::Postgres(p) => p.dead_letters(plugin, after, limit).await,
        }
    }

    /// An event's metadata and body.
    pub async fn event(&self, id: Ulid) -> Result<Option<(EventRecord, Vec<u8>)>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.event(id),
            Backend::Postgres(p) => p.event(id).await,
        }
    }

    /// An event with its body, deliveries and their attempts, as of one
    /// moment: no commit lands in the middle of the view.
    pub async fn event_view(&self, id: Ulid) -> Result<Option<EventView>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.event_view(id),
            Backend::Postgres(p) => p.event_view(id).await,
        }
    }

    /// An event's deliveries, in order.
    pub async fn deliveries_of(&self, event: Ulid) -> Result<Vec<Delivery>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.deliveries_of(event),
            Backend::Postgres(p) => p.deliveries_of(event).await,
        }
    }

    /// One delivery.
    pub async fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.delivery(id),
            Backend::Postgres(p) => p.delivery(id).await,
        }
    }

    /// A delivery's attempts, first to last.
    pub async fn attempts_of(&self, delivery: DeliveryId) -> Result<Vec<Attempt>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.attempts_of(delivery),
            Backend::Postgres(p) => p.attempts_of(delivery).await,
        }
    }

    /// Events newest first, filtered and paged.
    pub async fn list_events(&self, query: &EventQuery) -> Result<EventPage, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.list_events(query),
            Backend::Postgres(p) => p.list_events(query).await,
        }
    }

    /// Stores an event and one delivery per route, atomically, and returns
    /// once it is durable.
    pub async fn ingest(&self, event: NewEvent, routes: &[Route]) -> Result<Ingested, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.ingest(event, routes).await,
            Backend::Postgres(p) => p.ingest(event, routes).await,
        }
    }

    /// The last tick fired of a plugin's schedule, if it was ever seen.
    pub async fn schedule_last(&self, plugin: &str, name: &str) -> Result<Option<u64>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.schedule_last(plugin, name),
            Backend::Postgres(p) => p.schedule_last(plugin, name).await,
        }
    }

    /// Starts a schedule seen for the first time at `at`: ticks before it
    /// never fire. A concurrent start's time stands.
    pub async fn schedule_start(
        &self,
        plugin: &str,
        name: &str,
        at: u64,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.schedule_start(plugin, name, at),
            Backend::Postgres(p) => p.schedule_start(plugin, name, at).await,
        }
    }

    /// Stores a schedule's event for `tick` and marks the tick fired, in one
    /// transaction, unless a tick at or after it already fired. Returns
    /// whether it fired, once it is durable.
    pub async fn fire_schedule(
        &self,
        plugin: &str,
        name: &str,
        tick: u64,
        event: NewEvent,
        routes: &[Route],
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.fire_schedule(plugin, name, tick, event, routes).await,
            Backend::Postgres(p) => p.fire_schedule(plugin, name, tick, event, routes).await,
        }
    }

    /// Pending deliveries due at or before `now_ms`, earliest first,
    /// starting after `after` (the last entry of the previous batch).
    pub async fn due(
        &self,
        now_ms: u64,
        after: Option<&DueEntry>,
        limit: usize,
    ) -> Result<Vec<DueEntry>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.due(now_ms, after, limit),
            Backend::Postgres(p) => p.due(now_ms, after, limit).await,
        }
    }

    /// When the first pending delivery due strictly after `now_ms` is due.
    pub async fn next_due_after(&self, now_ms: u64) -> Result<Option<u64>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.next_due_after(now_ms),
            Backend::Postgres(p) => p.next_due_after(now_ms).await,
        }
    }

    /// Whether a due delivery must wait for an earlier one with its ordering
    /// key to end.
    pub async fn blocked(&self, entry: &DueEntry) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.blocked(entry),
            Backend::Postgres(p) => p.blocked(entry).await,
        }
    }

    /// Claims a due delivery for an attempt and returns it with its event,
    /// or `None` if it is no longer due (claimed or changed meanwhile).
    pub async fn claim(&self, entry: &DueEntry) -> Result<Option<Claimed>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.claim(entry),
            Backend::Postgres(p) => p.claim(entry).await,
        }
    }

    /// Claims each of `entries` as [`Store::claim`] does, in order, and
    /// answers each apart: an entry's error leaves the others' claims.
    pub async fn claim_many(
        &self,
        entries: &[DueEntry],
    ) -> Vec<Result<Option<Claimed>, StoreError>> {
        match &self.backend {
            Backend::Embedded(s) => s.claim_many(entries),
            Backend::Postgres(p) => {
                let mut out = Vec::with_capacity(entries.len());
                for entry in entries {
                    out.push(p.claim(entry).await);
                }
                out
            }
        }
    }

    /// Records an attempt and moves its delivery on, committing a successful
    /// attempt's effects in the same transaction.
    pub async fn finish_attempt(
        &self,
        attempt: &Attempt,
        next: Next,
        effects: Option<&Effects>,
    ) -> Result<Finish, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.finish_attempt(attempt, next, effects).await,
            Backend::Postgres(p) => p.finish_attempt(attempt, next, effects).await,
        }
    }

    /// How long a claim holds its delivery: `None` where claims do not
    /// expire.
    pub fn lease(&self) -> Option<std::time::Duration> {
        match &self.backend {
            Backend::Embedded(_) => None,
            Backend::Postgres(p) => Some(p.lease()),
        }
    }

    /// How often a held claim must be renewed: `None` where claims do not
    /// expire (the embedded store holds them in memory).
    pub fn lease_renewal(&self) -> Option<std::time::Duration> {
        self.lease().map(|lease| lease / 3)
    }

    /// Extends this host's claim on `id` (see [`Store::lease_renewal`]);
    /// `false` when it no longer holds it.
    pub async fn renew_lease(&self, id: DeliveryId) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Embedded(_) => Ok(true),
            Backend::Postgres(p) => p.renew_lease(id).await,
        }
    }

    /// Gives back a claim the dispatcher stops running without a result (a
    /// kv conflict that persisted): the delivery is due again at once, on
    /// any host, and no attempt is recorded. `false` when this host no
    /// longer held it.
    pub async fn give_back(&self, id: DeliveryId) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => {
                s.unclaim(id);
                Ok(true)
            }
            Backend::Postgres(p) => p.give_back(id).await,
        }
    }

    /// Gives up the claim of an attempt whose result could not be recorded,
    /// so the delivery can run again: at once on sled; on PostgreSQL when
    /// its lease runs out (a lease is not released early: the result may
    /// still commit on its connection).
    pub fn unclaim(&self, id: DeliveryId) {
        match &self.backend {
            Backend::Embedded(s) => s.unclaim(id),
            Backend::Postgres(_) => {}
        }
    }

    /// Adds a pending delivery of stored event `event` for each route,
    /// optionally pinned to a version; returns their ids, or `None` if there
    /// is no such event.
    pub async fn replay(
        &self,
        event: Ulid,
        routes: &[Route],
        pinned_version: Option<&str>,
    ) -> Result<Option<Vec<DeliveryId>>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.replay(event, routes, pinned_version),
            Backend::Postgres(p) => p.replay(event, routes, pinned_version).await,
        }
    }

    /// Sends a dead letter back to the queue, due now, with the retry
    /// policy's full budget. Returns false if it is not a dead letter.
    pub async fn retry_dead(&self, id: DeliveryId) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.retry_dead(id),
            Backend::Postgres(p) => p.retry_dead(id).await,
        }
    }

    /// Parks a due delivery whose plugin is not loaded.
    pub async fn pause(&self, entry: &DueEntry) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.pause(entry),
            Backend::Postgres(p) => p.pause(entry).await,
        }
    }

    /// Makes every paused delivery of `plugin` due now; returns how many.
    pub async fn resume_paused(&self, plugin: &str) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.resume_paused(plugin),
            Backend::Postgres(p) => p.resume_paused(plugin).await,
        }
    }

    /// Makes the deliveries left running by an unclean stop due again;
    /// returns how many. Call at startup, before any worker runs.
    pub async fn requeue_running(&self) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.requeue_running(),
            Backend::Postgres(p) => p.requeue_running().await,
        }
    }
}
