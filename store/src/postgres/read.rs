//! Queries: events, deliveries, attempts, dead letters.

use super::rows::{deliveries_of, delivery_row, event_of};
use super::{PgStore, SCAN_LIMIT, decode, id_bytes, ms};
use crate::StoreError;
use crate::model::{Attempt, Delivery, DeliveryId, EventRecord, EventStatus};
use crate::types::{DeadPage, EventPage, EventQuery};
use deadpool_postgres::GenericClient;
use ulid::Ulid;

impl PgStore {
    pub async fn dead_letters(
        &self,
        plugin: Option<&str>,
        after: Option<DeliveryId>,
        limit: usize,
    ) -> Result<DeadPage, StoreError> {
        let limit = limit.clamp(1, 1000);
        let c = self.pool.get().await?;
        let (event, seq) = after.map_or((Vec::new(), -1), |d| (id_bytes(d.event), d.seq as i32));
        let rows = c
            .query(
                "SELECT record::text, status, claimed_ms FROM deliveries WHERE status = 'dead' AND (event, seq) > ($1, $2)
                   AND ($3::text IS NULL OR plugin = $3) ORDER BY event, seq LIMIT $4",
                &[&event, &seq, &plugin, &(limit as i64)],
            )
            .await?;
        let deliveries: Vec<Delivery> = rows
            .iter()
            .map(|r| delivery_row(r, 0))
            .collect::<Result<_, _>>()?;
        let next_cursor = if deliveries.len() == limit {
            deliveries.last().map(|d| d.id)
        } else {
            None
        };
        Ok(DeadPage {
            deliveries,
            next_cursor,
        })
    }

    pub async fn event(&self, id: Ulid) -> Result<Option<(EventRecord, Vec<u8>)>, StoreError> {
        let c = self.pool.get().await?;
        event_of(&c, id).await
    }

    pub async fn event_view(&self, id: Ulid) -> Result<Option<crate::EventView>, StoreError> {
        let mut c = self.pool.get().await?;
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let Some((record, body)) = event_of(&tx, id).await? else {
            return Ok(None);
        };
        let deliveries = deliveries_of(&tx, id).await?;
        let attempts = tx
            .query(
                "SELECT seq, record::text FROM attempts WHERE event = $1 ORDER BY seq, number",
                &[&id_bytes(id)],
            )
            .await?;
        let mut shown: Vec<(Delivery, Vec<Attempt>)> =
            deliveries.into_iter().map(|d| (d, Vec::new())).collect();
        for row in attempts {
            let seq: i32 = row.get(0);
            if let Some((_, list)) = shown.iter_mut().find(|(d, _)| d.id.seq as i32 == seq) {
                list.push(decode("attempts", row.get(1))?);
            }
        }
        tx.commit().await?;
        Ok(Some((record, body, shown)))
    }

    pub async fn deliveries_of(&self, event: Ulid) -> Result<Vec<Delivery>, StoreError> {
        let c = self.pool.get().await?;
        deliveries_of(&c, event).await
    }

    pub async fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        let c = self.work.get().await?;
        let st = c
            .prepare_cached(
                "SELECT record::text, status, claimed_ms FROM deliveries WHERE event = $1 AND seq = $2",
            )
            .await?;
        c.query_opt(&st, &[&id_bytes(id.event), &(id.seq as i32)])
            .await?
            .map(|row| delivery_row(&row, 0))
            .transpose()
    }

    pub async fn attempts_of(&self, delivery: DeliveryId) -> Result<Vec<Attempt>, StoreError> {
        let c = self.pool.get().await?;
        c.query(
            "SELECT record::text FROM attempts WHERE event = $1 AND seq = $2 ORDER BY number",
            &[&id_bytes(delivery.event), &(delivery.seq as i32)],
        )
        .await?
        .iter()
        .map(|row| decode("attempts", row.get(0)))
        .collect()
    }

    pub async fn list_events(&self, query: &EventQuery) -> Result<EventPage, StoreError> {
        const CHUNK: i64 = 200;
        let limit = query.limit.clamp(1, 1000);
        let c = self.pool.get().await?;
        let mut before = query.before.map_or_else(|| vec![0xff; 17], id_bytes);
        let since = query.since_ms.map(ms);
        let until = query.until_ms.map(ms);
        let mut events = Vec::new();
        let mut scanned = 0;
        let mut last_seen = None;
        loop {
            let rows = c
                .query(
                    "SELECT id, record::text FROM events e WHERE id < $1
                       AND ($2::bigint IS NULL OR received_ms >= $2)
                       AND ($3::bigint IS NULL OR received_ms <= $3)
                       AND ($4::text IS NULL OR EXISTS
                            (SELECT 1 FROM deliveries d WHERE d.event = e.id AND d.plugin = $4))
                     ORDER BY id DESC LIMIT $5",
                    &[&before, &since, &until, &query.plugin, &CHUNK],
                )
                .await?;
            let exhausted = (rows.len() as i64) < CHUNK;
            let ids: Vec<Vec<u8>> = rows.iter().map(|r| r.get(0)).collect();
            let mut by_event: std::collections::HashMap<Vec<u8>, Vec<Delivery>> =
                std::collections::HashMap::new();
            for row in c
                .query(
                    "SELECT event, record::text, status, claimed_ms FROM deliveries WHERE event = ANY($1) ORDER BY event, seq",
                    &[&ids],
                )
                .await?
            {
                by_event
                    .entry(row.get(0))
                    .or_default()
                    .push(delivery_row(&row, 1)?);
            }
            for row in &rows {
                if events.len() == limit || scanned == SCAN_LIMIT {
                    return Ok(EventPage {
                        events,
                        next_cursor: last_seen,
                    });
                }
                scanned += 1;
                let record: EventRecord = decode("events", row.get(1))?;
                last_seen = Some(record.id);
                if let Some(pattern) = &query.topic
                    && !crate::model::topic_matches(pattern, &record.topic)
                {
                    continue;
                }
                let deliveries = by_event.remove(row.get::<_, &[u8]>(0)).unwrap_or_default();
                if query
                    .status
                    .is_some_and(|s| s != EventStatus::of(&deliveries))
                {
                    continue;
                }
                events.push((record, deliveries));
            }
            if exhausted {
                return Ok(EventPage {
                    events,
                    next_cursor: None,
                });
            }
            if let Some(last) = ids.last() {
                before = last.clone();
            }
        }
    }
}
