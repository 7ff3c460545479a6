//! What the store takes and answers, whichever backend holds the data.

use crate::model::{Delivery, DeliveryId, EventRecord, EventStatus, NewEvent};
pub use crate::model::{Effects, Emitted, Route};
use ulid::Ulid;

/// The answer to an ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    pub id: Ulid,
    /// True when the idempotency key was seen before: `id` is the original
    /// event's and nothing new was stored.
    pub duplicate: bool,
}

/// A pending delivery whose time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEntry {
    pub at_ms: u64,
    pub delivery: DeliveryId,
    pub plugin: String,
}

/// A delivery claimed for an attempt, with what the attempt needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery: Delivery,
    pub event: EventRecord,
    pub body: Vec<u8>,
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Succeeded,
    RetryAt(u64),
    Dead,
}

/// The result of [`Store::finish_attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Committed,
    /// A kv key the attempt read changed meanwhile: nothing was written, the
    /// attempt must be run again.
    Conflict,
    /// The delivery is no longer running (it was requeued): nothing written.
    Stale,
}

/// A filter and page for [`Store::list_events`].
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only events whose topic matches this pattern.
    pub topic: Option<String>,
    pub status: Option<EventStatus>,
    /// Only events with a delivery to this plugin.
    pub plugin: Option<String>,
    /// Only events received at or after / at or before these times (ms).
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    /// Only events older than this id (the previous page's `next_cursor`).
    pub before: Option<Ulid>,
    pub limit: usize,
}

/// One page of events, newest first.
#[derive(Debug, Clone)]
pub struct EventPage {
    pub events: Vec<(EventRecord, Vec<Delivery>)>,
    /// Pass as `before` for the next page; `None` on the last page.
    pub next_cursor: Option<Ulid>,
}

/// One page of dead letters, oldest event first.
#[derive(Debug, Clone)]
pub struct DeadPage {
    pub deliveries: Vec<Delivery>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next_cursor: Option<DeliveryId>,
}

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

/// A plugin's current version as a shared store has it: what every host
/// sharing the store should run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub plugin: String,
    /// `None` once the plugin was removed.
    pub sha256: Option<String>,
    pub changed_ms: u64,
    /// Grows with every change to any plugin.
    pub seq: u64,
}

/// Monotonic ULIDs: ids made in the same millisecond still sort in the
/// order they were made, so "newest first" is exact.
#[derive(Default)]
pub(super) struct Ids(std::sync::Mutex<ulid::Generator>);

impl Ids {
    /// A new id, greater than every id made here before.
    pub(super) fn next(&self) -> Ulid {
        self.0
            .lock()
            .ok()
            .and_then(|mut g| g.generate().ok())
            .unwrap_or_else(|| Ulid::from_datetime(std::time::SystemTime::now()))
    }
}

/// The stored record of a new event.
pub(super) fn record_of(id: Ulid, event: &NewEvent, at: u64) -> EventRecord {
    EventRecord {
        id,
        topic: event.topic.clone(),
        idempotency_key: event.idempotency_key.clone(),
        received_at_ms: at,
        headers: event.headers.clone(),
        content_type: event.content_type.clone(),
        emitted_by: None,
        provenance: Some(event.provenance.clone()),
    }
}
