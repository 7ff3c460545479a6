//! Batches: concurrent ingests share one transaction, and so do concurrent
//! results without effects, each a few statements over arrays for the whole
//! batch (`unnest`) instead of several statements per event.
//!
//! The database's work per statement, not per row, is what bounds a host on
//! PostgreSQL: one host ran about ten round trips and three transactions per
//! event, and the database took 57 % of the two cores at 250 events/s
//! handled (`cargo run --release -p hookhost-bench --bin cluster -- --hosts
//! 1`). One task per kind takes everything queued (up to [`MAX_BATCH`]) and
//! commits it together; what arrives meanwhile forms the next batch, so a
//! lone event waits for nothing and a busy host commits many per round trip.
//!
//! What stays apart, and why:
//! - an event with an idempotency key is inserted by
//!   [`insert_event`](super::rows::insert_event), statement by statement, in
//!   the batch's transaction: its key decides whether it is stored at all;
//! - a result with kv access or emitted events commits alone
//!   ([`PgStore::finish_attempt`](super::PgStore::finish_attempt)): its
//!   reads may conflict, and a conflict rolls back only its own
//!   transaction.
//!
//! If a batch's transaction fails, each of its jobs is tried again alone, so
//! one bad event or result cannot fail its neighbours.

use super::rows::{delivery_row, insert_event, put_delivery};
use super::{encode, id_bytes, json_text, ms, status_name};
use crate::StoreError;
use crate::jobs::Queue;
use crate::model::{Attempt, Delivery, DeliveryId, DeliveryStatus, EventRecord, now_ms};
use crate::types::{Finish, Ingested, Next, Route};
use deadpool_postgres::{GenericClient, Pool, Transaction};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// Jobs per transaction at most.
pub const MAX_BATCH: usize = 256;

/// An event to store with a pending delivery per route.
pub struct IngestJob {
    pub record: EventRecord,
    pub body: Vec<u8>,
    pub routes: Vec<Route>,
    pub done: oneshot::Sender<Result<Ingested, StoreError>>,
}

/// An attempt's result without effects, to record under this host's lease.
pub struct FinishJob {
    pub attempt: Attempt,
    pub next: Next,
    pub done: oneshot::Sender<Result<Finish, StoreError>>,
}

/// What the batch tasks work with.
#[derive(Clone)]
pub struct Shared {
    /// Ingest's connections.
    pub pool: Pool,
    /// The dispatcher's connections.
    pub work: Pool,
    /// This host, in `leased_by`.
    pub me: String,
    pub queued: Arc<AtomicI64>,
}

/// The two batch tasks of one store.
pub struct Batches {
    pub ingest: Queue<IngestJob>,
    pub finish: Queue<FinishJob>,
}

impl Batches {
    pub fn start(shared: Shared) -> Self {
        let s = shared.clone();
        Self {
            ingest: Queue::start(|rx| serve(s, rx)),
            finish: Queue::start(|rx| serve(shared, rx)),
        }
    }

    /// Stops both, answering what is queued.
    pub async fn stop(&self) {
        self.ingest.stop().await;
        self.finish.stop().await;
    }
}

/// A kind of job committed in batches.
trait Job: Sized + Send + 'static {
    type Answer: Send;

    /// Writes `jobs` in one transaction; each one's answer, in order.
    fn together(
        s: &Shared,
        jobs: &[Self],
    ) -> impl std::future::Future<Output = Result<Vec<Self::Answer>, StoreError>> + Send;

    /// Counts what a committed answer changed, and sends it.
    fn answer(self, s: &Shared, answer: Result<Self::Answer, StoreError>);
}

/// Takes what is queued, up to [`MAX_BATCH`] jobs, and commits it as one
/// batch, until the queue closes.
async fn serve<J: Job>(s: Shared, mut rx: mpsc::UnboundedReceiver<J>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        crate::jobs::top_up(&mut rx, &mut jobs, MAX_BATCH);
        commit(&s, jobs).await;
    }
}

/// Commits `jobs` together; if that fails, each alone, so that a job the
/// database refuses fails by itself.
async fn commit<J: Job>(s: &Shared, jobs: Vec<J>) {
    match J::together(s, &jobs).await {
        Ok(answers) => {
            for (job, answer) in jobs.into_iter().zip(answers) {
                job.answer(s, Ok(answer));
            }
        }
        Err(e) if jobs.len() == 1 => {
            if let Some(job) = jobs.into_iter().next() {
                job.answer(s, Err(e));
            }
        }
        Err(_) => {
            for job in jobs {
                let answer = J::together(s, std::slice::from_ref(&job)).await;
                job.answer(s, answer.map(|mut a| a.remove(0)));
            }
        }
    }
}

impl Job for IngestJob {
    type Answer = Ingested;

