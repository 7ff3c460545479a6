//! Retention: removing finished events once they are old enough.
//!
//! An event is finished when every delivery it has succeeded (an event no
//! plugin took is finished at once). Events are keyed by ULID, whose first
//! 48 bits are the time it was received, so "older than the cutoff" is a key
//! range scanned from the oldest. Each event goes in its own transaction,
//! with its body, deliveries, attempts (and so their captured logs) and its
//! idempotency key, so a purge holds the write gate only for one small
//! transaction at a time and ingest interleaves with it.

use super::{Store, StoreError, decode, keys};
use crate::model::{Delivery, DeliveryId, DeliveryStatus, EventRecord};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use ulid::Ulid;

/// What one [`Store::purge`] pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Events older than the cutoff looked at.
    pub examined: usize,
    /// Of those, removed.
    pub purged: usize,
    /// Where the next pass starts; `None` when this pass reached the cutoff
    /// (the next one starts again from the oldest event).
    pub resume_after: Option<Ulid>,
}

/// An event's records as read before its transaction.
pub(super) struct Doomed {
    record: EventRecord,
    deliveries: Vec<Delivery>,
    attempts: Vec<sled::IVec>,
}

impl Store {
    /// Removes up to `limit` finished events received before `cutoff_ms`,
    /// examining events from just after `after` (or the oldest), at most
    /// `limit` of them. Unfinished events (pending, running, paused, dead
    /// letters) are left alone.
    pub fn purge(
        &self,
        cutoff_ms: u64,
        after: Option<Ulid>,
        limit: usize,
    ) -> Result<PurgeReport, StoreError> {
        let live = self.live()?;
        let end = keys::event(Ulid::from_parts(cutoff_ms, 0));
        let start = match after {
            Some(id) => std::ops::Bound::Excluded(keys::event(id)),
            None => std::ops::Bound::Unbounded,
        };
        let mut report = PurgeReport::default();
        for item in live.t.events.range((start, std::ops::Bound::Excluded(end))) {
            if report.examined == limit {
                return Ok(report);
            }
            let (_, raw) = item?;
            report.examined += 1;
            let record: EventRecord = decode("events", &raw)?;
            report.resume_after = Some(record.id);
            if let Some(doomed) = self.finished(record)?
                && self.remove_event(&doomed)?
            {
                report.purged += 1;
            }
        }
        report.resume_after = None;
        Ok(report)
    }

    /// The event's records if every delivery it has succeeded.
    pub(super) fn finished(&self, record: EventRecord) -> Result<Option<Doomed>, StoreError> {
        let deliveries = self.deliveries_of(record.id)?;
        if deliveries
            .iter()
            .any(|d| d.status != DeliveryStatus::Succeeded)
        {
            return Ok(None);
        }
        let attempts = self
            .live()?
            .t
            .attempts
            .scan_prefix(keys::event(record.id))
            .keys()
            .collect::<Result<_, _>>()?;
        Ok(Some(Doomed {
            record,
            deliveries,
            attempts,
        }))
    }

    /// Removes an event and everything that hangs off it, unless it changed
    /// since it was read (a replay added a delivery); returns whether it did.
    pub(super) fn remove_event(&self, doomed: &Doomed) -> Result<bool, StoreError> {
        let s = self.writing()?;
        let t = &s.t;
        let id = doomed.record.id;
        let next = DeliveryId {
            event: id,
            seq: doomed.deliveries.last().map_or(0, |d| d.id.seq + 1),
        };
        let result = (
            &t.events,
            &t.bodies,
            &t.idempotency,
            &t.deliveries,
            &t.attempts,
        )
            .transaction(|(events, bodies, idempotency, deliveries, attempts)| {
                // A replay appends the next delivery number: if it exists,
                // or a known delivery changed, leave the event for later.
                if deliveries.get(keys::delivery(next))?.is_some() {
                    return Ok(false);
                }
                for d in &doomed.deliveries {
                    let Some(raw) = deliveries.remove(&keys::delivery(d.id))? else {
                        return Err(ConflictableTransactionError::Abort(()));
                    };
                    let now: Delivery = decode("deliveries", &raw)
                        .map_err(|_| ConflictableTransactionError::Abort(()))?;
                    if now.status != DeliveryStatus::Succeeded {
                        return Err(ConflictableTransactionError::Abort(()));
                    }
                }
                for key in &doomed.attempts {
                    attempts.remove(key)?;
                }
                if let Some(key) = &doomed.record.idempotency_key
                    && idempotency
                        .get(key.as_bytes())?
                        .is_some_and(|v| v.as_ref() == keys::event(id))
                {
                    idempotency.remove(key.as_bytes())?;
                }
                bodies.remove(&keys::event(id))?;
                Ok(events.remove(&keys::event(id))?.is_some())
            });
        match result {
            Ok(removed) => Ok(removed),
            Err(sled::transaction::TransactionError::Abort(())) => Ok(false),
            Err(sled::transaction::TransactionError::Storage(e)) => self.noted(Err(e.into())),
        }
    }
}
