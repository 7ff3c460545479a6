//! The event log: events in (ingest, schedule ticks), what they became
//! (events, deliveries, attempts, dead letters), and bodies a contract held
//! back.

use crate::model::{Attempt, Delivery, DeliveryId, EventRecord, NewEvent, Quarantined};
use crate::{
    Backend, DeadPage, EventPage, EventQuery, EventView, Ingested, Route, Store, StoreError,
};
use ulid::Ulid;

impl Store {
    /// Stores an event and one delivery per route, atomically, and returns
    /// once it is durable.
    pub async fn ingest(&self, event: NewEvent, routes: &[Route]) -> Result<Ingested, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.ingest(event, routes).await,
            Backend::Postgres(p) => p.ingest(event, routes).await,
        }
    }

    /// The last tick fired of a plugin's schedule, if it was ever seen.
    pub async fn schedule_last(&self, plugin: &str, name: &str) -> Result<Option<u64>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.schedule_last(plugin, name),
            Backend::Postgres(p) => p.schedule_last(plugin, name).await,
        }
    }

    /// Starts a schedule seen for the first time at `at`: ticks before it
    /// never fire. A concurrent start's time stands.
    pub async fn schedule_start(
        &self,
        plugin: &str,
        name: &str,
        at: u64,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.schedule_start(plugin, name, at),
            Backend::Postgres(p) => p.schedule_start(plugin, name, at).await,
        }
    }

    /// Stores a schedule's event for `tick` and marks the tick fired, in one
    /// transaction, unless a tick at or after it already fired. Returns
    /// whether it fired, once it is durable.
    pub async fn fire_schedule(
        &self,
        plugin: &str,
        name: &str,
        tick: u64,
        event: NewEvent,
        routes: &[Route],
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.fire_schedule(plugin, name, tick, event, routes).await,
            Backend::Postgres(p) => p.fire_schedule(plugin, name, tick, event, routes).await,
        }
    }

    /// An event's metadata and body.
    pub async fn event(&self, id: Ulid) -> Result<Option<(EventRecord, Vec<u8>)>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.event(id),
            Backend::Postgres(p) => p.event(id).await,
        }
    }

    /// An event with its body, deliveries and their attempts, as of one
    /// moment: no commit lands in the middle of the view.
    pub async fn event_view(&self, id: Ulid) -> Result<Option<EventView>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.event_view(id),
            Backend::Postgres(p) => p.event_view(id).await,
        }
    }

    /// An event's deliveries, in order.
    pub async fn deliveries_of(&self, event: Ulid) -> Result<Vec<Delivery>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.deliveries_of(event),
            Backend::Postgres(p) => p.deliveries_of(event).await,
        }
    }

    /// One delivery.
    pub async fn delivery(&self, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.delivery(id),
            Backend::Postgres(p) => p.delivery(id).await,
        }
    }

    /// A delivery's attempts, first to last.
    pub async fn attempts_of(&self, delivery: DeliveryId) -> Result<Vec<Attempt>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.attempts_of(delivery),
            Backend::Postgres(p) => p.attempts_of(delivery).await,
        }
    }

    /// Events newest first, filtered and paged.
    pub async fn list_events(&self, query: &EventQuery) -> Result<EventPage, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.list_events(query),
            Backend::Postgres(p) => p.list_events(query).await,
        }
    }

    /// Dead letters, optionally of one plugin, after `after`, at most `limit`.
    pub async fn dead_letters(
        &self,
        plugin: Option<&str>,
        after: Option<DeliveryId>,
        limit: usize,
    ) -> Result<DeadPage, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.dead_letters(plugin, after, limit),
            Backend::Postgres(p) => p.dead_letters(plugin, after, limit).await,
        }
    }

    /// Keeps a refused body, durably.
    pub async fn quarantine(&self, record: &Quarantined) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.quarantine(record).await,
            Backend::Postgres(p) => p.quarantine(record).await,
        }
    }

    /// Quarantined bodies, newest first, older than `before`, at most `limit`.
    pub async fn quarantined(
        &self,
        before: Option<Ulid>,
        limit: usize,
    ) -> Result<Vec<Quarantined>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.quarantined(before, limit),
            Backend::Postgres(p) => p.quarantined(before, limit).await,
        }
    }

    /// One quarantined body.
    pub async fn quarantined_one(&self, id: Ulid) -> Result<Option<Quarantined>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.quarantined_one(id),
            Backend::Postgres(p) => p.quarantined_one(id).await,
        }
    }

    /// Forgets a quarantined body (it was re-ingested).
    pub async fn release(&self, id: Ulid) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.release(id),
            Backend::Postgres(p) => p.release(id).await,
        }
    }
}
