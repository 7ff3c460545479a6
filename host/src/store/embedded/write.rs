//! Every change to the store: ingest, claim, finish, pause, resume, requeue.

use super::super::types::{Claimed, DueEntry, Effects, Finish, Ingested, Next, Route, record_of};
use super::{SledStore, StoreError, decode, encode, event_value, keys};
use crate::model::{Attempt, Delivery, DeliveryId, DeliveryStatus, EventRecord, NewEvent, now_ms};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{IVec, Transactional};
use ulid::Ulid;

pub(super) enum Abort {
    Conflict,
    Stale,
    Corrupt(StoreError),
}

pub(super) type TxResult<T> = Result<T, ConflictableTransactionError<Abort>>;

fn corrupt(e: StoreError) -> ConflictableTransactionError<Abort> {
    ConflictableTransactionError::Abort(Abort::Corrupt(e))
}

/// The trees an event insert touches, inside a transaction.
pub(super) struct EventTx<'a> {
    pub events: &'a TransactionalTree,
    pub idempotency: &'a TransactionalTree,
    pub deliveries: &'a TransactionalTree,
    pub due: &'a TransactionalTree,
    /// Present when some route is ordered.
    pub ordered: Option<&'a TransactionalTree>,
}

/// Adds a new delivery to its key's line in `ordered`, if it has a key.
fn enter_line(ordered: Option<&TransactionalTree>, d: &Delivery) -> TxResult<()> {
    if let Some(key) = &d.order_key {
        ordered_tree(ordered)?.set(keys::ordered(&d.plugin, key, d.id), &[])?;
    }
    Ok(())
}

fn ordered_tree(ordered: Option<&TransactionalTree>) -> TxResult<&TransactionalTree> {
    ordered.ok_or_else(|| {
        corrupt(StoreError::Corrupt {
            tree: "ordered",
            message: "an ordered delivery outside an ordered transaction".into(),
        })
    })
}

/// An event's rows, keyed and encoded before the transaction that writes
/// them: a transaction holds sled's global lock alone, and encoding under it
/// held up every other transaction and read.
pub(super) struct EventRows {
    key: [u8; 16],
    /// The record and the body, as `events` holds them.
    value: IVec,
    /// Its idempotency key, scoped by where it came from.
    idempotency: Option<IVec>,
    /// The bare key older events with the same key were stored under, to
    /// match them too.
    legacy_idempotency: Option<IVec>,
    deliveries: Vec<DeliveryRows>,
}

/// A new pending delivery's rows.
struct DeliveryRows {
    key: [u8; 20],
    value: IVec,
    due: [u8; 28],
    plugin: IVec,
    /// Its entry in its key's line, if it has an ordering key.
    ordered: Option<Vec<u8>>,
}

impl EventRows {
    /// The event, its body, and one pending delivery per route.
    pub fn new(record: &EventRecord, body: &[u8], routes: &[Route]) -> Self {
        let deliveries = routes
            .iter()
            .enumerate()
            .map(|(seq, route)| {
                let id = DeliveryId {
                    event: record.id,
                    seq: seq as u32,
                };
                let mut d = Delivery::pending(id, &route.plugin, record.received_at_ms, None);
                d.order_key = route.order_key.clone();
                DeliveryRows {
                    key: keys::delivery(id),
                    value: encode(&d).into(),
                    due: keys::due(record.received_at_ms, id),
                    plugin: route.plugin.as_bytes().into(),
                    ordered: route
                        .order_key
                        .as_ref()
                        .map(|k| keys::ordered(&route.plugin, k, id)),
                }
            })
            .collect();
        Self {
            key: keys::event(record.id),
            value: event_value(record, body).into(),
            idempotency: record.dedupe_key().map(|k| k.as_bytes().into()),
            legacy_idempotency: record.legacy_dedupe_key().map(|k| k.as_bytes().into()),
            deliveries,
        }
    }

