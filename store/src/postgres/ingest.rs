//! Writes that add events: ingest and schedule ticks.

use super::batch::IngestJob;
use super::rows::insert_event;
use super::{PgStore, ms};
use crate::StoreError;
use crate::model::{NewEvent, now_ms};
use crate::types::{Ingested, Route, record_of};
use deadpool_postgres::GenericClient;
use std::sync::atomic::Ordering;
use tokio::sync::oneshot;

impl PgStore {
    /// Stores an event with its deliveries, in a batch with the ingests
    /// arriving meanwhile (`batch.rs`).
    pub async fn ingest(&self, event: NewEvent, routes: &[Route]) -> Result<Ingested, StoreError> {
        let (done, answer) = oneshot::channel();
        self.batches.ingest.submit(IngestJob {
            record: record_of(self.new_id(), &event, now_ms()),
            body: event.body,
            routes: routes.to_vec(),
            done,
        })?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    pub async fn schedule_last(&self, plugin: &str, name: &str) -> Result<Option<u64>, StoreError> {
        let c = self.pool.get().await?;
        Ok(c.query_opt(
            "SELECT last_ms FROM schedules WHERE plugin = $1 AND name = $2",
            &[&plugin, &name],
        )
        .await?
        .map(|row| row.get::<_, i64>(0).max(0) as u64))
    }

    pub async fn schedule_start(
        &self,
        plugin: &str,
        name: &str,
        at: u64,
    ) -> Result<(), StoreError> {
        let c = self.pool.get().await?;
        c.execute(
            "INSERT INTO schedules (plugin, name, last_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&plugin, &name, &ms(at)],
        )
        .await?;
        Ok(())
    }

    /// Fires once across every host sharing the database: the schedule's
    /// row is updated only if its last tick is older, and the event commits
    /// in the same transaction.
    pub async fn fire_schedule(
        &self,
        plugin: &str,
        name: &str,
        tick: u64,
        event: NewEvent,
        routes: &[Route],
    ) -> Result<bool, StoreError> {
        let record = record_of(self.new_id(), &event, now_ms());
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        let advanced = tx
            .execute(
                "INSERT INTO schedules (plugin, name, last_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (plugin, name) DO UPDATE SET last_ms = EXCLUDED.last_ms
                 WHERE schedules.last_ms < EXCLUDED.last_ms",
                &[&plugin, &name, &ms(tick)],
            )
            .await?;
        if advanced == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let fired = insert_event(&tx, &record, &event.body, routes)
            .await?
            .is_none();
        tx.commit().await?;
        if fired {
            self.queued
                .fetch_add(routes.len() as i64, Ordering::Relaxed);
        }
        Ok(fired)
    }
}
