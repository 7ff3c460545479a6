//! Queries for the admin API.

use super::super::types::{DeadPage, EventPage, EventQuery};
use super::{SledStore, StoreError, decode, decode_event, keys};
use crate::model::{Attempt, Delivery, DeliveryId, EventRecord, EventStatus};
use ulid::Ulid;

/// Events examined per page at most, so a filter that matches little cannot
/// make one request scan the whole store.
const SCAN_LIMIT: usize = 10_000;

impl SledStore {
    /// Dead letters, optionally of one plugin, after `after`, at most `limit`.
    pub fn dead_letters(
        &self,
        plugin: Option<&str>,
        after: Option<DeliveryId>,
        limit: usize,
    ) -> Result<DeadPage, StoreError> {
        let limit = limit.clamp(1, 1000);
        let start = match after {
            Some(id) => std::ops::Bound::Excluded(keys::delivery(id).to_vec()),
            None => std::ops::Bound::Unbounded,
        };
        let mut deliveries = Vec::new();
        let mut last = None;
        let live = self.live()?;
        for (scanned, item) in live
            .t
            .dead
            .range((start, std::ops::Bound::Unbounded))
            .enumerate()
        {
            if deliveries.len() == limit || scanned == SCAN_LIMIT {
                return Ok(DeadPage {
                    deliveries,
                    next_cursor: last,
                });
            }
            let (k, _) = item?;
            let Some(id) = keys::parse_delivery(&k) else {
                continue;
            };
            last = Some(id);
            let Some(d) = self.delivery(id)? else {
                continue;
            };
            if plugin.is_none_or(|p| p == d.plugin) {
                deliveries.push(d);
            }
        }
        Ok(DeadPage {
            deliveries,
            next_cursor: None,
        })
    }

    /// An event's metadata and body.
    pub fn event(&self, id: Ulid) -> Result<Option<(EventRecord, Vec<u8>)>, StoreError> {
        let key = keys::event(id);
        let live = self.live()?;
        let Some(raw) = live.t.events.get(key)? else {
            return Ok(None);
        };
        let (record, body) = decode_event(&raw)?;
        let body = match body {
            Some(body) => body.to_vec(),
            None => live
                .t
                .bodies
                .get(key)?
                .map(|b| b.to_vec())
                .unwrap_or_default(),
        };
        Ok(Some((record, body)))
    }

    /// An event with its body, deliveries and their attempts, read in one
    /// transaction: a view that no commit lands in the middle of.
    #[allow(clippy::type_complexity)]
    pub fn event_view(
        &self,
        id: Ulid,
    ) -> Result<Option<(EventRecord, Vec<u8>, Vec<(Delivery, Vec<Attempt>)>)>, StoreError> {
        use sled::Transactional as _;
        use sled::transaction::ConflictableTransactionError as Tx;
        let live = self.live()?;
        let t = &live.t;
        let key = keys::event(id);
        let corrupt = |e: StoreError| Tx::Abort(e);
        let result = (&t.events, &t.bodies, &t.deliveries, &t.attempts).transaction(
            |(events, bodies, deliveries, attempts)| {
                let Some(raw) = events.get(key)? else {
                    return Ok(None);
                };
                let (record, body) = decode_event(&raw).map_err(corrupt)?;
                let body = match body {
                    Some(body) => body.to_vec(),
                    None => bodies.get(key)?.map(|b| b.to_vec()).unwrap_or_default(),
                };
                // Delivery numbers run from 0 without gaps, attempt numbers
                // from 1 to the delivery's count.
                let mut shown = Vec::new();
                for seq in 0u32.. {
                    let d = DeliveryId { event: id, seq };
                    let Some(raw) = deliveries.get(keys::delivery(d))? else {
                        break;
                    };
                    let delivery: Delivery = decode("deliveries", &raw).map_err(corrupt)?;
                    let mut list = Vec::new();
                    for n in 1..=delivery.attempts {
                        if let Some(raw) = attempts.get(keys::attempt(d, n))? {
                            list.push(decode("attempts", &raw).map_err(corrupt)?);
                        }
                    }
                    shown.push((delivery, list));
                }
                Ok(Some((record, body, shown)))
            },
        );
        match result {
            // Claims are looked up after the transaction: sled runs its
            // closure under a global lock that `claim` may be waiting for
            // while it holds the claims.
            Ok(view) => Ok(view.map(|(record, body, shown)| {
                let shown = shown
                    .into_iter()
                    .map(|(d, attempts)| (self.shown(d), attempts))
                    .collect();
                (record, body, shown)
            })),
            Err(sled::transaction::TransactionError::Abort(e)) => Err(e),
            Err(sled::transaction::TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// An event's deliveries, in order.
    pub fn deliveries_of(&self, event: Ulid) -> Result<Vec<Delivery>, StoreError> {
        self.live()?
            .t
            .deliveries
            .scan_prefix(keys::event(event))
            .map(|item| Ok(self.shown(decode("deliveries", &item?.1)?)))
            .collect()
    }

    /// One delivery.
    pub fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        self.live()?
            .t
            .deliveries
            .get(keys::delivery(id))?
            .map(|raw| Ok(self.shown(decode("deliveries", &raw)?)))
            .transpose()
    }

    /// A delivery's attempts, first to last.
    pub fn attempts_of(&self, delivery: DeliveryId) -> Result<Vec<Attempt>, StoreError> {
        self.live()?
            .t
            .attempts
            .scan_prefix(keys::delivery(delivery))
            .map(|item| decode("attempts", &item?.1))
            .collect()
    }

    /// Events newest first, filtered and paged.
    pub fn list_events(&self, query: &EventQuery) -> Result<EventPage, StoreError> {
        let limit = query.limit.clamp(1, 1000);
        let live = self.live()?;
        let range = match query.before {
            Some(before) => live.t.events.range(..keys::event(before).to_vec()),
            None => live.t.events.range::<Vec<u8>, _>(..),
        };
        let mut events = Vec::new();
        let mut last_seen = None;
        let mut exhausted = true;
        for (scanned, item) in range.rev().enumerate() {
            if events.len() == limit || scanned == SCAN_LIMIT {
                exhausted = false;
                break;
            }
            let (_, raw) = item?;
            let (record, _) = decode_event(&raw)?;
            last_seen = Some(record.id);
            if query.since_ms.is_some_and(|t| record.received_at_ms < t) {
                // Newest first: every later one is older still.
                exhausted = true;
                break;
            }
            if query.until_ms.is_some_and(|t| record.received_at_ms > t) {
                continue;
            }
            if let Some(pattern) = &query.topic
                && !crate::model::topic_matches(pattern, &record.topic)
            {
                continue;
            }
            let deliveries = self.deliveries_of(record.id)?;
            if let Some(plugin) = &query.plugin
                && !deliveries.iter().any(|d| &d.plugin == plugin)
            {
                continue;
            }
            if query
                .status
                .is_some_and(|s| s != EventStatus::of(&deliveries))
            {
                continue;
            }
            events.push((record, deliveries));
        }
        Ok(EventPage {
            events,
            next_cursor: if exhausted { None } else { last_seen },
        })
    }
}
