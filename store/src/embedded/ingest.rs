//! Writes that add events: ingest (through the group commit) and
//! schedule ticks.

use super::super::types::{Ingested, Route, record_of};
use super::tx::{EventRows, EventTx, finish_tx};
use super::{SledStore, StoreError, keys};
use crate::model::{EventRecord, NewEvent, now_ms};
use sled::Transactional;

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
}
