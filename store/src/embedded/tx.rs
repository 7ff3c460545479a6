//! Transaction bodies shared by the writers: an event's rows, a delivery's
//! move between states, and the retrying wrapper every write runs in.

use super::super::types::{Effects, Next, Route};
use super::{StoreError, decode, encode, event_value, keys};
use crate::model::{Attempt, Delivery, DeliveryId, DeliveryStatus, EventRecord};
use sled::IVec;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use ulid::Ulid;

pub(super) enum Abort {
    Conflict,
    Stale,
    Corrupt(StoreError),
}

pub(super) type TxResult<T> = Result<T, ConflictableTransactionError<Abort>>;

pub(super) fn corrupt(e: StoreError) -> ConflictableTransactionError<Abort> {
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
pub(super) fn enter_line(ordered: Option<&TransactionalTree>, d: &Delivery) -> TxResult<()> {
    if let Some(key) = &d.order_key {
        ordered_tree(ordered)?.set(keys::ordered(&d.plugin, key, d.id), &[])?;
    }
    Ok(())
}

pub(super) fn ordered_tree(ordered: Option<&TransactionalTree>) -> TxResult<&TransactionalTree> {
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
pub(super) fn apply_kv(kv: &TransactionalTree, plugin: &str, effects: &Effects) -> TxResult<()> {
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

pub(super) fn get_delivery(tree: &TransactionalTree, id: DeliveryId) -> TxResult<Option<Delivery>> {
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
