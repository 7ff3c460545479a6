//! The records Hookhost keeps: events, deliveries and attempts.
//!
//! These are plain data shared by the host's `store/` (which persists them),
//! `dispatch/` (which moves deliveries through their states), `runtime/`
//! (which produces attempt outcomes) and `http/` (which shows them), where
//! they are `hookhost::model`. This crate depends on serde and hashing only:
//! the compiler keeps sled, PostgreSQL and wasmtime out of it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use ulid::Ulid;

/// Milliseconds since the Unix epoch, the host's one time unit on disk.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

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

/// One delivery of one event to one plugin: `<event id>-<n>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryId {
    pub event: Ulid,
    pub seq: u32,
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.event, self.seq)
    }
}

impl FromStr for DeliveryId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (event, seq) = s
            .split_once('-')
            .ok_or_else(|| format!("invalid delivery id {s:?}: expected <event id>-<n>"))?;
        Ok(Self {
            event: Ulid::from_string(event)
                .map_err(|e| format!("invalid delivery id {s:?}: {e}"))?,
            seq: seq
                .parse()
                .map_err(|_| format!("invalid delivery id {s:?}: bad sequence number"))?,
        })
    }
}

impl Serialize for DeliveryId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeliveryId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

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

/// Longest idempotency key, from a sender or an emitting handler.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum Outcome {
    /// `handle` returned `ok`; the attempt's effects are committed.
    Ok,
    /// `handle` asked to be retried.
    Retry(String),
    /// `handle` rejected the event; it is not retried.
    Reject(String),
    /// The attempt used up its fuel.
    OutOfFuel,
    /// The attempt ran past its wall-clock deadline.
    Deadline,
    /// The attempt tried to grow memory past its cap.
    Memory,
    /// The guest trapped (a panic, an unreachable, a bad access…).
    Trap(String),
}

impl Outcome {
    /// Whether a later attempt may succeed where this one failed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::Reject(_))
    }

    /// The outcome's name, as shown in the API and in metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Retry(_) => "retry",
            Outcome::Reject(_) => "reject",
            Outcome::OutOfFuel => "out_of_fuel",
            Outcome::Deadline => "deadline",
            Outcome::Memory => "memory",
            Outcome::Trap(_) => "trap",
        }
    }
}

/// Severity of a plugin log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// One line a plugin logged during an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<(String, String)>,
}

/// The record of one attempt: what ran, what it cost and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub delivery: DeliveryId,
    /// 1 for the first attempt.
    pub number: u32,
    pub plugin: String,
    /// sha256 of the component that ran, hex.
    pub version: String,
    pub started_at_ms: u64,
    pub duration_us: u64,
    pub fuel_consumed: u64,
    pub peak_memory_bytes: u64,
    pub outcome: Outcome,
    pub logs: Vec<LogLine>,
    pub stdout: String,
    pub stderr: String,
    /// True when logs or output were cut at the per-attempt cap.
    pub truncated: bool,
    /// What the attempt read from kv and would write and emit; `None` in
    /// records older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effects: Option<EffectsRecord>,
    /// Outbound HTTP calls the attempt made or tried, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpCall>,
    /// What the record left out to stay within its bound (`truncated` is
    /// then set too); `None` when nothing was left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omitted: Option<Omitted>,
}

/// The entries an attempt record left out, past its bound: per list, how
/// many and a digest of them, so two runs can still be compared whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Omitted {
    /// Log lines dropped past the per-attempt log cap.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub log_lines: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_reads: Option<Tail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_writes: Option<Tail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emitted: Option<Tail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Tail>,
}

/// The end of a list left out of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tail {
    /// Entries left out.
    pub count: u64,
    /// sha256 over each left-out entry's JSON, in order, hex.
    pub sha256: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One outbound HTTP call: never its path, headers or bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpCall {
    pub method: String,
    /// `scheme://host:port`.
    pub origin: String,
    /// The response status, when one came.
    pub status: Option<u16>,
    /// Until the response headers (or the failure).
    pub duration_ms: u64,
    /// Why it failed or was denied.
    pub error: Option<String>,
}

