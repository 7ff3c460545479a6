//! The PostgreSQL store: several hosts share one database.
//!
//! Every change is one transaction with the same grouping as the embedded
//! store's. What differs is who may run a delivery:
//! - a claim takes the delivery's row `FOR UPDATE SKIP LOCKED` (hosts
//!   scanning the same due rows skip each other's instead of queueing) and
//!   leases it to this host until `lease_until`;
//! - an attempt's result commits only while this host still holds the lease
//!   for that attempt (`leased_by` is this host and the delivery has not
//!   recorded the attempt's number yet); otherwise it is `Stale` and nothing
//!   of it is written;
//! - every host reaps expired leases, making their deliveries due again: a
//!   host that dies mid-attempt loses its deliveries to the others once
//!   their leases run out. A lease outlasts any attempt's deadline, so a
//!   live host never loses one it is still running.
//!
//! kv commits take a transaction-scoped advisory lock per key (in key
//! order, so two commits never deadlock), then check the version of every
//! key the attempt read: of two attempts that read the same key, the second
//! to commit sees a new version and reruns (`Conflict`).

mod lease;
mod schema;
pub mod testing;
#[cfg(test)]
mod tests;

use super::StoreError;
use super::types::{
    Claimed, DeadPage, DueEntry, Effects, EventPage, EventQuery, Finish, Ids, Ingested, Next,
    Published, PurgeReport, Route, record_of,
};
use crate::model::{
    Attempt, Delivery, DeliveryId, DeliveryStatus, EventRecord, EventStatus, NewEvent,
    PluginVersion, Quarantined, now_ms,
};
use deadpool_postgres::{GenericClient, Pool, Transaction};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use ulid::Ulid;

/// How the host reaches its database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Connections at most.
    pub pool_size: usize,
    /// How long a claim holds a delivery: longer than any attempt's deadline.
    pub lease: Duration,
}

/// The PostgreSQL store.
pub struct PgStore {
    /// Connections for ingest, reads and the rest.
    pool: Pool,
    /// Connections for the dispatcher and its attempts (due, claim, kv
    /// reads, finish): a flood of ingests never starves the work.
    work: Pool,
    /// This process, in `leased_by`: unique per start, so a restarted host
    /// never mistakes its predecessor's leases for its own.
    me: String,
    lease_ms: u64,
    ids: Ids,
    /// Deliveries pending or running across every host, as last counted.
    queued: Arc<AtomicI64>,
    /// Why the database could not be reached at the last housekeeping
    /// pass, until it can again.
    failure: Arc<std::sync::Mutex<Option<String>>>,
    background: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// How often the queue is counted and expired leases are reaped.
const HOUSEKEEPING: Duration = Duration::from_millis(500);

/// Events examined per page at most, as in the embedded store.
const SCAN_LIMIT: usize = 10_000;

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // No SQLSTATE: the connection failed, not the statement.
        match e.as_db_error() {
            None => StoreError::Unavailable(format!("database: {e}")),
            Some(db) => {
                StoreError::Database(format!("{} (SQLSTATE {})", db.message(), db.code().code()))
            }
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        // No connection to be had, whatever the reason.
        match e {
            deadpool_postgres::PoolError::Backend(e) => match e.as_db_error() {
                Some(db) => StoreError::Unavailable(format!("database: {}", db.message())),
                None => StoreError::Unavailable(format!("database: {e}")),
            },
            other => StoreError::Unavailable(format!("database: {other}")),
        }
    }
}

fn encode<T: Serialize>(value: &T) -> String {
    // Plain structs of strings and numbers: serialising cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

fn decode<T: DeserializeOwned>(table: &'static str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        tree: table,
        message: e.to_string(),
    })
}

fn id_bytes(id: Ulid) -> Vec<u8> {
    id.0.to_be_bytes().to_vec()
}