    /// Deliveries the event adds.
    pub fn deliveries(&self) -> usize {
        self.deliveries.len()
    }

    /// The lowest `due` key the event adds, if any.
    pub fn first_due(&self) -> Option<[u8; 28]> {
        self.deliveries.first().map(|d| d.due)
    }
}

impl EventTx<'_> {
    /// Inserts an event and one pending delivery per subscriber, unless its
    /// idempotency key is known: then returns the original id.
    pub(super) fn insert(&self, rows: &EventRows) -> TxResult<Option<Ulid>> {
        if let Some(key) = &rows.idempotency {
            let legacy = match &rows.legacy_idempotency {
                Some(bare) => self.idempotency.get(bare)?,
                None => None,
            };
            if let Some(existing) = legacy.or(self.idempotency.get(key)?) {
                let id = keys::parse_event(&existing).ok_or_else(|| {
                    corrupt(StoreError::Corrupt {
                        tree: "idempotency",
                        message: "bad event id".into(),
                    })
                })?;
                return Ok(Some(id));
            }
            self.idempotency.set(key.clone(), &rows.key)?;
        }
        self.events.set(&rows.key, rows.value.clone())?;
        for d in &rows.deliveries {
            self.deliveries.set(&d.key, d.value.clone())?;
            self.due.set(&d.due, d.plugin.clone())?;
            if let Some(line) = &d.ordered {
                ordered_tree(self.ordered)?.set(line.as_slice(), &[])?;
            }
        }
        Ok(None)
    }
}

/// The trees an attempt's outcome touches, inside a transaction.
pub(super) struct MoveTx<'a> {
    pub deliveries: &'a TransactionalTree,
    pub due: &'a TransactionalTree,
    pub dead: &'a TransactionalTree,
    pub attempts: &'a TransactionalTree,
    /// Present when the delivery is ordered.
    pub ordered: Option<&'a TransactionalTree>,
}

impl MoveTx<'_> {
    /// The delivery claimed from its `due` entry at `due_at`, if that entry
    /// is still there; else the transaction aborts.
    pub(super) fn claimed_delivery(&self, id: DeliveryId, due_at: u64) -> TxResult<Delivery> {
        if self.due.get(keys::due(due_at, id))?.is_none() {
            return Err(ConflictableTransactionError::Abort(Abort::Stale));
        }
        match get_delivery(self.deliveries, id)? {
            Some(d) if d.status == DeliveryStatus::Pending => Ok(d),
            _ => Err(ConflictableTransactionError::Abort(Abort::Stale)),
        }
    }

    /// Stores the attempt (`encoded`: the attempt, encoded before the
    /// transaction) and moves the delivery from its `due` entry at `due_at`
    /// to its next state.
    pub(super) fn record(
        &self,
        mut d: Delivery,
        due_at: u64,
        (attempt, encoded): (&Attempt, &IVec),
        next: Next,
        now: u64,
    ) -> TxResult<()> {
        let id = d.id;
        self.attempts
            .set(&keys::attempt(id, attempt.number), encoded.clone())?;
        self.due.delete(&keys::due(due_at, id))?;
        d.attempts = attempt.number;
        d.last_outcome = Some(attempt.outcome.clone());
        d.updated_at_ms = now;
        d.next_attempt_at_ms = None;
        if !matches!(next, Next::RetryAt(_)) {
            // It ended: the next delivery with its key may run.
            if let (Some(key), Some(ordered)) = (&d.order_key, self.ordered) {
                ordered.delete(keys::ordered(&d.plugin, key, id))?;
            }
        }
        match next {
            Next::Succeeded => d.status = DeliveryStatus::Succeeded,
            Next::Dead => {
                d.status = DeliveryStatus::Dead;
                self.dead.set(&keys::delivery(id), &[])?;
            }
            Next::RetryAt(at) => {
                d.status = DeliveryStatus::Pending;
                d.next_attempt_at_ms = Some(at);
                self.due.set(&keys::due(at, id), d.plugin.as_bytes())?;
            }
        }
        self.deliveries.set(&keys::delivery(id), encode(&d))?;
        Ok(())
    }
}

