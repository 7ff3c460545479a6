//! The durable store: events, deliveries, attempts, kv, and the rest of what
//! the host keeps. The only crate that names a database (sled or
//! PostgreSQL); the host sees it as `hookhost::store`.
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
//! Two backends keep these guarantees, and `contract.rs` runs one suite of
//! scenarios on both:
//! - `embedded/`: sled, in the data directory, for one host;
//! - `postgres/`: PostgreSQL, shared by several hosts, where a claim is a
//!   lease and a result commits only while its host holds the lease.
//!
//! Each backend is laid out by the same roles: `ingest.rs` (events in),
//! `queue.rs` (due, claim, finish), `redrive.rs` (replay, retry, pause,
//! requeue), `read.rs` (queries) and `purge.rs` (retention).

#[cfg(test)]
mod contract;
mod embedded;
mod jobs;
mod metrics;
mod postgres;
mod roles;
mod types;

pub use embedded::{BackupSummary, RestoreSummary, restore, verify_backup};
pub use postgres::PgOptions;
#[doc(hidden)]
pub use postgres::testing;
pub use roles::maintenance::{EMBEDDED_PURGE_BATCH, POSTGRES_PURGE_BATCH};
pub use types::{
    Claimed, DeadPage, DueEntry, Effects, Emitted, EventPage, EventQuery, Finish, Ingested, Next,
    Published, PurgeReport, Route,
};

use hookhost_model as model;

use crate::model::{Attempt, Delivery, EventRecord};
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
}
