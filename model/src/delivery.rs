//! Deliveries: one event to one plugin, its state, its ordering and its
//! retry policy.

use serde::{Deserialize, Serialize};

use crate::attempt::Outcome;
use crate::ids::{DeliveryId, MAX_IDEMPOTENCY_KEY};

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (at `next_attempt_at_ms`).
    Pending,
    /// An attempt is running now.
    Running,
    /// Its plugin is not loaded; it waits until a plugin of that name returns.
    Paused,
    /// An attempt succeeded; its effects are committed.
    Succeeded,
    /// Rejected or out of attempts: a dead letter, kept until handled.
    Dead,
}

/// One event's delivery to one plugin, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: DeliveryId,
    pub plugin: String,
    pub status: DeliveryStatus,
    /// Attempts recorded so far.
    pub attempts: u32,
    /// When the next attempt is due, while `pending`.
    pub next_attempt_at_ms: Option<u64>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// The outcome of the latest recorded attempt.
    pub last_outcome: Option<Outcome>,
    /// Run this version (sha256) instead of the plugin's current one: set
    /// by a replay pinned to a version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_version: Option<String>,
    /// Attempts made before the retry policy's current window: a dead
    /// letter sent back for retry gets the policy's full budget again.
    #[serde(default)]
    pub attempts_before_retry: u32,
    /// The ordering key, for a plugin with `ordering = "per-key"`: this
    /// delivery runs only after every earlier one with the same key ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_key: Option<String>,
}

impl Delivery {
    /// A new pending delivery, due at `at_ms`.
    pub fn pending(
        id: DeliveryId,
        plugin: &str,
        at_ms: u64,
        pinned_version: Option<String>,
    ) -> Self {
        Self {
            id,
            plugin: plugin.to_owned(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at_ms: Some(at_ms),
            created_at_ms: at_ms,
            updated_at_ms: at_ms,
            last_outcome: None,
            pinned_version,
            attempts_before_retry: 0,
            order_key: None,
        }
    }
}

/// How a plugin's deliveries may overlap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ordering {
    /// Any number at once, in any order (up to `max_concurrency`).
    #[default]
    Parallel,
    /// Deliveries with the same key one at a time, in ingest order.
    PerKey,
}

/// Where a per-key plugin's ordering key comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "from", content = "pointer", rename_all = "snake_case")]
pub enum OrderBy {
    /// The event's idempotency key.
    IdempotencyKey,
    /// A JSON pointer into the body (e.g. `/data/object/customer`).
    Body(String),
}

impl OrderBy {
    /// The event's key, if it has one: a string or number at the pointer (an
    /// event without one is not ordered).
    ///
    /// A key longer than [`MAX_IDEMPOTENCY_KEY`] bytes or holding a NUL byte
    /// is stored as `sha256:<hex>` of itself: every store can index it (a
    /// PostgreSQL text column takes no NUL, a btree row only so much), and
    /// equal keys stay equal.
    pub fn key_of(&self, idempotency_key: Option<&str>, body: &[u8]) -> Option<String> {
        let key = match self {
            OrderBy::IdempotencyKey => idempotency_key.map(str::to_owned),
            OrderBy::Body(pointer) => {
                let value: serde_json::Value = serde_json::from_slice(body).ok()?;
                match value.pointer(pointer)? {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    serde_json::Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                }
            }
        }?;
        if key.len() <= MAX_IDEMPOTENCY_KEY && !key.contains('\0') {
            return Some(key);
        }
        use sha2::Digest as _;
        Some(format!("sha256:{}", hex::encode(sha2::Sha256::digest(key))))
    }
}

/// A plugin's retry policy: exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for RetryPolicy {
    /// 5 attempts, 1 s initial backoff doubling each time, capped at 1 h.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 3_600_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_keys_come_from_the_idempotency_key_or_a_pointer() {
        let body = br#"{"data": {"customer": "cus_1", "n": 7, "obj": {}}}"#;
        assert_eq!(
            OrderBy::IdempotencyKey.key_of(Some("k"), body).as_deref(),
            Some("k")
        );
        assert_eq!(OrderBy::IdempotencyKey.key_of(None, body), None);
        let at = |p: &str| OrderBy::Body(p.into()).key_of(None, body);
        assert_eq!(at("/data/customer").as_deref(), Some("cus_1"));
        assert_eq!(at("/data/n").as_deref(), Some("7"));
        assert_eq!(at("/data/obj"), None, "only scalars are keys");
        assert_eq!(at("/missing"), None);
        assert_eq!(OrderBy::Body("/a".into()).key_of(None, b"not json"), None);
    }

    #[test]
    fn ordering_keys_every_store_can_index_are_kept_others_are_digested() {
        let at = |body: &[u8]| OrderBy::Body("/k".into()).key_of(None, body);
        let nul = at(br#"{"k": "a\u0000b"}"#).expect("a key");
        assert!(nul.starts_with("sha256:") && !nul.contains('\0'), "{nul}");
        assert_eq!(at(br#"{"k": "a\u0000b"}"#), Some(nul.clone()), "stable");
        assert_ne!(at(br#"{"k": "a\u0000c"}"#), Some(nul));
        let long = format!(r#"{{"k": "{}"}}"#, "x".repeat(MAX_IDEMPOTENCY_KEY + 1));
        let digested = at(long.as_bytes()).expect("a key");
        assert_eq!(digested.len(), "sha256:".len() + 64);
        let fits = format!(r#"{{"k": "{}"}}"#, "x".repeat(MAX_IDEMPOTENCY_KEY));
        assert_eq!(
            at(fits.as_bytes()).map(|k| k.len()),
            Some(MAX_IDEMPOTENCY_KEY)
        );
    }
}
