//! Moving deliveries by hand or at start: replay, retry of a dead one,
//! pause and resume, requeue of expired leases.

use super::rows::{locked_delivery, make_due, put_delivery};
use super::{PgStore, id_bytes, ms, reap};
use crate::StoreError;
use crate::model::{Delivery, DeliveryId, DeliveryStatus, now_ms};
use crate::types::{DueEntry, Route};
use deadpool_postgres::GenericClient;
use std::sync::atomic::Ordering;
use ulid::Ulid;

impl PgStore {
    pub async fn replay(
        &self,
        event: Ulid,
        routes: &[Route],
        pinned_version: Option<&str>,
    ) -> Result<Option<Vec<DeliveryId>>, StoreError> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        // Locking the event orders concurrent replays and keeps a purge out.
        let exists = tx
            .query_opt(
                "SELECT 1 FROM events WHERE id = $1 FOR UPDATE",
                &[&id_bytes(event)],
            )
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let row = tx
            .query_one(
                "SELECT coalesce(max(seq) + 1, 0) FROM deliveries WHERE event = $1",
                &[&id_bytes(event)],
            )
            .await?;
        let next_seq = row.get::<_, i32>(0) as u32;
        let now = now_ms();
        let mut ids = Vec::new();
        for (n, route) in routes.iter().enumerate() {
            let id = DeliveryId {
                event,
                seq: next_seq + n as u32,
            };
            let mut d =
                Delivery::pending(id, &route.plugin, now, pinned_version.map(str::to_owned));
            d.order_key = route.order_key.clone();
            put_delivery(&tx, &d).await?;
            ids.push(id);
        }
        tx.commit().await?;
        self.queued.fetch_add(ids.len() as i64, Ordering::Relaxed);
        Ok(Some(ids))
    }

    pub async fn retry_dead(&self, id: DeliveryId) -> Result<bool, StoreError> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        let Some(mut d) = locked_delivery(&tx, id, "status = 'dead'", &[]).await? else {
            return Ok(false);
        };
        let now = now_ms();
        d.status = DeliveryStatus::Pending;
        d.next_attempt_at_ms = Some(now);
        d.updated_at_ms = now;
        d.attempts_before_retry = d.attempts;
        put_delivery(&tx, &d).await?;
        tx.commit().await?;
        self.queued.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    pub async fn pause(&self, entry: &DueEntry) -> Result<bool, StoreError> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        let at = ms(entry.at_ms);
        let Some(mut d) = locked_delivery(
            &tx,
            entry.delivery,
            "status = 'pending' AND due_ms = $3",
            &[&at],
        )
        .await?
        else {
            return Ok(false);
        };
        d.status = DeliveryStatus::Paused;
        d.next_attempt_at_ms = None;
        d.updated_at_ms = now_ms();
        put_delivery(&tx, &d).await?;
        tx.commit().await?;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        Ok(true)
    }

    pub async fn resume_paused(&self, plugin: &str) -> Result<usize, StoreError> {
        let n = make_due(&self.pool, "status = 'paused' AND plugin = $1", &[&plugin]).await?;
        self.queued.fetch_add(n as i64, Ordering::Relaxed);
        Ok(n)
    }

    /// Makes the deliveries whose leases ran out due again (their host
    /// stopped or died); returns how many. A live host's leases are left
    /// alone.
    pub async fn requeue_running(&self) -> Result<usize, StoreError> {
        reap(&self.pool).await
    }
}
