//! Attempts: what ran, what it cost, how it ended and what it left.

use serde::{Deserialize, Serialize};

use crate::ids::DeliveryId;

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
    /// The message a retry, reject or trap carries.
    pub fn message(&self) -> Option<&str> {
        match self {
            Outcome::Retry(m) | Outcome::Reject(m) | Outcome::Trap(m) => Some(m),
            _ => None,
        }
    }

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
    /// The clock and secure random reads the attempt made, for an exact
    /// replay; `None` when it made none (and in older records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<crate::Inputs>,
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
    /// Answered from the delivery's journal (a retry repeating an earlier
    /// attempt's call): it did not reach the network.
    #[serde(default, skip_serializing_if = "is_false")]
    pub journaled: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
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
}
