//! The PostgreSQL store: several hosts share one database.
//!
//! Every change is one transaction with the same grouping as the embedded
//! store's, and as there, concurrent ingests and results without effects
//! share transactions (`batch.rs`). What differs is who may run a delivery:
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

mod batch;
mod catalogue;
mod ingest;
mod journal;
mod lease;
mod purge;
mod queue;
mod read;
mod redrive;
mod rows;
mod schema;
pub mod testing;
#[cfg(test)]
mod tests;

use super::StoreError;
use super::types::Ids;
use crate::model::{DeliveryStatus, now_ms};
use deadpool_postgres::{GenericClient, Pool};
use rows::make_due;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
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
    /// Ingests, and results without effects, committed in batches.
    batches: batch::Batches,
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
        let me = format!("{}", Ulid::new());
        let queued = Arc::new(AtomicI64::new(0));
        let batches = batch::Batches::start(batch::Shared {
            pool: pool.clone(),
            work: work.clone(),
            me: me.clone(),
            queued: queued.clone(),
        });
        let store = Self {
            pool,
            work,
            me,
            lease_ms: options.lease.as_millis() as u64,
            ids: Ids::default(),
            queued,
            failure: Arc::new(std::sync::Mutex::new(None)),
            background: std::sync::Mutex::new(None),
            batches,
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
        self.batches.stop().await;
        self.pool.close();
        self.work.close();
        Ok(())
    }
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