/// Checks that every key the attempt read is unchanged, then applies its
/// writes, each with a fresh version.
fn apply_kv(kv: &TransactionalTree, plugin: &str, effects: &Effects) -> TxResult<()> {
    for (key, seen) in &effects.reads {
        let current = kv
            .get(keys::kv(plugin, key))?
            .and_then(|raw| keys::parse_kv_value(&raw).map(|(v, _)| v))
            .unwrap_or(0);
        if current != *seen {
            return Err(ConflictableTransactionError::Abort(Abort::Conflict));
        }
    }
    for (key, value) in &effects.writes {
        match value {
            Some(value) => {
                let version = kv.generate_id()? + 1;
                kv.insert(keys::kv(plugin, key), keys::kv_value(version, value))?;
            }
            None => {
                kv.remove(keys::kv(plugin, key))?;
            }
        }
    }
    Ok(())
}

fn get_delivery(tree: &TransactionalTree, id: DeliveryId) -> TxResult<Option<Delivery>> {
    match tree.get(keys::delivery(id))? {
        None => Ok(None),
        Some(raw) => decode("deliveries", &raw).map(Some).map_err(corrupt),
    }
}

pub(super) fn finish_tx<T>(
    result: Result<T, TransactionError<Abort>>,
) -> Result<Result<T, Abort>, StoreError> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(TransactionError::Storage(e)) => Err(e.into()),
        Err(TransactionError::Abort(Abort::Corrupt(e))) => Err(e),
        Err(TransactionError::Abort(other)) => Ok(Err(other)),
    }
}

impl SledStore {
    /// Stores an event and one delivery per subscribed plugin, atomically,
    /// and returns once it is on disk.
    pub async fn ingest(&self, event: NewEvent, routes: &[Route]) -> Result<Ingested, StoreError> {
        let record = record_of(self.new_id(), &event, now_ms());
        let id = record.id;
        let (done, answer) = tokio::sync::oneshot::channel();
        if let Some(reason) = self.failure() {
            return Err(StoreError::Unavailable(reason));
        }
        let rows = EventRows::new(&record, &event.body, routes);
        self.live()?
            .batcher
            .submit(super::batch::Job { rows, done })?;
        // Answered once on disk; a duplicate waits too, as the original may
        // not be on disk yet. The batch counted its deliveries.
        let existing = answer.await.map_err(|_| StoreError::Closed)??;
        Ok(match existing {
            Some(id) => Ingested {
                id,
                duplicate: true,
            },
            None => Ingested {
                id,
                duplicate: false,
            },
        })
    }

