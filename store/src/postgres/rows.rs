//! Row-level helpers every writer shares: an event and its deliveries, a
//! locked delivery, kv writes under advisory locks, making a delivery due.

use super::{decode, encode, id_bytes, json_text, ms, status_name, ulid_of};
use crate::StoreError;
use crate::model::{Delivery, DeliveryId, DeliveryStatus, EventRecord, now_ms};
use crate::types::Route;
use deadpool_postgres::{GenericClient, Pool, Transaction};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};
use ulid::Ulid;

pub(super) enum Abort {
    Conflict,
    Stale,
}

/// Writes a delivery's record and indexed columns, in any state but
/// running (a claim changes the columns alone), with no lease.
pub(super) async fn put_delivery(tx: &impl GenericClient, d: &Delivery) -> Result<(), StoreError> {
    let st = tx.prepare_cached(PUT_DELIVERY).await?;
    tx.execute(&st, &DeliveryRow::of(d).params()).await?;
    Ok(())
}

/// The statement of [`put_delivery`], with a [`DeliveryRow`]'s parameters.
pub(super) const PUT_DELIVERY: &str =
    "INSERT INTO deliveries (event, seq, plugin, status, due_ms, order_key, record)
     VALUES ($1, $2, $3, $4, $5, $6, $7::text::json)
     ON CONFLICT (event, seq) DO UPDATE SET status = EXCLUDED.status, due_ms = EXCLUDED.due_ms,
         lease_until = NULL, leased_by = NULL, record = EXCLUDED.record";

/// A delivery's parameters for [`PUT_DELIVERY`].
pub(super) struct DeliveryRow<'a> {
    event: Vec<u8>,
    seq: i32,
    plugin: &'a str,
    status: &'static str,
    due: Option<i64>,
    order_key: &'a Option<String>,
    record: String,
}

impl<'a> DeliveryRow<'a> {
    pub fn of(d: &'a Delivery) -> Self {
        let due = match d.status {
            DeliveryStatus::Pending => d.next_attempt_at_ms.map(ms),
            _ => None,
        };
        Self {
            event: id_bytes(d.id.event),
            seq: d.id.seq as i32,
            plugin: &d.plugin,
            status: status_name(d.status),
            due,
            order_key: &d.order_key,
            record: encode(d),
        }
    }

    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.event,
            &self.seq,
            &self.plugin,
            &self.status,
            &self.due,
            self.order_key,
            &self.record,
        ]
    }
}

