//! Retention: what the database holds on disk, and removing what aged out.

use super::{PgStore, id_bytes, ulid_of};
use crate::StoreError;
use crate::types::PurgeReport;
use deadpool_postgres::GenericClient;
use ulid::Ulid;

impl PgStore {
    pub async fn purge_quarantine(
        &self,
        cutoff_ms: u64,
        max_bytes: u64,
    ) -> Result<usize, StoreError> {
        let c = self.pool.get().await?;
        let cutoff = id_bytes(Ulid::from_parts(cutoff_ms, 0));
        let old = c
            .execute("DELETE FROM quarantine WHERE id < $1", &[&cutoff])
            .await?;
        let over = c
            .execute(
                "DELETE FROM quarantine WHERE id IN (
                    SELECT id FROM (
                        SELECT id, sum(octet_length(record::text)) OVER (ORDER BY id DESC) AS kept
                        FROM quarantine
                    ) newest_first WHERE kept > $1)",
                &[&(max_bytes.min(i64::MAX as u64) as i64)],
            )
            .await?;
        Ok((old + over) as usize)
    }

    pub async fn size_on_disk(&self) -> Result<u64, StoreError> {
        let c = self.pool.get().await?;
        let row = c
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    pub async fn purge(
        &self,
        cutoff_ms: u64,
        after: Option<Ulid>,
        limit: usize,
    ) -> Result<PurgeReport, StoreError> {
        let mut c = self.pool.get().await?;
        let end = id_bytes(Ulid::from_parts(cutoff_ms, 0));
        let start = after.map_or_else(Vec::new, id_bytes);
        let rows = c
            .query(
                "SELECT id FROM events WHERE id > $1 AND id < $2 ORDER BY id LIMIT $3",
                &[&start, &end, &(limit as i64)],
            )
            .await?;
        let mut report = PurgeReport {
            examined: rows.len(),
            ..Default::default()
        };
        let ids: Vec<Vec<u8>> = rows.iter().map(|r| r.get(0)).collect();
        for chunk in ids.chunks(50) {
            let tx = c.transaction().await?;
            // Finished: every delivery succeeded. Rows being changed are
            // skipped, not waited for: they are not finished anyway.
            let doomed: Vec<Vec<u8>> = tx
                .query(
                    "SELECT e.id FROM events e WHERE e.id = ANY($1)
                       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event = e.id AND d.status <> 'succeeded')
                     FOR UPDATE SKIP LOCKED",
                    &[&chunk],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let n = tx
                .execute("DELETE FROM events WHERE id = ANY($1)", &[&doomed])
                .await?;
            tx.commit().await?;
            report.purged += n as usize;
        }
        report.resume_after = if rows.len() == limit && limit > 0 {
            ids.last().map(|id| ulid_of(id)).transpose()?
        } else {
            None
        };
        Ok(report)
    }
}