    async fn together(s: &Shared, jobs: &[Self]) -> Result<Vec<Ingested>, StoreError> {
        ingest_together(&s.pool, jobs).await
    }

    fn answer(self, s: &Shared, answer: Result<Ingested, StoreError>) {
        if answer.as_ref().is_ok_and(|a| !a.duplicate) {
            s.queued
                .fetch_add(self.routes.len() as i64, Ordering::Relaxed);
        }
        let _ = self.done.send(answer);
    }
}

/// Stores `jobs` in one transaction; each one's answer, in order.
async fn ingest_together(pool: &Pool, jobs: &[IngestJob]) -> Result<Vec<Ingested>, StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let mut answers = Vec::with_capacity(jobs.len());
    let mut rows = EventArrays::default();
    for job in jobs {
        let keyed = job.record.idempotency_key.is_some();
        let original = if keyed {
            insert_event(&tx, &job.record, &job.body, &job.routes).await?
        } else {
            rows.push(job);
            None
        };
        answers.push(Ingested {
            id: original.unwrap_or(job.record.id),
            duplicate: original.is_some(),
        });
    }
    rows.insert(&tx).await?;
    tx.commit().await?;
    Ok(answers)
}

/// New events and their deliveries, column by column, for one `INSERT` of
/// each.
#[derive(Default)]
struct EventArrays<'a> {
    ids: Vec<Vec<u8>>,
    topics: Vec<&'a str>,
    received: Vec<i64>,
    records: Vec<String>,
    bodies: Vec<&'a [u8]>,
    json: Vec<Option<&'a str>>,
    deliveries: DeliveryArrays<'a>,
}

#[derive(Default)]
struct DeliveryArrays<'a> {
    events: Vec<Vec<u8>>,
    seqs: Vec<i32>,
    plugins: Vec<&'a str>,
    due: Vec<i64>,
    order_keys: Vec<Option<&'a str>>,
    records: Vec<String>,
}

impl<'a> EventArrays<'a> {
    fn push(&mut self, job: &'a IngestJob) {
        let r = &job.record;
        self.ids.push(id_bytes(r.id));
        self.topics.push(&r.topic);
        self.received.push(ms(r.received_at_ms));
        self.records.push(encode(r));
        self.bodies.push(&job.body);
        self.json.push(json_text(&job.body));
        let d = &mut self.deliveries;
        for (seq, route) in job.routes.iter().enumerate() {
            let id = DeliveryId {
                event: r.id,
                seq: seq as u32,
            };
            let mut pending = Delivery::pending(id, &route.plugin, r.received_at_ms, None);
            pending.order_key = route.order_key.clone();
            d.events.push(id_bytes(r.id));
            d.seqs.push(seq as i32);
            d.plugins.push(&route.plugin);
            d.due.push(ms(r.received_at_ms));
            d.order_keys.push(route.order_key.as_deref());
            d.records.push(encode(&pending));
        }
    }

    async fn insert(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let st = tx
            .prepare_cached(
                "INSERT INTO events (id, topic, received_ms, record, body, body_json)
                 SELECT id, topic, received, record::json, body, body_json::jsonb
                 FROM unnest($1::bytea[], $2::text[], $3::int8[], $4::text[], $5::bytea[], $6::text[])
                   AS t(id, topic, received, record, body, body_json)",
            )
            .await?;
        tx.execute(
            &st,
            &[
                &self.ids,
                &self.topics,
                &self.received,
                &self.records,
                &self.bodies,
                &self.json,
            ],
        )
        .await?;
        let d = &self.deliveries;
        if d.events.is_empty() {
            return Ok(());
        }
        let st = tx
            .prepare_cached(
                "INSERT INTO deliveries (event, seq, plugin, status, due_ms, order_key, record)
                 SELECT event, seq, plugin, 'pending', due, order_key, record::json
                 FROM unnest($1::bytea[], $2::int4[], $3::text[], $4::int8[], $5::text[], $6::text[])
                   AS t(event, seq, plugin, due, order_key, record)",
            )
            .await?;
        tx.execute(
            &st,
            &[
                &d.events,
                &d.seqs,
                &d.plugins,
                &d.due,
                &d.order_keys,
                &d.records,
            ],
        )
        .await?;
        Ok(())
    }
}

impl Job for FinishJob {
    type Answer = Finish;

    async fn together(s: &Shared, jobs: &[Self]) -> Result<Vec<Finish>, StoreError> {
        finish_together(s, jobs).await
    }

    fn answer(self, s: &Shared, answer: Result<Finish, StoreError>) {
        if matches!(answer, Ok(Finish::Committed)) && !matches!(self.next, Next::RetryAt(_)) {
            s.queued.fetch_sub(1, Ordering::Relaxed);
        }
        let _ = self.done.send(answer);
    }
}