/// Inserts an event and one pending delivery per route, unless its
/// idempotency key is known: then returns the original id.
pub(super) async fn insert_event(
    tx: &Transaction<'_>,
    record: &EventRecord,
    body: &[u8],
    routes: &[Route],
) -> Result<Option<Ulid>, StoreError> {
    let id = id_bytes(record.id);
    let known = tx
        .prepare_cached("SELECT event FROM idempotency WHERE key = $1")
        .await?;
    // Its key scoped by where it came from, and the bare key older events
    // with the same key were stored under.
    let scoped = record.dedupe_key();
    for key in [record.legacy_dedupe_key(), scoped.as_deref()]
        .into_iter()
        .flatten()
    {
        if let Some(row) = tx.query_opt(&known, &[&key]).await? {
            return Ok(Some(ulid_of(row.get(0))?));
        }
    }
    let st = tx
        .prepare_cached(
            "INSERT INTO events (id, topic, received_ms, record, body, body_json)
             VALUES ($1, $2, $3, $4::text::json, $5, $6::text::jsonb)",
        )
        .await?;
    tx.execute(
        &st,
        &[
            &id,
            &record.topic,
            &ms(record.received_at_ms),
            &encode(record),
            &body,
            &json_text(body),
        ],
    )
    .await?;
    if let Some(key) = &scoped {
        // A concurrent insert of the same key waits here for the other
        // transaction; if that one committed, its event stands and this one
        // is taken back.
        let st = tx
            .prepare_cached(
                "INSERT INTO idempotency (key, event) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .await?;
        if tx.execute(&st, &[key, &id]).await? == 0 {
            tx.execute("DELETE FROM events WHERE id = $1", &[&id])
                .await?;
            let row = tx.query_one(&known, &[key]).await?;
            return Ok(Some(ulid_of(row.get(0))?));
        }
    }
    for (seq, route) in routes.iter().enumerate() {
        let did = DeliveryId {
            event: record.id,
            seq: seq as u32,
        };
        let mut d = Delivery::pending(did, &route.plugin, record.received_at_ms, None);
        d.order_key = route.order_key.clone();
        put_delivery(tx, &d).await?;
    }
    Ok(None)
}

/// A delivery from its row: `record`, `status`, `claimed_ms` from column
/// `at` on. A claim changes only the columns, so they override the record.
pub(super) fn delivery_row(row: &Row, at: usize) -> Result<Delivery, StoreError> {
    let mut d: Delivery = decode("deliveries", row.get(at))?;
    if row.get::<_, &str>(at + 1) == "running" {
        d.status = DeliveryStatus::Running;
        if let Some(claimed) = row.get::<_, Option<i64>>(at + 2) {
            d.updated_at_ms = claimed.max(0) as u64;
        }
    }
    Ok(d)
}

/// The statement of [`locked_delivery`]: `$1` and `$2` are the delivery's
/// event and sequence number, `extra` a further condition.
pub(super) fn locked_delivery_sql(extra: &str) -> String {
    format!(
        "SELECT record::text, status, claimed_ms FROM deliveries WHERE event = $1 AND seq = $2 AND {extra} FOR UPDATE"
    )
}

/// Prepares `sql`'s statements (cached per connection), in order.
pub(super) async fn prepared<const N: usize>(
    tx: &Transaction<'_>,
    sql: [&str; N],
) -> Result<[Statement; N], tokio_postgres::Error> {
    let mut statements = Vec::with_capacity(N);
    for sql in sql {
        statements.push(tx.prepare_cached(sql).await?);
    }
    Ok(statements
        .try_into()
        .unwrap_or_else(|_| unreachable!("one statement per query")))
}

/// The delivery `id`, locked for this transaction, if its status is one of
/// `statuses`.
pub(super) async fn locked_delivery(
    tx: &Transaction<'_>,
    id: DeliveryId,
    extra: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Delivery>, StoreError> {
    let st = tx.prepare_cached(&locked_delivery_sql(extra)).await?;
    let event = id_bytes(id.event);
    let seq = id.seq as i32;
    let mut all: Vec<&(dyn ToSql + Sync)> = vec![&event, &seq];
    all.extend_from_slice(params);
    match tx.query_opt(&st, &all).await? {
        Some(row) => Ok(Some(delivery_row(&row, 0)?)),
        None => Ok(None),
    }
}

pub(super) async fn event_of(
    c: &impl GenericClient,
    id: Ulid,
) -> Result<Option<(EventRecord, Vec<u8>)>, StoreError> {
    let st = c
        .prepare_cached("SELECT record::text, body FROM events WHERE id = $1")
        .await?;
    match c.query_opt(&st, &[&id_bytes(id)]).await? {
        Some(row) => Ok(Some((decode("events", row.get(0))?, row.get(1)))),
        None => Ok(None),
    }
}

pub(super) async fn deliveries_of(
    c: &impl GenericClient,
    event: Ulid,
) -> Result<Vec<Delivery>, StoreError> {
    let st = c
        .prepare_cached(
            "SELECT record::text, status, claimed_ms FROM deliveries WHERE event = $1 ORDER BY seq",
        )
        .await?;
    c.query(&st, &[&id_bytes(event)])
        .await?
        .iter()
        .map(|row: &Row| delivery_row(row, 0))
        .collect()
}

/// Makes the deliveries matching `filter` due now, in one transaction;
/// returns how many.
pub(super) async fn make_due(
    pool: &Pool,
    filter: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<usize, StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let rows = tx
        .query(
            &format!("SELECT record::text FROM deliveries WHERE {filter} FOR UPDATE SKIP LOCKED"),
            params,
        )
        .await?;
    let now = now_ms();
    for row in &rows {
        let mut d: Delivery = decode("deliveries", row.get(0))?;
        d.status = DeliveryStatus::Pending;
        d.next_attempt_at_ms = Some(now);
        d.updated_at_ms = now;
        put_delivery(&tx, &d).await?;
    }
    tx.commit().await?;
    Ok(rows.len())
}