fn ulid_of(bytes: &[u8]) -> Result<Ulid, StoreError> {
    let arr: [u8; 16] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        tree: "events",
        message: format!("an id of {} bytes", bytes.len()),
    })?;
    Ok(Ulid(u128::from_be_bytes(arr)))
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn status_name(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Running => "running",
        DeliveryStatus::Paused => "paused",
        DeliveryStatus::Succeeded => "succeeded",
        DeliveryStatus::Dead => "dead",
    }
}

/// The body as text for `body_json`, when it is JSON `jsonb` takes.
fn json_text(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    if text.contains("\\u0000") {
        return None;
    }
    serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
    Some(text)
}

/// The database's clock in ms: leases are reckoned by it, so hosts whose
/// clocks disagree still agree on when a lease ran out.
const DB_NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Writes a delivery's record and indexed columns, in any state but
/// running (a claim changes the columns alone), with no lease.
async fn put_delivery(tx: &impl GenericClient, d: &Delivery) -> Result<(), StoreError> {
    let st = tx
        .prepare_cached(
            "INSERT INTO deliveries (event, seq, plugin, status, due_ms, order_key, record)
             VALUES ($1, $2, $3, $4, $5, $6, $7::text::json)
             ON CONFLICT (event, seq) DO UPDATE SET status = EXCLUDED.status, due_ms = EXCLUDED.due_ms,
                 lease_until = NULL, leased_by = NULL, record = EXCLUDED.record",
        )
        .await?;
    let due = match d.status {
        DeliveryStatus::Pending => d.next_attempt_at_ms.map(ms),
        _ => None,
    };
    tx.execute(
        &st,
        &[
            &id_bytes(d.id.event),
            &(d.id.seq as i32),
            &d.plugin,
            &status_name(d.status),
            &due,
            &d.order_key,
            &encode(d),
        ],
    )
    .await?;
    Ok(())
}

