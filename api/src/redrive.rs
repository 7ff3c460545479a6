//! Sending events and dead letters through again.

use hookhost_model::{DeliveryId, DeliveryStatus, EventStatus, Outcome};
use serde::{Deserialize, Serialize};

/// `POST /events/{id}/replay`: to the event's current subscribers, or to
/// `plugin`, optionally pinned to `version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayOne {
    pub plugin: Option<String>,
    pub version: Option<String>,
}

/// The new deliveries of a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replayed {
    pub deliveries: Vec<DeliveryId>,
}

/// `POST /replay`: every stored event matching the filter, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayMany {
    pub topic: Option<String>,
    pub status: Option<EventStatus>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    pub plugin: Option<String>,
    pub limit: Option<usize>,
}

/// What a bulk replay did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayedMany {
    pub events: usize,
    pub deliveries: usize,
    /// True when the limit stopped it.
    pub capped: bool,
}

/// `GET /dead-letters`: oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterList {
    pub dead_letters: Vec<DeadLetter>,
    pub next_cursor: Option<DeliveryId>,
}

/// A delivery that used its retries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub delivery: DeliveryId,
    pub event: String,
    /// `None` if the event was purged.
    pub topic: Option<String>,
    pub plugin: String,
    pub attempts: u32,
    pub last_outcome: Option<Outcome>,
    pub dead_since_ms: u64,
}

/// `POST /dead-letters/{delivery}/retry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retried {
    pub delivery: DeliveryId,
    pub status: DeliveryStatus,
}

/// `POST /dead-letters/retry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetriedMany {
    pub retried: usize,
    /// True when the cap (10 000) stopped it.
    pub capped: bool,
}

/// `POST /events/{id}/replay-exact`: re-executes one recorded attempt
/// offline. `plugin` may be left out when one plugin handled the event;
/// `attempt` defaults to its last; `version` to the version that ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExactReplayRequest {
    pub plugin: Option<String>,
    pub attempt: Option<u32>,
    pub version: Option<String>,
}

/// What an exact replay found: `exact` when the replay produced the
/// recorded outcome, effects (kv reads and writes, emitted events, outbox
/// requests) and calls byte for byte, reading the recorded clocks and
/// random; else each difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExactReplay {
    pub event: String,
    pub delivery: DeliveryId,
    pub plugin: String,
    pub attempt: u32,
    /// The version the recorded attempt ran.
    pub recorded_version: String,
    /// The version replayed.
    pub replayed_version: String,
    pub exact: bool,
    pub differences: Vec<ExactDifference>,
    /// The replay's own outcome, fuel and time.
    pub outcome: Outcome,
    pub fuel_consumed: u64,
    pub duration_us: u64,
}

/// One place the replay did otherwise than the recorded attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExactDifference {
    /// `version`, `outcome`, `effects`, `omitted`, `http` or `inputs`.
    pub what: String,
    pub recorded: serde_json::Value,
    pub replayed: serde_json::Value,
}