    /// The last tick fired of a plugin's schedule, if it was ever seen.
    pub fn schedule_last(&self, plugin: &str, name: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .live()?
            .t
            .schedules
            .get(keys::kv(plugin, name))?
            .and_then(|v| Some(u64::from_be_bytes(v.as_ref().try_into().ok()?))))
    }

    /// Starts a schedule seen for the first time at `at`: ticks before it
    /// never fire.
    pub fn schedule_start(&self, plugin: &str, name: &str, at: u64) -> Result<(), StoreError> {
        // Lost to a concurrent start: that one's time stands.
        let s = self.writing()?;
        let result = s.t.schedules.compare_and_swap(
            keys::kv(plugin, name),
            None::<&[u8]>,
            Some(&at.to_be_bytes()),
        );
        self.noted(result.map(drop).map_err(Into::into))
    }

    /// Stores a schedule's event for `tick` and marks the tick fired, in one
    /// transaction, unless a tick at or after it already fired. Returns
    /// whether it fired; returns once it is on disk.
    pub async fn fire_schedule(
        &self,
        plugin: &str,
        name: &str,
        tick: u64,
        event: NewEvent,
        routes: &[Route],
    ) -> Result<bool, StoreError> {
        let record = record_of(self.new_id(), &event, now_ms());
        let fired = self.fire_schedule_tx(plugin, name, tick, &record, &event, routes)?;
        self.durable().await?;
        Ok(fired)
    }

    /// The transaction of [`SledStore::fire_schedule`].
    fn fire_schedule_tx(
        &self,
        plugin: &str,
        name: &str,
        tick: u64,
        record: &EventRecord,
        event: &NewEvent,
        routes: &[Route],
    ) -> Result<bool, StoreError> {
        let s = self.writing()?;
        let t = &s.t;
        let key = keys::kv(plugin, name);
        let rows = EventRows::new(record, &event.body, routes);
        let trees = (
            &t.events,
            &t.idempotency,
            &t.deliveries,
            &t.due,
            &t.ordered,
            &t.schedules,
        );
        let result = trees.transaction(
            |(events, idempotency, deliveries, due, ordered, schedules)| {
                let last = schedules
                    .get(&key)?
                    .and_then(|v| Some(u64::from_be_bytes(v.as_ref().try_into().ok()?)));
                if last.is_some_and(|last| last >= tick) {
                    return Ok(false);
                }
                schedules.insert(key.as_slice(), &tick.to_be_bytes())?;
                let existing = EventTx {
                    events,
                    idempotency,
                    deliveries,
                    due,
                    ordered: Some(ordered),
                }
                .insert(&rows)?;
                Ok(existing.is_none())
            },
        );
        let fired = self
            .noted(finish_tx(result))?
            .map_err(|_| StoreError::Closed)?;
        if fired {
            if let Some(first) = rows.first_due() {
                s.floor.lower(first);
            }
            self.queued_add(routes.len());
        }
        Ok(fired)
    }

    /// Pending deliveries due at or before `now_ms`, earliest first,
    /// starting after `after` (the last entry of the previous batch),
    /// leaving out those claimed. A first batch (`after` is `None`) starts
    /// at the scan floor (`floor.rs`), below which every entry is claimed,
    /// and moves the floor up past the claimed entries it meets.
    pub fn due(
        &self,
        now_ms: u64,
        after: Option<&DueEntry>,
        limit: usize,
    ) -> Result<Vec<DueEntry>, StoreError> {
        let live = self.live()?;
        // One hold of sled's lock for the whole scan, not one per entry: a
        // transaction holds it alone, and under load each step of the scan
        // would wait for one.
        let _together = sled::read_together();
        let end = keys::due(
            now_ms,
            DeliveryId {
                event: Ulid(u128::MAX),
                seq: u32::MAX,
            },
        );
        let scan = after.is_none().then(|| live.floor.scan());
        let start = match (after, scan.as_ref().and_then(|s| s.from)) {
            (Some(e), _) => std::ops::Bound::Excluded(keys::due(e.at_ms, e.delivery)),
            (None, Some(floor)) => std::ops::Bound::Included(floor),
            (None, None) => std::ops::Bound::Unbounded,
        };
        let mut out = Vec::new();
        // The first unclaimed entry met, else the last claimed one; and the
        // unclaimed entries returned.
        let mut floor: Option<super::floor::DueKey> = None;
        let mut run = Vec::new();
        for item in live.t.due.range((start, std::ops::Bound::Included(end))) {
            if out.len() == limit {
                break;
            }
            let (k, v) = item?;
            let (at_ms, delivery) = keys::parse_due(&k).ok_or(StoreError::Corrupt {
                tree: "due",
                message: "bad key".into(),
            })?;
            let key = keys::due(at_ms, delivery);
            if out.is_empty() {
                floor = Some(key);
            }
            if self.claims().contains_key(&delivery) {
                continue;
            }
            if scan.is_some() {
                run.push(key);
            }
            out.push(DueEntry {
                at_ms,
                delivery,
                plugin: String::from_utf8_lossy(&v).into_owned(),
            });
        }
        if let (Some(scan), Some(floor)) = (scan, floor) {
            live.floor.raise(&scan, floor, run);
        }
        Ok(out)
    }

    /// When the first pending delivery due strictly after `now_ms` is due.
    pub fn next_due_after(&self, now_ms: u64) -> Result<Option<u64>, StoreError> {
        let start = keys::due(
            now_ms.saturating_add(1),
            DeliveryId {
                event: Ulid(0),
                seq: 0,
            },
        );
        match self.live()?.t.due.range(start..).next() {
            None => Ok(None),
            Some(item) => Ok(keys::parse_due(&item?.0).map(|(at, _)| at)),
        }
    }

    /// Whether a due delivery must wait for an earlier one with its ordering
    /// key to end.
    pub fn blocked(&self, entry: &DueEntry) -> Result<bool, StoreError> {
        let Some(d) = self.delivery(entry.delivery)? else {
            return Ok(false);
        };
        let Some(key) = &d.order_key else {
            return Ok(false);
        };
        let prefix = keys::ordered_prefix(&d.plugin, key);
        let first = self
            .live()?
            .t
            .ordered
            .scan_prefix(&prefix)
            .keys()
            .next()
            .transpose()?;
        Ok(first
            .and_then(|k| keys::parse_delivery(&k[prefix.len()..]))
            .is_some_and(|head| head != d.id))
    }

    /// Claims a due delivery for an attempt and returns it with its event,
    /// or `None` if it is no longer due (claimed or changed meanwhile). The
    /// claim is kept in memory only (see the module's invariants): nothing is
    /// written until the attempt's record.
    pub fn claim(&self, entry: &DueEntry) -> Result<Option<Claimed>, StoreError> {
        if let Some(reason) = self.failure() {
            return Err(StoreError::Unavailable(reason));
        }
        let live = self.live()?;
        let _together = sled::read_together(); // one wait for its reads (see `due`)
        let id = entry.delivery;
        // The claims are never held while sled is called: a sled transaction
        // holds a global lock that every read waits for, and readers look
        // the claims up. Only the dispatcher claims, and a due entry leaves
        // `due` only by its claim's record or the dispatcher's own pause, so
        // what is read here still holds when the claim is taken.
        if self.claims().contains_key(&id) || live.t.due.get(keys::due(entry.at_ms, id))?.is_none()
        {
            return Ok(None);
        }
        let Some(raw) = live.t.deliveries.get(keys::delivery(id))? else {
            return Ok(None);
        };
        let mut delivery: Delivery = decode("deliveries", &raw)?;
        if delivery.status != DeliveryStatus::Pending {
            return Ok(None);
        }
        {
            let mut claims = self.claims();
            if claims.contains_key(&id) {
                return Ok(None);
            }
            claims.insert(id, entry.at_ms);
        }
        live.floor.claimed(keys::due(entry.at_ms, id));
        delivery.status = DeliveryStatus::Running;
        delivery.updated_at_ms = now_ms();
        let event = match self.event(id.event) {
            Ok(Some(found)) => Ok(found),
            Ok(None) => Err(StoreError::Corrupt {
                tree: "events",
                message: format!("delivery {id} has no event"),
            }),
            Err(e) => Err(e),
        };
        match event {
            Ok((event, body)) => Ok(Some(Claimed {
                delivery,
                event,
                body,
            })),
            Err(e) => {
                self.unclaim(id);
                Err(e)
            }
        }
    }

    /// Claims each of `entries` in order, as `claim` does, with sled's lock
    /// held once for all their reads (see `due`).
    pub fn claim_many(&self, entries: &[DueEntry]) -> Vec<Result<Option<Claimed>, StoreError>> {
        let _together = sled::read_together();
        entries.iter().map(|e| self.claim(e)).collect()
    }

    /// Gives up the claim of an attempt whose result could not be recorded:
    /// its delivery is due again.
    pub fn unclaim(&self, id: DeliveryId) {
        let due_at = self.claims().remove(&id);
        // Once the claim is gone: the next scan must reach its entry.
        if let (Some(at), Ok(live)) = (due_at, self.live()) {
            live.floor.lower_to(at, id);
        }
    }

    /// Drops the claim of an attempt whose record removed its `due` entry:
    /// nothing is left for a scan to reach, so the floor stays.
    fn drop_claim(&self, id: DeliveryId) {
        self.claims().remove(&id);
    }

    /// Records an attempt and moves its delivery on, committing a successful
    /// attempt's effects in the same transaction. A result without effects
    /// is recorded in a batch with others (see `finish.rs`).
    pub async fn finish_attempt(
        &self,
        attempt: &Attempt,
        next: Next,
        effects: Option<&Effects>,
    ) -> Result<Finish, StoreError> {
        let id = attempt.delivery;
        // Only the attempt holding the claim may record a result. The other
        // claims are the attempts still running.
        let (claim, running) = {
            let claims = self.claims();
            (claims.get(&id).copied(), claims.len())
        };
        let Some(due_at) = claim else {
            return Ok(Finish::Stale);
        };
        let effects = effects
            .filter(|e| !(e.reads.is_empty() && e.writes.is_empty() && e.emitted.is_empty()));
        let Some(effects) = effects else {
            if let Some(reason) = self.failure() {
                return Err(StoreError::Unavailable(reason));
            }
            let live = self.live()?;
            // A lone attempt is recorded at once. With others running, it
            // joins their batch: every sled transaction costs two log
            // writes, each synced, whatever its size.
            if running == 1
                && let Some(result) = live.finisher.record_alone(attempt, next, due_at)
            {
                return result;
            }
            let (done, answer) = tokio::sync::oneshot::channel();
            live.finisher.submit(super::finish::Job {
                encoded: encode(attempt).into(),
                attempt: attempt.clone(),
                next,
                due_at,
                done,
            })?;
            return answer.await.map_err(|_| StoreError::Closed)?;
        };
        self.finish_with_effects(attempt, next, effects, due_at)
    }

    /// [`SledStore::finish_attempt`] of a result with effects, in its own
    /// transaction: its kv reads may conflict.
    fn finish_with_effects(
        &self,
        attempt: &Attempt,
        next: Next,
        effects: &Effects,
        due_at: u64,
    ) -> Result<Finish, StoreError> {
        let id = attempt.delivery;
        let s = self.writing()?;
        let t = &s.t;
        let now = now_ms();
        let encoded: IVec = encode(attempt).into();
        let emitted_rows: Vec<EventRows> = effects
            .emitted
            .iter()
            .map(|em| {
                let mut record = record_of(self.new_id(), &em.event, now);
                record.emitted_by = Some(id);
                EventRows::new(&record, &em.event.body, &em.subscribers)
            })
            .collect();
        let result = {
            let trees = (
                &t.deliveries,
                &t.due,
                &t.dead,
                &t.attempts,
                &t.kv,
                &t.events,
                &t.idempotency,
                &t.ordered,
            );
            trees.transaction(
                |(deliveries, due, dead, attempts, kv, events, idempotency, ordered)| {
                    let moves = MoveTx {
                        deliveries,
                        due,
                        dead,
                        attempts,
                        ordered: Some(ordered),
                    };
                    let d = moves.claimed_delivery(id, due_at)?;
                    apply_kv(kv, &d.plugin, effects)?;
                    let tx = EventTx {
                        events,
                        idempotency,
                        deliveries,
                        due,
                        ordered: Some(ordered),
                    };
                    let mut added = 0;
                    for rows in &emitted_rows {
                        if tx.insert(rows)?.is_none() {
                            added += rows.deliveries();
                        }
                    }
                    moves.record(d, due_at, (attempt, &encoded), next, now)?;
                    Ok(added)
                },
            )
        };
        Ok(match self.noted(finish_tx(result))? {
            Ok(added) => {
                self.drop_claim(id);
                if let Ok(live) = self.live() {
                    if let Next::RetryAt(at) = next {
                        live.floor.lower_to(at, id);
                    }
                    if let Some(first) = emitted_rows.iter().filter_map(EventRows::first_due).min()
                    {
                        live.floor.lower(first);
                    }
                }
                self.queued_add(added);
                if !matches!(next, Next::RetryAt(_)) {
                    self.queued_sub(1);
                }
                Finish::Committed
            }
            // The claim holds: the attempt runs again.
            Err(Abort::Conflict) => Finish::Conflict,
            Err(_) => {
                self.unclaim(id);
                Finish::Stale
            }
        })
    }

    /// Adds a pending delivery of stored event `event` to each plugin in
    /// `plugins`, optionally pinned to a version; returns their ids, or
    /// `None` if there is no such event.
    pub fn replay(
        &self,
        event: Ulid,
        routes: &[Route],
        pinned_version: Option<&str>,
    ) -> Result<Option<Vec<DeliveryId>>, StoreError> {
        let s = self.writing()?;
        let t = &s.t;
        loop {
            let next_seq = t
                .deliveries
                .scan_prefix(keys::event(event))
                .keys()
                .next_back()
                .transpose()?
                .and_then(|k| keys::parse_delivery(&k))
                .map_or(0, |d| d.seq + 1);
            let now = now_ms();
            let result = (&t.events, &t.deliveries, &t.due, &t.ordered).transaction(
                |(events, deliveries, due, ordered)| {
                    // Checked inside: a purge may remove the event meanwhile.
                    if events.get(keys::event(event))?.is_none() {
                        return Ok(None);
                    }
                    let mut ids = Vec::new();
                    for (n, route) in routes.iter().enumerate() {
                        let id = DeliveryId {
                            event,
                            seq: next_seq + n as u32,
                        };
                        // A concurrent replay took this number: start over.
                        if deliveries.get(keys::delivery(id))?.is_some() {
                            return Err(ConflictableTransactionError::Abort(Abort::Conflict));
                        }
                        let mut d = Delivery::pending(
                            id,
                            &route.plugin,
                            now,
                            pinned_version.map(str::to_owned),
                        );
                        d.order_key = route.order_key.clone();
                        deliveries.insert(&keys::delivery(id), encode(&d))?;
                        due.insert(&keys::due(now, id), route.plugin.as_bytes())?;
                        enter_line(Some(ordered), &d)?;
                        ids.push(id);
                    }
                    Ok(Some(ids))
                },
            );
            match self.noted(finish_tx(result))? {
                Ok(None) => return Ok(None),
                Ok(Some(ids)) => {
                    for id in &ids {
                        s.floor.lower_to(now, *id);
                    }
                    self.queued_add(ids.len());
                    return Ok(Some(ids));
                }
                Err(_) => continue,
            }
        }
    }

    /// Sends a dead letter back to the queue, due now, with the retry
    /// policy's full budget. Returns false if it is not a dead letter.
    pub fn retry_dead(&self, id: DeliveryId) -> Result<bool, StoreError> {
        let s = self.writing()?;
        let t = &s.t;
        let now = now_ms();
        let trees = (&t.dead, &t.deliveries, &t.due, &t.ordered);
        let result = trees.transaction(|(dead, deliveries, due, ordered)| {
            if dead.remove(&keys::delivery(id))?.is_none() {
                return Ok(false);
            }
            let Some(mut d) = get_delivery(deliveries, id)? else {
                return Ok(false);
            };
            d.status = DeliveryStatus::Pending;
            d.next_attempt_at_ms = Some(now);
            d.updated_at_ms = now;
            d.attempts_before_retry = d.attempts;
            deliveries.insert(&keys::delivery(id), encode(&d))?;
            due.insert(&keys::due(now, id), d.plugin.as_bytes())?;
            // Back in its key's line, at its original place.
            enter_line(Some(ordered), &d)?;
            Ok(true)
        });
        let retried = self.noted(finish_tx(result))?.unwrap_or(false);
        if retried {
            s.floor.lower_to(now, id);
            self.queued_add(1);
        }
        Ok(retried)
    }

    /// Parks a due delivery whose plugin is not loaded.
    pub fn pause(&self, entry: &DueEntry) -> Result<bool, StoreError> {
        if self.claims().contains_key(&entry.delivery) {
            return Ok(false);
        }
        let s = self.writing()?;
        let t = &s.t;
        let due_key = keys::due(entry.at_ms, entry.delivery);
        let result = (&t.due, &t.deliveries, &t.paused).transaction(|(due, deliveries, paused)| {
            if due.remove(&due_key)?.is_none() {
                return Ok(false);
            }
            let Some(mut d) = get_delivery(deliveries, entry.delivery)? else {
                return Ok(false);
            };
            d.status = DeliveryStatus::Paused;
            d.next_attempt_at_ms = None;
            d.updated_at_ms = now_ms();
            deliveries.insert(&keys::delivery(d.id), encode(&d))?;
            paused.insert(keys::paused(&d.plugin, d.id), &[])?;
            Ok(true)
        });
        let paused = self.noted(finish_tx(result))?.unwrap_or(false);
        if paused {
            self.queued_sub(1);
        }
        Ok(paused)
    }

    /// Makes every paused delivery of `plugin` due now; returns how many.
    pub fn resume_paused(&self, plugin: &str) -> Result<usize, StoreError> {
        let prefix = keys::plugin_prefix(plugin);
        let mut resumed = 0;
        let live = self.live()?;
        for item in live.t.paused.scan_prefix(&prefix) {
            let (k, _) = item?;
            let Some(id) = keys::parse_delivery(&k[prefix.len()..]) else {
                continue;
            };
            if self.make_due(&live.t.paused, &k, id)? {
                resumed += 1;
            }
        }
        self.queued_add(resumed);
        Ok(resumed)
    }

    /// Makes every delivery left `running` (by a crash) due again; returns how
    /// many. Call once at startup, before any worker runs.
    pub fn requeue_running(&self) -> Result<usize, StoreError> {
        let mut requeued = 0;
        let live = self.live()?;
        for item in live.t.running.iter() {
            let (k, _) = item?;
            let Some(id) = keys::parse_delivery(&k) else {
                continue;
            };
            if self.make_due(&live.t.running, &k, id)? {
                requeued += 1;
            }
        }
        Ok(requeued)
    }

    /// Moves a delivery from the index `from` (key `from_key`) to `due`, now.
    fn make_due(
        &self,
        from: &sled::Tree,
        from_key: &[u8],
        id: DeliveryId,
    ) -> Result<bool, StoreError> {
        let s = self.writing()?;
        let t = &s.t;
        let now = now_ms();
        let result = (from, &t.deliveries, &t.due).transaction(|(from, deliveries, due)| {
            if from.remove(from_key)?.is_none() {
                return Ok(false);
            }
            let Some(mut d) = get_delivery(deliveries, id)? else {
                return Ok(false);
            };
            d.status = DeliveryStatus::Pending;
            d.next_attempt_at_ms = Some(now);
            d.updated_at_ms = now;
            deliveries.insert(&keys::delivery(id), encode(&d))?;
            due.insert(&keys::due(now, id), d.plugin.as_bytes())?;
            Ok(true)
        });
        let moved = self.noted(finish_tx(result))?.unwrap_or(false);
        if moved {
            s.floor.lower_to(now, id);
        }
        Ok(moved)
    }
}
