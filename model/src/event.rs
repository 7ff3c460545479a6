//! Events: as received, as stored, refused by a contract, and what they
//! amount to from their deliveries.

use serde::{Deserialize, Serialize};
use std::str::FromStr;
use ulid::Ulid;

use crate::delivery::{Delivery, DeliveryStatus};
use crate::ids::DeliveryId;

/// An event as received, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub topic: String,
    pub idempotency_key: Option<String>,
    pub headers: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub provenance: Provenance,
}

/// Where an event came from. Its idempotency key counts only among events
/// of the same scope (see [`dedupe_key`]), so no sender can claim another's
/// keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Provenance {
    /// `POST /events/{topic}`.
    Api,
    /// `POST /hooks/{source}`; `verified`: its signature was checked (a
    /// generic source without a secret checks none).
    Source { name: String, verified: bool },
    /// Emitted by a plugin's handler.
    Emitted { plugin: String },
    /// A schedule's tick.
    Schedule { plugin: String, name: String },
}

impl Provenance {
    /// The namespace of idempotency keys from here.
    fn scope(&self) -> String {
        match self {
            Provenance::Api => "api".into(),
            Provenance::Source { name, .. } => format!("source:{name}"),
            Provenance::Emitted { plugin } => format!("emit:{plugin}"),
            Provenance::Schedule { plugin, .. } => format!("schedule:{plugin}"),
        }
    }

    /// Whether keys from here were stored unscoped before scopes existed,
    /// and so must still be matched against the unscoped keys of older
    /// events: a sender's retry across an upgrade stays a duplicate.
    pub fn had_unscoped_keys(&self) -> bool {
        matches!(self, Provenance::Api | Provenance::Source { .. })
    }
}

/// The key an event's idempotency key is stored under: scoped by where it
/// came from (`None`: an event stored before scopes, whose key is bare).
/// Scopes hold no newline, so two scopes never share a stored key.
pub fn dedupe_key(provenance: Option<&Provenance>, key: &str) -> String {
    match provenance {
        Some(p) => format!("{}\n{key}", p.scope()),
        None => key.to_owned(),
    }
}

/// A stored event's metadata (its body is stored beside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: Ulid,
    pub topic: String,
    pub idempotency_key: Option<String>,
    pub received_at_ms: u64,
    pub headers: Vec<(String, String)>,
    pub content_type: Option<String>,
    /// Set when a plugin emitted this event: the delivery that emitted it.
    #[serde(default)]
    pub emitted_by: Option<DeliveryId>,
    /// Where it came from; `None` for events stored before this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

impl EventRecord {
    /// The key its idempotency key is stored under, if it has one.
    pub fn dedupe_key(&self) -> Option<String> {
        self.idempotency_key
            .as_deref()
            .map(|key| dedupe_key(self.provenance.as_ref(), key))
    }

    /// The bare key an older event with the same key would be stored
    /// under, when this event must also be matched against those.
    pub fn legacy_dedupe_key(&self) -> Option<&str> {
        self.provenance
            .as_ref()
            .filter(|p| p.had_unscoped_keys())
            .and(self.idempotency_key.as_deref())
    }
}

/// A body refused by a contract, kept until it is re-ingested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    pub id: Ulid,
    pub received_at_ms: u64,
    pub topic: String,
    pub idempotency_key: Option<String>,
    pub headers: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// The contract's topic pattern.
    pub contract: String,
    pub violations: Vec<String>,
    /// Where it came from; `None` (read as the API) for bodies quarantined
    /// before this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

impl Quarantined {
    /// The event as it was received, to ingest again.
    pub fn to_event(&self) -> NewEvent {
        NewEvent {
            topic: self.topic.clone(),
            idempotency_key: self.idempotency_key.clone(),
            headers: self.headers.clone(),
            content_type: self.content_type.clone(),
            body: self.body.clone(),
            provenance: self.provenance.clone().unwrap_or(Provenance::Api),
        }
    }
}

/// What an event amounts to, from its deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// No plugin subscribed when it arrived.
    Unrouted,
    /// Some delivery is pending, running or paused.
    Pending,
    /// Every delivery succeeded.
    Succeeded,
    /// No delivery is pending and at least one is dead.
    Dead,
}

impl EventStatus {
    /// Summarises an event from its deliveries' states.
    pub fn of(deliveries: &[Delivery]) -> Self {
        if deliveries.is_empty() {
            return EventStatus::Unrouted;
        }
        let open = deliveries.iter().any(|d| {
            matches!(
                d.status,
                DeliveryStatus::Pending | DeliveryStatus::Running | DeliveryStatus::Paused
            )
        });
        if open {
            EventStatus::Pending
        } else if deliveries.iter().any(|d| d.status == DeliveryStatus::Dead) {
            EventStatus::Dead
        } else {
            EventStatus::Succeeded
        }
    }
}

impl FromStr for EventStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "unrouted" => Ok(Self::Unrouted),
            "pending" => Ok(Self::Pending),
            "succeeded" => Ok(Self::Succeeded),
            "dead" => Ok(Self::Dead),
            _ => Err(format!(
                "unknown status {s:?}: expected unrouted, pending, succeeded or dead"
            )),
        }
    }
}