/// Records `jobs` in one transaction, each only while this host still holds
/// its delivery's lease for that attempt (else `Stale`, nothing written).
async fn finish_together(s: &Shared, jobs: &[FinishJob]) -> Result<Vec<Finish>, StoreError> {
    let mut c = s.work.get().await?;
    let tx = c.transaction().await?;
    let events: Vec<Vec<u8>> = jobs
        .iter()
        .map(|j| id_bytes(j.attempt.delivery.event))
        .collect();
    let seqs: Vec<i32> = jobs.iter().map(|j| j.attempt.delivery.seq as i32).collect();
    // Locked in key order, as every writer of several deliveries does.
    let st = tx
        .prepare_cached(
            "SELECT record::text, status, claimed_ms FROM deliveries
             WHERE event = ANY($1) AND (event, seq) IN (SELECT * FROM unnest($1::bytea[], $2::int4[]))
               AND status = 'running' AND leased_by = $3
             ORDER BY event, seq FOR UPDATE",
        )
        .await?;
    let mut held: HashMap<DeliveryId, Delivery> = HashMap::new();
    for row in tx.query(&st, &[&events, &seqs, &s.me]).await? {
        let d = delivery_row(&row, 0)?;
        held.insert(d.id, d);
    }
    let now = now_ms();
    let mut answers = Vec::with_capacity(jobs.len());
    let mut attempts = AttemptArrays::default();
    let mut moved = Vec::new();
    for job in jobs {
        let a = &job.attempt;
        // Each delivery once: a second result for it in the same batch
        // finds it taken.
        let d = held
            .remove(&a.delivery)
            .filter(|d| d.attempts + 1 == a.number);
        let Some(mut d) = d else {
            answers.push(Finish::Stale);
            continue;
        };
        attempts.push(a);
        d.attempts = a.number;
        d.last_outcome = Some(a.outcome.clone());
        d.updated_at_ms = now;
        d.next_attempt_at_ms = None;
        match job.next {
            Next::Succeeded => d.status = DeliveryStatus::Succeeded,
            Next::Dead => d.status = DeliveryStatus::Dead,
            Next::RetryAt(at) => {
                d.status = DeliveryStatus::Pending;
                d.next_attempt_at_ms = Some(at);
            }
        }
        moved.push(d);
        answers.push(Finish::Committed);
    }
    if !moved.is_empty() {
        attempts.insert(&tx).await?;
        move_deliveries(&tx, &moved).await?;
    }
    tx.commit().await?;
    Ok(answers)
}

#[derive(Default)]
struct AttemptArrays {
    events: Vec<Vec<u8>>,
    seqs: Vec<i32>,
    numbers: Vec<i32>,
    records: Vec<String>,
}

impl AttemptArrays {
    fn push(&mut self, a: &Attempt) {
        self.events.push(id_bytes(a.delivery.event));
        self.seqs.push(a.delivery.seq as i32);
        self.numbers.push(a.number as i32);
        self.records.push(encode(a));
    }

    async fn insert(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let st = tx
            .prepare_cached(
                "INSERT INTO attempts (event, seq, number, record)
                 SELECT event, seq, number, record::json
                 FROM unnest($1::bytea[], $2::int4[], $3::int4[], $4::text[])
                   AS t(event, seq, number, record)",
            )
            .await?;
        tx.execute(
            &st,
            &[&self.events, &self.seqs, &self.numbers, &self.records],
        )
        .await?;
        Ok(())
    }
}

/// Writes locked deliveries' records and columns in one statement, as
/// [`put_delivery`] writes one: no lease, due when pending.
async fn move_deliveries(tx: &Transaction<'_>, moved: &[Delivery]) -> Result<(), StoreError> {
    if let [one] = moved {
        return put_delivery(tx, one).await;
    }
    let events: Vec<Vec<u8>> = moved.iter().map(|d| id_bytes(d.id.event)).collect();
    let seqs: Vec<i32> = moved.iter().map(|d| d.id.seq as i32).collect();
    let statuses: Vec<&str> = moved.iter().map(|d| status_name(d.status)).collect();
    let due: Vec<Option<i64>> = moved
        .iter()
        .map(|d| match d.status {
            DeliveryStatus::Pending => d.next_attempt_at_ms.map(ms),
            _ => None,
        })
        .collect();
    let records: Vec<String> = moved.iter().map(encode).collect();
    let st = tx
        .prepare_cached(
            "UPDATE deliveries AS d SET status = t.status, due_ms = t.due, lease_until = NULL,
                 leased_by = NULL, record = t.record::json
             FROM unnest($1::bytea[], $2::int4[], $3::text[], $4::int8[], $5::text[])
               AS t(event, seq, status, due, record)
             WHERE d.event = ANY($1) AND d.event = t.event AND d.seq = t.seq",
        )
        .await?;
    tx.execute(&st, &[&events, &seqs, &statuses, &due, &records])
        .await?;
    Ok(())
}
