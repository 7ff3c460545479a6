//! Retention: removing finished events once they are old enough.
//!
//! An event is finished when every delivery it has succeeded (an event no
//! plugin took is finished at once). Events are keyed by ULID, whose first
//! 48 bits are the time it was received, so "older than the cutoff" is a key
//! range scanned from the oldest. Each event goes in its own transaction,
//! with its body, deliveries, attempts (and so their captured logs), the
//! journals of its deliveries' calls and its idempotency key, so a purge holds the write gate only for one small
//! transaction at a time and ingest interleaves with it.

use super::super::types::PurgeReport;
use super::{SledStore, StoreError, decode, decode_event, keys};
use crate::model::{Delivery, DeliveryId, DeliveryStatus, EventRecord};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use ulid::Ulid;

/// Events removed per transaction: fewer, larger transactions cost less
/// than one each, and each is still short enough not to hold up ingest.
pub const PER_TRANSACTION: usize = 50;

/// An event's records as read before its transaction.
pub(super) struct Doomed {
    record: EventRecord,
    deliveries: Vec<Delivery>,
    attempts: Vec<sled::IVec>,
    journal: Vec<sled::IVec>,
}

impl SledStore {
    /// Removes the finished events received before `cutoff_ms`, examining
    /// at most `limit` events from just after `after` (or the oldest).
    /// Unfinished events (pending, running, paused, dead letters) are left
    /// alone. Removals commit [`PER_TRANSACTION`] events at a time.
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
        let mut doomed = Vec::new();
        let mut reached_end = true;
        for item in live.t.events.range((start, std::ops::Bound::Excluded(end))) {
            if report.examined == limit {
                reached_end = false;
                break;
            }
            let (_, raw) = item?;
            report.examined += 1;
            let (record, _) = decode_event(&raw)?;
            report.resume_after = Some(record.id);
            if let Some(d) = self.finished(record)? {
                doomed.push(d);
            }
        }
        for chunk in doomed.chunks(PER_TRANSACTION) {
            report.purged += self.remove_events(chunk)?;
        }
        if reached_end {
            report.resume_after = None;
        }
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
        let live = self.live()?;
        let prefix = keys::event(record.id);
        let attempts = live.t.attempts.scan_prefix(prefix).keys();
        let journal = live.t.journal.scan_prefix(prefix).keys();
        Ok(Some(Doomed {
            record,
            deliveries,
            attempts: attempts.collect::<Result<_, _>>()?,
            journal: journal.collect::<Result<_, _>>()?,
        }))
    }

    /// Removes events and everything that hangs off them, in one
    /// transaction, skipping any that changed since they were read (a
    /// replay added a delivery); returns how many it removed.
    pub(super) fn remove_events(&self, doomed: &[Doomed]) -> Result<usize, StoreError> {
        let s = self.writing()?;
        let t = &s.t;
        let result = (
            &t.events,
            &t.bodies,
            &t.idempotency,
            &t.deliveries,
            &t.attempts,
            &t.journal,
        )
            .transaction(
                |(events, bodies, idempotency, deliveries, attempts, journal)| {
                    let mut removed = 0;
                    'event: for doomed in doomed {
                        let id = doomed.record.id;
                        // A replay appends the next delivery number: if it
                        // exists, or a known delivery changed, leave the event.
                        let next = DeliveryId {
                            event: id,
                            seq: doomed.deliveries.last().map_or(0, |d| d.id.seq + 1),
                        };
                        if deliveries.get(keys::delivery(next))?.is_some() {
                            continue;
                        }
                        for d in &doomed.deliveries {
                            let still = deliveries
                                .get(keys::delivery(d.id))?
                                .and_then(|raw| decode::<Delivery>("deliveries", &raw).ok())
                                .is_some_and(|now| now.status == DeliveryStatus::Succeeded);
                            if !still {
                                continue 'event;
                            }
                        }
                        for d in &doomed.deliveries {
                            deliveries.remove(&keys::delivery(d.id))?;
                        }
                        for key in &doomed.attempts {
                            attempts.remove(key)?;
                        }
                        for key in &doomed.journal {
                            journal.remove(key)?;
                        }
                        if let Some(key) = doomed.record.dedupe_key()
                            && idempotency
                                .get(key.as_bytes())?
                                .is_some_and(|v| v.as_ref() == keys::event(id))
                        {
                            idempotency.remove(key.as_bytes())?;
                        }
                        // Only an older store's event has its body there.
                        bodies.remove(&keys::event(id))?;
                        if events.remove(&keys::event(id))?.is_some() {
                            removed += 1;
                        }
                    }
                    Ok::<_, ConflictableTransactionError<()>>(removed)
                },
            );
        match result {
            Ok(removed) => Ok(removed),
            Err(sled::transaction::TransactionError::Abort(())) => Ok(0),
            Err(sled::transaction::TransactionError::Storage(e)) => self.noted(Err(e.into())),
        }
    }
}
