//! The queue: due deliveries, leased claims, and an attempt's finish under
//! its lease.

use super::batch::FinishJob;
use super::rows::{
    Abort, DeliveryRow, PUT_DELIVERY, delivery_row, insert_event, locked_delivery_sql, prepared,
};
use super::{PgStore, decode, encode, id_bytes, ms, ulid_of};
use crate::StoreError;
use crate::model::{Attempt, DeliveryId, DeliveryStatus, now_ms};
use crate::types::{Claimed, DueEntry, Effects, Finish, Next, record_of};
use deadpool_postgres::{GenericClient, Transaction};
use futures::future::try_join_all;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use tokio::sync::oneshot;
use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;

impl PgStore {
    pub async fn due(
        &self,
        now_ms: u64,
        after: Option<&DueEntry>,
        limit: usize,
    ) -> Result<Vec<DueEntry>, StoreError> {
        let c = self.work.get().await?;
        let (at, event, seq) = match after {
            Some(e) => (
                ms(e.at_ms),
                id_bytes(e.delivery.event),
                e.delivery.seq as i32,
            ),
            None => (-1, Vec::new(), -1),
        };
        let st = c
            .prepare_cached(
                "SELECT due_ms, event, seq, plugin FROM deliveries
                 WHERE status = 'pending' AND due_ms <= $1 AND (due_ms, event, seq) > ($2, $3, $4)
                 ORDER BY due_ms, event, seq LIMIT $5",
            )
            .await?;
        c.query(&st, &[&ms(now_ms), &at, &event, &seq, &(limit as i64)])
            .await?
            .iter()
            .map(|row| {
                Ok(DueEntry {
                    at_ms: row.get::<_, i64>(0).max(0) as u64,
                    delivery: DeliveryId {
                        event: ulid_of(row.get(1))?,
                        seq: row.get::<_, i32>(2) as u32,
                    },
                    plugin: row.get(3),
                })
            })
            .collect()
    }

    pub async fn next_due_after(&self, now_ms: u64) -> Result<Option<u64>, StoreError> {
        let c = self.work.get().await?;
        let st = c
            .prepare_cached(
                "SELECT min(due_ms) FROM deliveries WHERE status = 'pending' AND due_ms > $1",
            )
            .await?;
        let row = c.query_one(&st, &[&ms(now_ms)]).await?;
        Ok(row.get::<_, Option<i64>>(0).map(|v| v.max(0) as u64))
    }

    pub async fn blocked(&self, entry: &DueEntry) -> Result<bool, StoreError> {
        let Some(d) = self.delivery(entry.delivery).await? else {
            return Ok(false);
        };
        let Some(key) = &d.order_key else {
            return Ok(false);
        };
        let c = self.work.get().await?;
        let head = c
            .query_opt(
                "SELECT event, seq FROM deliveries WHERE plugin = $1 AND order_key = $2
                   AND status IN ('pending', 'running', 'paused') ORDER BY event, seq LIMIT 1",
                &[&d.plugin, key],
            )
            .await?;
        Ok(match head {
            Some(row) => {
                let head = DeliveryId {
                    event: ulid_of(row.get(0))?,
                    seq: row.get::<_, i32>(1) as u32,
                };
                head != d.id
            }
            None => false,
        })
    }

