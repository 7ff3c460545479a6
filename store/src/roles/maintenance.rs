//! Maintenance: retention purges, the quarantine's bounds, size on disk and
//! backups.

use crate::{Backend, BackupSummary, PurgeReport, Store, StoreError};
use ulid::Ulid;

/// Events per retention batch on the embedded store. A batch's removals are
/// one burst of writes, and sled holds a 512 KiB buffer for every log
/// segment until it is written: with 200, each retention pass of a host
/// taking 500 events/s held 5-10 MB more for about a second, and ingest's
/// ack p99 during a purge was 2.0-2.8 times its baseline. With 20 the memory
/// stays flat and that p99 is 1.27 times; the purge removes about 8 500
/// events/s on two cores instead of 20 000 (`docs/performance.md`,
/// *Retention under load*).
pub const EMBEDDED_PURGE_BATCH: usize = 20;

/// Events per retention batch on PostgreSQL: each batch is a query and a
/// transaction, round trips that a larger batch shares.
pub const POSTGRES_PURGE_BATCH: usize = 200;

impl Store {
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

    /// Events a retention batch examines when `[retention] batch` is not
    /// set: [`EMBEDDED_PURGE_BATCH`] on the embedded store,
    /// [`POSTGRES_PURGE_BATCH`] on PostgreSQL.
    pub fn purge_batch(&self) -> usize {
        match &self.backend {
            Backend::Embedded(_) => EMBEDDED_PURGE_BATCH,
            Backend::Postgres(_) => POSTGRES_PURGE_BATCH,
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
}
