//! Moving deliveries by hand or at start: replay, retry of a dead one,
//! pause and resume, requeue of those left running.

use super::super::types::{DueEntry, Route};
use super::tx::{Abort, enter_line, finish_tx, get_delivery};
use super::{SledStore, StoreError, encode, keys};
use crate::model::{Delivery, DeliveryId, DeliveryStatus, now_ms};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use ulid::Ulid;

impl SledStore {
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