    pub async fn claim(&self, entry: &DueEntry) -> Result<Option<Claimed>, StoreError> {
        // One statement, one round trip: the row is taken unless another
        // host holds it (SKIP LOCKED), leased, and returned with its event.
        // The record keeps its pending form; readers apply the columns.
        let c = self.work.get().await?;
        let st = c
            .prepare_cached(
                "WITH claimed AS (
                     UPDATE deliveries SET status = 'running', claimed_ms = $4,
                         lease_until = (extract(epoch from clock_timestamp()) * 1000)::bigint + $5,
                         leased_by = $6
                     WHERE (event, seq) IN (
                         SELECT event, seq FROM deliveries
                         WHERE event = $1 AND seq = $2 AND status = 'pending' AND due_ms = $3
                         FOR UPDATE SKIP LOCKED)
                     RETURNING event, record, status, claimed_ms)
                 SELECT c.record::text, c.status, c.claimed_ms, e.record::text, e.body
                 FROM claimed c JOIN events e ON e.id = c.event",
            )
            .await?;
        let row = c
            .query_opt(
                &st,
                &[
                    &id_bytes(entry.delivery.event),
                    &(entry.delivery.seq as i32),
                    &ms(entry.at_ms),
                    &ms(now_ms()),
                    &ms(self.lease_ms),
                    &self.me,
                ],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Claimed {
            delivery: delivery_row(&row, 0)?,
            event: decode("events", row.get(3))?,
            body: row.get(4),
        }))
    }

    /// Claims each of `entries` as [`PgStore::claim`] does, in one
    /// statement for them all; an entry no longer due answers `None`.
    pub async fn claim_many(
        &self,
        entries: &[DueEntry],
    ) -> Vec<Result<Option<Claimed>, StoreError>> {
        match entries {
            [] => Vec::new(),
            [one] => vec![self.claim(one).await],
            _ => match self.claim_together(entries).await {
                Ok(mut claimed) => entries
                    .iter()
                    .map(|e| Ok(claimed.remove(&e.delivery)))
                    .collect(),
                Err(e) => {
                    let mut out = vec![Err(e)];
                    out.extend(
                        entries[1..]
                            .iter()
                            .map(|_| Err(StoreError::Database("the batch's claim failed".into()))),
                    );
                    out
                }
            },
        }
    }

    async fn claim_together(
        &self,
        entries: &[DueEntry],
    ) -> Result<HashMap<DeliveryId, Claimed>, StoreError> {
        let c = self.work.get().await?;
        let st = c
            .prepare_cached(
                "WITH wanted AS (
                     SELECT * FROM unnest($1::bytea[], $2::int4[], $3::int8[]) AS w(event, seq, due)),
                 claimed AS (
                     UPDATE deliveries SET status = 'running', claimed_ms = $4,
                         lease_until = (extract(epoch from clock_timestamp()) * 1000)::bigint + $5,
                         leased_by = $6
                     WHERE event = ANY($1) AND (event, seq) IN (
                         SELECT d.event, d.seq FROM deliveries d
                         JOIN wanted w ON d.event = w.event AND d.seq = w.seq AND d.due_ms = w.due
                         WHERE d.event = ANY($1) AND d.status = 'pending'
                         ORDER BY d.event, d.seq
                         FOR UPDATE OF d SKIP LOCKED)
                     RETURNING event, record, status, claimed_ms)
                 SELECT c.record::text, c.status, c.claimed_ms, e.record::text, e.body
                 FROM claimed c JOIN events e ON e.id = c.event",
            )
            .await?;
        let events: Vec<Vec<u8>> = entries.iter().map(|e| id_bytes(e.delivery.event)).collect();
        let seqs: Vec<i32> = entries.iter().map(|e| e.delivery.seq as i32).collect();
        let due: Vec<i64> = entries.iter().map(|e| ms(e.at_ms)).collect();
        let rows = c
            .query(
                &st,
                &[
                    &events,
                    &seqs,
                    &due,
                    &ms(now_ms()),
                    &ms(self.lease_ms),
                    &self.me,
                ],
            )
            .await?;
        let mut claimed = HashMap::with_capacity(rows.len());
        for row in rows {
            let delivery = delivery_row(&row, 0)?;
            claimed.insert(
                delivery.id,
                Claimed {
                    delivery,
                    event: decode("events", row.get(3))?,
                    body: row.get(4),
                },
            );
        }
        Ok(claimed)
    }

    pub async fn finish_attempt(
        &self,
        attempt: &Attempt,
        next: Next,
        effects: Option<&Effects>,
    ) -> Result<Finish, StoreError> {
        let effects = effects
            .filter(|e| !(e.reads.is_empty() && e.writes.is_empty() && e.emitted.is_empty()));
        if effects.is_none() {
            // Nothing to conflict: recorded in a batch (`batch.rs`).
            let (done, answer) = oneshot::channel();
            self.batches.finish.submit(FinishJob {
                attempt: attempt.clone(),
                next,
                done,
            })?;
            return answer.await.map_err(|_| StoreError::Closed)?;
        }
        let mut c = self.work.get().await?;
        let tx = c.transaction().await?;
        let result = self.finish_tx(&tx, attempt, next, effects).await;
        match result {
            Ok(added) => {
                tx.commit().await?;
                self.queued.fetch_add(added as i64, Ordering::Relaxed);
                if !matches!(next, Next::RetryAt(_)) {
                    self.queued.fetch_sub(1, Ordering::Relaxed);
                }
                Ok(Finish::Committed)
            }
            Err(Ok(abort)) => {
                tx.rollback().await?;
                Ok(match abort {
                    Abort::Conflict => Finish::Conflict,
                    Abort::Stale => Finish::Stale,
                })
            }
            Err(Err(e)) => Err(e),
        }
    }

    /// The transaction of [`PgStore::finish_attempt`]: how many deliveries
    /// the emitted events added. Its statements go in two round trips, each
    /// a pipeline the database runs in order: first what decides whether the
    /// attempt commits, then its writes. Attempts on a hot key commit one
    /// after another, so each round trip is paid once per attempt on it.
    async fn finish_tx(
        &self,
        tx: &Transaction<'_>,
        attempt: &Attempt,
        next: Next,
        effects: Option<&Effects>,
    ) -> Result<usize, Result<Abort, StoreError>> {
        let db = |e: tokio_postgres::Error| Err(StoreError::from(e));
        let id = attempt.delivery;
        let now = now_ms();
        let plugin = attempt.plugin.as_str();
        let (reads, writes) = effects.map_or((&[][..], &[][..]), |e| {
            (e.reads.as_slice(), e.writes.as_slice())
        });
        let mut keys: Vec<&str> = reads
            .iter()
            .map(|(k, _)| k.as_str())
            .chain(writes.iter().map(|(k, _)| k.as_str()))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        // Prepared first, so that each statement is sent as its future is
        // first polled, in order.
        let [locked, lock, version] = prepared(
            tx,
            [
                &locked_delivery_sql("status = 'running' AND leased_by = $3"),
                "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))",
                "SELECT version FROM kv WHERE plugin = $1 AND key = $2",
            ],
        )
        .await
        .map_err(db)?;
        // Its delivery, locked and still ours (leased to this host); a lock
        // on each kv key it touched, in key order, so that two committers
        // never wait for each other's; then the version of each key it read.
        let (event, seq) = (id_bytes(id.event), id.seq as i32);
        let mut checks: Vec<(&Statement, Vec<&(dyn ToSql + Sync)>)> =
            vec![(&locked, vec![&event, &seq, &self.me])];
        checks.extend(keys.iter().map(|k| (&lock, vec![&plugin as _, k as _])));
        checks.extend(
            reads
                .iter()
                .map(|(k, _)| (&version, vec![&plugin as _, k as _])),
        );
        let answers = try_join_all(checks.iter().map(|(st, p)| tx.query(*st, p.as_slice())))
            .await
            .map_err(db)?;
        let d = match answers[0].first() {
            Some(row) => Some(delivery_row(row, 0).map_err(Err)?),
            None => None,
        };
        let Some(mut d) = d.filter(|d| d.attempts + 1 == attempt.number && d.plugin == plugin)
        else {
            return Err(Ok(Abort::Stale));
        };
        for ((_, seen), rows) in reads.iter().zip(&answers[1 + keys.len()..]) {
            let current = rows.first().map_or(0, |row| row.get::<_, i64>(0) as u64);
            if current != *seen {
                return Err(Ok(Abort::Conflict));
            }
        }
        let mut added = 0;
        for em in effects.map_or(&[][..], |e| e.emitted.as_slice()) {
            let mut record = record_of(self.new_id(), &em.event, now);
            record.emitted_by = Some(id);
            if insert_event(tx, &record, &em.event.body, &em.subscribers)
                .await
                .map_err(Err)?
                .is_none()
            {
                added += em.subscribers.len();
            }
        }
        d.attempts = attempt.number;
        d.last_outcome = Some(attempt.outcome.clone());
        d.updated_at_ms = now;
        d.next_attempt_at_ms = None;
        match next {
            Next::Succeeded => d.status = DeliveryStatus::Succeeded,
            Next::Dead => d.status = DeliveryStatus::Dead,
            Next::RetryAt(at) => {
                d.status = DeliveryStatus::Pending;
                d.next_attempt_at_ms = Some(at);
            }
        }
        let [put, delete, record, delivery] = prepared(
            tx,
            [
                "INSERT INTO kv (plugin, key, version, value) VALUES ($1, $2, nextval('kv_versions'), $3)
                 ON CONFLICT (plugin, key) DO UPDATE SET version = EXCLUDED.version, value = EXCLUDED.value",
                "DELETE FROM kv WHERE plugin = $1 AND key = $2",
                "INSERT INTO attempts (event, seq, number, record) VALUES ($1, $2, $3, $4::text::json)",
                PUT_DELIVERY,
            ],
        )
        .await
        .map_err(db)?;
        // Its kv writes with fresh versions, its record, its delivery's next
        // state.
        let (number, encoded, row) = (attempt.number as i32, encode(attempt), DeliveryRow::of(&d));
        let mut puts: Vec<(&Statement, Vec<&(dyn ToSql + Sync)>)> = writes
            .iter()
            .map(|(key, value)| match value {
                Some(value) => (&put, vec![&plugin as _, key as _, value as _]),
                None => (&delete, vec![&plugin as _, key as _]),
            })
            .collect();
        puts.push((&record, vec![&event, &seq, &number, &encoded]));
        puts.push((&delivery, row.params()));
        try_join_all(puts.iter().map(|(st, p)| tx.execute(*st, p.as_slice())))
            .await
            .map_err(db)?;
        Ok(added)
    }
}
