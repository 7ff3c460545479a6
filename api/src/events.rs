//! Events in, and what became of them.

use hookhost_model::{Attempt, DeliveryId, DeliveryStatus, EventStatus, Outcome, Provenance};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A body a contract refused (422): why, and where it is kept
/// (`quarantine_id`, unset when a re-ingest was refused again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    pub error: String,
    pub violations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_id: Option<String>,
}

/// `POST /events/{topic}`, `POST /hooks/{source}`: stored (202), or stored
/// before under the same idempotency key (200, `duplicate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ingested {
    pub id: String,
    pub duplicate: bool,
}

/// `GET /events`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventList {
    pub events: Vec<EventSummary>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// One event in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSummary {
    pub id: String,
    pub topic: String,
    pub idempotency_key: Option<String>,
    pub received_at_ms: u64,
    pub status: EventStatus,
    pub deliveries: Vec<DeliverySummary>,
}

/// One delivery in a list: the kind of its latest outcome only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliverySummary {
    pub id: DeliveryId,
    pub plugin: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// `ok`, `trap`, `fuel_exhausted`, …
    pub last_outcome: Option<String>,
}

/// `GET /events/{id}`: the event, its body, and every delivery with every
/// attempt record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDetail {
    pub event: EventShown,
    pub status: EventStatus,
    pub deliveries: Vec<DeliveryDetail>,
}

/// An event with its body: as JSON when it is JSON, else as text or base64
/// (`body_encoding`: `json`, `utf8` or `base64`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventShown {
    pub id: String,
    pub topic: String,
    pub idempotency_key: Option<String>,
    pub received_at_ms: u64,
    pub content_type: Option<String>,
    pub headers: Vec<(String, String)>,
    pub emitted_by: Option<DeliveryId>,
    pub provenance: Option<Provenance>,
    pub body: Value,
    pub body_encoding: String,
}

/// A delivery with its attempt records (`attempts`, oldest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryDetail {
    pub id: DeliveryId,
    pub plugin: String,
    pub status: DeliveryStatus,
    pub next_attempt_at_ms: Option<u64>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    pub last_outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_version: Option<String>,
    #[serde(default)]
    pub attempts_before_retry: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_key: Option<String>,
    pub attempts: Vec<Attempt>,
}

impl DeliveryDetail {
    /// `delivery` shown with its `attempts`.
    pub fn new(d: hookhost_model::Delivery, attempts: Vec<Attempt>) -> Self {
        Self {
            id: d.id,
            plugin: d.plugin,
            status: d.status,
            next_attempt_at_ms: d.next_attempt_at_ms,
            created_at_ms: d.created_at_ms,
            updated_at_ms: d.updated_at_ms,
            last_outcome: d.last_outcome,
            pinned_version: d.pinned_version,
            attempts_before_retry: d.attempts_before_retry,
            order_key: d.order_key,
            attempts,
        }
    }
}

/// `GET /quarantine`: bodies a contract refused, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantineList {
    pub quarantine: Vec<QuarantineItem>,
    pub next_cursor: Option<String>,
}

/// One refused body, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantineItem {
    pub id: String,
    pub received_at_ms: u64,
    pub topic: String,
    pub idempotency_key: Option<String>,
    /// The contract's topic pattern.
    pub contract: String,
    pub violations: Vec<String>,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
}

/// One line of `GET /export` (JSON lines, oldest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportLine {
    pub event: EventShown,
    pub status: EventStatus,
    pub deliveries: Vec<ExportedDelivery>,
}

/// A delivery in an export: its latest outcome in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedDelivery {
    pub id: DeliveryId,
    pub plugin: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_outcome: Option<Outcome>,
    pub updated_at_ms: u64,
}