/// Inserts an event and one pending delivery per route, unless its
/// idempotency key is known: then returns the original id.
async fn insert_event(
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
fn delivery_row(row: &Row, at: usize) -> Result<Delivery, StoreError> {
    let mut d: Delivery = decode("deliveries", row.get(at))?;
    if row.get::<_, &str>(at + 1) == "running" {
        d.status = DeliveryStatus::Running;
        if let Some(claimed) = row.get::<_, Option<i64>>(at + 2) {
            d.updated_at_ms = claimed.max(0) as u64;
        }
    }
    Ok(d)
}

/// The delivery `id`, locked for this transaction, if its status is one of
/// `statuses`.
async fn locked_delivery(
    tx: &Transaction<'_>,
    id: DeliveryId,
    extra: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Delivery>, StoreError> {
    let sql = format!(
        "SELECT record::text, status, claimed_ms FROM deliveries WHERE event = $1 AND seq = $2 AND {extra} FOR UPDATE"
    );
    let st = tx.prepare_cached(&sql).await?;
    let event = id_bytes(id.event);
    let seq = id.seq as i32;
    let mut all: Vec<&(dyn ToSql + Sync)> = vec![&event, &seq];
    all.extend_from_slice(params);
    match tx.query_opt(&st, &all).await? {
        Some(row) => Ok(Some(delivery_row(&row, 0)?)),
        None => Ok(None),
    }
}

enum Abort {
    Conflict,
    Stale,
}

impl PgStore {
    /// Connects, creates or migrates the schema, and starts housekeeping
    /// (queue count, lease reaping).
    pub async fn connect(options: &PgOptions) -> Result<Self, StoreError> {
        let pg: tokio_postgres::Config = options
            .url
            .parse()
            .map_err(|e| StoreError::Unavailable(format!("bad database URL: {e}")))?;
        let pool = build_pool(&pg, options.pool_size)?;
        let work = build_pool(&pg, options.pool_size)?;
        migrate(&pool).await?;
        let store = Self {
            pool,
            work,
            me: format!("{}", Ulid::new()),
            lease_ms: options.lease.as_millis() as u64,
            ids: Ids::default(),
            queued: Arc::new(AtomicI64::new(0)),
            failure: Arc::new(std::sync::Mutex::new(None)),
            background: std::sync::Mutex::new(None),
        };
        store.count_queue().await?;
        let task = tokio::spawn(housekeeping(
            store.pool.clone(),
            store.queued.clone(),
            store.failure.clone(),
            store.lease_ms,
        ));
        if let Ok(mut bg) = store.background.lock() {
            *bg = Some(task);
        }
        Ok(store)
    }

    async fn count_queue(&self) -> Result<(), StoreError> {
        let n = count_queue(&self.pool).await?;
        self.queued.store(n, Ordering::Relaxed);
        Ok(())
    }

    /// Why the database cannot be reached, if it could not be at the last
    /// look (every half second).
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    /// Whether the database can be reached again: clears the failure if so.
    pub async fn recover(&self) -> Result<(), StoreError> {
        let n = count_queue(&self.pool).await?;
        self.queued.store(n, Ordering::Relaxed);
        if let Ok(mut f) = self.failure.lock() {
            *f = None;
        }
        Ok(())
    }

    pub fn queue_depth(&self) -> u64 {
        self.queued.load(Ordering::Relaxed).max(0) as u64
    }

    pub fn new_id(&self) -> Ulid {
        self.ids.next()
    }

    pub async fn close(&self) -> Result<(), StoreError> {
        let task = self.background.lock().ok().and_then(|mut bg| bg.take());
        if let Some(task) = task {
            task.abort();
        }
        self.pool.close();
        self.work.close();
        Ok(())
    }

    pub async fn kv_get(
        &self,
        plugin: &str,
        key: &str,
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let c = self.work.get().await?;
        let st = c
            .prepare_cached("SELECT version, value FROM kv WHERE plugin = $1 AND key = $2")
            .await?;
        Ok(c.query_opt(&st, &[&plugin, &key])
            .await?
            .map(|row| (row.get::<_, i64>(0) as u64, row.get(1))))
    }

    pub async fn record_version(
        &self,
        plugin: &str,
        version: &PluginVersion,
    ) -> Result<(), StoreError> {
        let c = self.pool.get().await?;
        c.execute(
            "INSERT INTO plugin_versions (plugin, loaded_ms, sha256, record) VALUES ($1, $2, $3, $4::text::json)
             ON CONFLICT DO NOTHING",
            &[&plugin, &ms(version.loaded_at_ms), &version.sha256, &encode(version)],
        )
        .await?;
        Ok(())
    }

    pub async fn versions(&self, plugin: &str) -> Result<Vec<PluginVersion>, StoreError> {
        let c = self.pool.get().await?;
        c.query(
            "SELECT record::text FROM plugin_versions WHERE plugin = $1 ORDER BY loaded_ms, sha256",
            &[&plugin],
        )
        .await?
        .iter()
        .map(|row| decode("plugin_versions", row.get(0)))
        .collect()
    }

    /// Makes `sha256` the current version of `plugin` for every host,
    /// keeping its bytes, unless it already is, or (with `unless_since`) the
    /// current version changed at or after that time. Returns whether it
    /// changed.
    pub async fn publish_plugin(
        &self,
        plugin: &str,
        sha256: &str,
        bytes: &[u8],
        unless_since: Option<u64>,
    ) -> Result<bool, StoreError> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        // Serialises publications of one plugin (the row may not exist yet).
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('plugin'), hashtext($1))",
            &[&plugin],
        )
        .await?;
        let current = tx
            .query_opt(
                "SELECT sha256, changed_ms FROM plugin_current WHERE plugin = $1",
                &[&plugin],
            )
            .await?;
        if let Some(row) = &current {
            let (sha, changed): (Option<String>, i64) = (row.get(0), row.get(1));
            if sha.as_deref() == Some(sha256)
                || unless_since.is_some_and(|since| ms(since) <= changed)
            {
                return Ok(false);
            }
        }
        tx.execute(
            "INSERT INTO plugin_blobs (sha256, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&sha256, &bytes],
        )
        .await?;
        tx.execute(
            "INSERT INTO plugin_current (plugin, sha256, changed_ms, seq)
             VALUES ($1, $2, $3, nextval('plugin_changes'))
             ON CONFLICT (plugin) DO UPDATE SET sha256 = EXCLUDED.sha256,
                 changed_ms = EXCLUDED.changed_ms, seq = EXCLUDED.seq",
            &[&plugin, &sha256, &ms(now_ms())],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Marks `plugin` removed for every host; returns whether it was there.
    pub async fn unpublish_plugin(&self, plugin: &str) -> Result<bool, StoreError> {
        let c = self.pool.get().await?;
        let n = c
            .execute(
                "UPDATE plugin_current SET sha256 = NULL, changed_ms = $2, seq = nextval('plugin_changes')
                 WHERE plugin = $1 AND sha256 IS NOT NULL",
                &[&plugin, &ms(now_ms())],
            )
            .await?;
        Ok(n > 0)
    }

    /// Every plugin's current version.
    pub async fn published_plugins(&self) -> Result<Vec<Published>, StoreError> {
        let c = self.pool.get().await?;
        let st = c
            .prepare_cached(
                "SELECT plugin, sha256, changed_ms, seq FROM plugin_current ORDER BY plugin",
            )
            .await?;
        Ok(c.query(&st, &[])
            .await?
            .iter()
            .map(|row| Published {
                plugin: row.get(0),
                sha256: row.get(1),
                changed_ms: row.get::<_, i64>(2).max(0) as u64,
                seq: row.get::<_, i64>(3).max(0) as u64,
            })
            .collect())
    }

    /// The bytes of a published version.
    pub async fn plugin_blob(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let c = self.pool.get().await?;
        Ok(c.query_opt(
            "SELECT bytes FROM plugin_blobs WHERE sha256 = $1",
            &[&sha256],
        )
        .await?
        .map(|row| row.get(0)))
    }

    pub async fn quarantine(&self, record: &Quarantined) -> Result<(), StoreError> {
        let c = self.pool.get().await?;
        c.execute(
            "INSERT INTO quarantine (id, record) VALUES ($1, $2::text::json) ON CONFLICT DO NOTHING",
            &[&id_bytes(record.id), &encode(record)],
        )
        .await?;
        Ok(())
    }

    pub async fn quarantined(
        &self,
        before: Option<Ulid>,
        limit: usize,
    ) -> Result<Vec<Quarantined>, StoreError> {
        let c = self.pool.get().await?;
        let before = before.map_or_else(|| vec![0xff; 17], id_bytes);
        c.query(
            "SELECT record::text FROM quarantine WHERE id < $1 ORDER BY id DESC LIMIT $2",
            &[&before, &(limit.clamp(1, 1000) as i64)],
        )
        .await?
        .iter()
        .map(|row| decode("quarantine", row.get(0)))
        .collect()
    }

    pub async fn quarantined_one(&self, id: Ulid) -> Result<Option<Quarantined>, StoreError> {
        let c = self.pool.get().await?;
        c.query_opt(
            "SELECT record::text FROM quarantine WHERE id = $1",
            &[&id_bytes(id)],
        )
        .await?
        .map(|row| decode("quarantine", row.get(0)))
        .transpose()
    }

    pub async fn release(&self, id: Ulid) -> Result<(), StoreError> {
        let c = self.pool.get().await?;
        c.execute("DELETE FROM quarantine WHERE id = $1", &[&id_bytes(id)])
            .await?;
        Ok(())
    }

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

    pub async fn event_view(&self, id: Ulid) -> Result<Option<super::EventView>, StoreError> {
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

    pub async fn ingest(&self, event: NewEvent, routes: &[Route]) -> Result<Ingested, StoreError> {
        let record = record_of(self.new_id(), &event, now_ms());
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        let existing = insert_event(&tx, &record, &event.body, routes).await?;
        match existing {
            Some(id) => {
                tx.rollback().await?;
                Ok(Ingested {
                    id,
                    duplicate: true,
                })
            }
            None => {
                tx.commit().await?;
                self.queued
                    .fetch_add(routes.len() as i64, Ordering::Relaxed);
                Ok(Ingested {
                    id: record.id,
                    duplicate: false,
                })
            }
        }
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

    pub async fn finish_attempt(
        &self,
        attempt: &Attempt,
        next: Next,
        effects: Option<&Effects>,
    ) -> Result<Finish, StoreError> {
        let effects = effects
            .filter(|e| !(e.reads.is_empty() && e.writes.is_empty() && e.emitted.is_empty()));
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
    /// the emitted events added.
    async fn finish_tx(
        &self,
        tx: &Transaction<'_>,
        attempt: &Attempt,
        next: Next,
        effects: Option<&Effects>,
    ) -> Result<usize, Result<Abort, StoreError>> {
        let id = attempt.delivery;
        let now = now_ms();
        // Still ours: leased to this host, and this attempt not recorded.
        let d = locked_delivery(tx, id, "status = 'running' AND leased_by = $3", &[&self.me])
            .await
            .map_err(Err)?;
        let Some(mut d) = d.filter(|d| d.attempts + 1 == attempt.number) else {
            return Err(Ok(Abort::Stale));
        };
        let mut added = 0;
        if let Some(effects) = effects {
            apply_kv(tx, &d.plugin, effects).await?;
            for em in &effects.emitted {
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
        }
        let st = tx
            .prepare_cached(
                "INSERT INTO attempts (event, seq, number, record) VALUES ($1, $2, $3, $4::text::json)",
            )
            .await
            .map_err(|e| Err(e.into()))?;
        tx.execute(
            &st,
            &[
                &id_bytes(id.event),
                &(id.seq as i32),
                &(attempt.number as i32),
                &encode(attempt),
            ],
        )
        .await
        .map_err(|e| Err(e.into()))?;
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
        put_delivery(tx, &d).await.map_err(Err)?;
        Ok(added)
    }

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

/// Checks that every key the attempt read is unchanged, then applies its
/// writes with fresh versions, holding a lock on each key it touches.
async fn apply_kv(
    tx: &Transaction<'_>,
    plugin: &str,
    effects: &Effects,
) -> Result<(), Result<Abort, StoreError>> {
    let db = |e: tokio_postgres::Error| Err(StoreError::from(e));
    let mut keys: Vec<&str> = effects
        .reads
        .iter()
        .map(|(k, _)| k.as_str())
        .chain(effects.writes.iter().map(|(k, _)| k.as_str()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let lock = tx
        .prepare_cached("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))")
        .await
        .map_err(db)?;
    for key in &keys {
        tx.execute(&lock, &[&plugin, key]).await.map_err(db)?;
    }
    let get = tx
        .prepare_cached("SELECT version FROM kv WHERE plugin = $1 AND key = $2")
        .await
        .map_err(db)?;
    for (key, seen) in &effects.reads {
        let current = tx
            .query_opt(&get, &[&plugin, key])
            .await
            .map_err(db)?
            .map_or(0, |row| row.get::<_, i64>(0) as u64);
        if current != *seen {
            return Err(Ok(Abort::Conflict));
        }
    }
    let put = tx
        .prepare_cached(
            "INSERT INTO kv (plugin, key, version, value) VALUES ($1, $2, nextval('kv_versions'), $3)
             ON CONFLICT (plugin, key) DO UPDATE SET version = EXCLUDED.version, value = EXCLUDED.value",
        )
        .await
        .map_err(db)?;
    let delete = tx
        .prepare_cached("DELETE FROM kv WHERE plugin = $1 AND key = $2")
        .await
        .map_err(db)?;
    for (key, value) in &effects.writes {
        match value {
            Some(value) => tx.execute(&put, &[&plugin, key, value]).await,
            None => tx.execute(&delete, &[&plugin, key]).await,
        }
        .map_err(db)?;
    }
    Ok(())
}

async fn event_of(
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

async fn deliveries_of(c: &impl GenericClient, event: Ulid) -> Result<Vec<Delivery>, StoreError> {
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
async fn make_due(
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

/// Makes due again every delivery whose lease ran out.
async fn reap(pool: &Pool) -> Result<usize, StoreError> {
    let filter = format!("status = 'running' AND lease_until < {DB_NOW_MS}");
    let n = make_due(pool, &filter, &[]).await?;
    if n > 0 {
        tracing::warn!(
            deliveries = n,
            "requeued deliveries whose host stopped holding their lease"
        );
    }
    Ok(n)
}

async fn count_queue(pool: &Pool) -> Result<i64, StoreError> {
    let c = pool.get().await?;
    let row = c
        .query_one(
            "SELECT count(*) FROM deliveries WHERE status IN ('pending', 'running')",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// Counts the queue (every host's deliveries) and reaps expired leases,
/// until the store closes.
async fn housekeeping(
    pool: Pool,
    queued: Arc<AtomicI64>,
    failure: Arc<std::sync::Mutex<Option<String>>>,
    lease_ms: u64,
) {
    let reap_every = Duration::from_millis((lease_ms / 4).clamp(100, 5_000));
    let mut last_reap = std::time::Instant::now();
    loop {
        tokio::time::sleep(HOUSEKEEPING).await;
        let reason = match count_queue(&pool).await {
            Ok(n) => {
                queued.store(n, Ordering::Relaxed);
                None
            }
            Err(e) => Some(e.to_string()),
        };
        if let Ok(mut f) = failure.lock() {
            match (&*f, &reason) {
                (None, Some(r)) => tracing::error!(error = %r, "the database cannot be reached"),
                (Some(_), None) => tracing::info!("the database can be reached again"),
                _ => {}
            }
            *f = reason;
        }
        if last_reap.elapsed() >= reap_every {
            last_reap = std::time::Instant::now();
            if let Err(e) = reap(&pool).await {
                tracing::warn!(error = %e, "reaping expired leases failed");
            }
        }
    }
}

/// A pool of at most `size` connections.
fn build_pool(pg: &tokio_postgres::Config, size: usize) -> Result<Pool, StoreError> {
    let manager = deadpool_postgres::Manager::from_config(
        pg.clone(),
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(2))
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(10)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Unavailable(format!("database pool: {e}")))
}

/// Applies the migrations this database has not had yet.
async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut c = pool.get().await?;
    c.execute("SELECT pg_advisory_lock($1)", &[&schema::MIGRATION_LOCK])
        .await?;
    let result = async {
        c.batch_execute(
            "CREATE TABLE IF NOT EXISTS hookhost_migrations (
                 version integer PRIMARY KEY,
                 applied_ms bigint NOT NULL
             )",
        )
        .await?;
        let applied: Vec<i32> = c
            .query("SELECT version FROM hookhost_migrations", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if let Some(newer) = applied
            .iter()
            .find(|v| !schema::MIGRATIONS.iter().any(|(m, _)| m == *v))
        {
            return Err(StoreError::Database(format!(
                "the database has schema version {newer}, which this host does not know: run a newer host"
            )));
        }
        for (version, sql) in schema::MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            let tx = c.transaction().await?;
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO hookhost_migrations (version, applied_ms) VALUES ($1, $2)",
                &[version, &ms(now_ms())],
            )
            .await?;
            tx.commit().await?;
            tracing::info!(version, "applied database migration");
        }
        Ok::<_, StoreError>(())
    }
    .await;
    c.execute("SELECT pg_advisory_unlock($1)", &[&schema::MIGRATION_LOCK])
        .await?;
    result
}