/// An attempt's kv reads, kv writes and emitted events, as recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectsRecord {
    /// True when the writes and emits were committed (the attempt
    /// succeeded); else they were discarded.
    pub committed: bool,
    /// Each key's first read from the store, with the value seen: a shadow
    /// run of this event reads these again.
    pub kv_reads: Vec<KvRecord>,
    /// The last write to each key (`value: null` deletes).
    pub kv_writes: Vec<KvRecord>,
    pub emitted: Vec<EmitRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvRecord {
    pub key: String,
    /// `None`: absent (read) or deleted (write).
    pub value: Option<Blob>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmitRecord {
    pub topic: String,
    pub idempotency_key: Option<String>,
    pub body: Blob,
}

/// Recorded bytes: their digest and length always, the bytes themselves
/// when at most [`Blob::KEEP_BYTES`] (as text when UTF-8, else base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    pub sha256: String,
    pub len: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

impl Blob {
    pub const KEEP_BYTES: usize = 4096;

    pub fn of(bytes: &[u8]) -> Self {
        use base64::Engine as _;
        use sha2::Digest as _;
        let kept = bytes.len() <= Self::KEEP_BYTES;
        let text = kept
            .then(|| std::str::from_utf8(bytes).ok().map(str::to_owned))
            .flatten();
        let base64 = (kept && text.is_none())
            .then(|| base64::engine::general_purpose::STANDARD.encode(bytes));
        Self {
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            len: bytes.len() as u64,
            text,
            base64,
        }
    }

    /// The bytes, when they were kept.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        use base64::Engine as _;
        match (&self.text, &self.base64) {
            (Some(text), _) => Some(text.clone().into_bytes()),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD.decode(b64).ok(),
            (None, None) => None,
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

/// What a plugin says about itself in `describe()`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Topic patterns (`*` = any run of characters, dots included).
    pub subscriptions: Vec<String>,
    pub retry: Option<RetryPolicy>,
    pub schedules: Vec<Schedule>,
}

impl Manifest {
    /// Whether any subscription matches `topic`.
    pub fn subscribes_to(&self, topic: &str) -> bool {
        self.subscriptions.iter().any(|p| topic_matches(p, topic))
    }
}

/// One version of a plugin that was loaded, for history and rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginVersion {
    pub sha256: String,
    pub loaded_at_ms: u64,
    pub size_bytes: u64,
    pub manifest: Manifest,
    /// What installed it: `file` (the plugins directory) or `rollback`.
    pub source: String,
}

/// A clock-driven event a plugin asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub name: String,
    pub cron: String,
}

/// Whether a topic pattern (`*` = any run of characters) matches a topic.
pub fn topic_matches(pattern: &str, topic: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = topic.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Checks a topic: 1–200 characters of `a-z A-Z 0-9 . _ -`.
pub fn validate_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.len() > 200 {
        return Err(format!(
            "topic must be 1 to 200 characters, got {}",
            topic.len()
        ));
    }
    if let Some(c) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic {topic:?} contains {c:?}: allowed are a-z, A-Z, 0-9, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_keep_small_values_exactly_and_large_ones_by_digest() {
        for bytes in [&b"plain text"[..], &[0xff, 0x00, 0xfe][..], &b""[..]] {
            let blob = Blob::of(bytes);
            assert_eq!(blob.bytes().as_deref(), Some(bytes));
            assert_eq!(blob.len, bytes.len() as u64);
        }
        let big = vec![b'x'; Blob::KEEP_BYTES + 1];
        let blob = Blob::of(&big);
        assert_eq!(blob.bytes(), None);
        assert_eq!(blob.sha256, Blob::of(&big).sha256);
        assert_ne!(blob.sha256, Blob::of(b"x").sha256);
    }

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

    #[test]
    fn patterns_match_like_the_design_says() {
        let cases = [
            ("stripe.*", "stripe.payment_intent.succeeded", true),
            ("stripe.*", "stripe.", true),
            ("stripe.*", "stripes.x", false),
            ("github.push", "github.push", true),
            ("github.push", "github.push.x", false),
            ("*", "anything.at.all", true),
            ("*.succeeded", "stripe.payment_intent.succeeded", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXcYb", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
        ];
        for (pattern, topic, want) in cases {
            assert_eq!(topic_matches(pattern, topic), want, "{pattern} ~ {topic}");
        }
    }

    #[test]
    fn delivery_ids_round_trip_through_text() {
        let id = DeliveryId {
            event: Ulid::new(),
            seq: 7,
        };
        assert_eq!(id.to_string().parse::<DeliveryId>(), Ok(id));
        assert!("nonsense".parse::<DeliveryId>().is_err());
    }

    #[test]
    fn topics_are_validated() {
        assert!(validate_topic("stripe.payment_intent.succeeded").is_ok());
        assert!(validate_topic("").is_err());
        assert!(validate_topic("a/b").is_err());
        assert!(validate_topic(&"a".repeat(201)).is_err());
    }
}
