//! The journal of a delivery's outbound calls: each call a handler made
//! through `http.fetch`, with the whole answer it got, durable before the
//! handler saw the answer. A retry of the delivery runs the handler again
//! from the start; while its calls match the journal in order, each is
//! answered from it and never reaches the network.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::future::Future;
use std::pin::Pin;

use crate::ids::DeliveryId;

/// Calls journaled per delivery at most; later calls go out unjournaled.
pub const MAX_JOURNALED_CALLS: u32 = 256;

/// One answered call: what was asked (by digest) and the whole answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The call's place among the delivery's calls: 0, 1, …
    pub index: u32,
    /// [`request_digest`] of the call: a retry's call at the same place is
    /// answered from this entry only if its digest is the same.
    pub request: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    #[serde(with = "base64_bytes")]
    pub body: Vec<u8>,
}

/// What identifies a call: its method, URL, idempotency key and body.
pub fn request_digest(method: &str, url: &str, key: Option<&str>, body: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [
        method.as_bytes(),
        url.as_bytes(),
        key.unwrap_or("").as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(body);
    hex::encode(h.finalize())
}

type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// Where the runtime keeps a delivery's journal: the store implements it.
pub trait Journal: Send + Sync {
    /// The delivery's journaled calls, in order.
    fn journaled(&self, delivery: DeliveryId) -> Answer<'_, Vec<JournalEntry>>;

    /// Adds `entry` to the delivery's journal; returns once it is durable.
    fn journal<'a>(&'a self, delivery: DeliveryId, entry: &'a JournalEntry) -> Answer<'a, ()>;
}

/// What a live attempt reads and writes beside its effects: kv, and its
/// delivery's journal. The store is one.
pub trait AttemptStore: crate::KvRead + Journal {}

impl<T: crate::KvRead + Journal> AttemptStore for T {}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_known_by_its_method_url_key_and_body() {
        let base = request_digest("POST", "https://a.example/x", Some("k"), b"{}");
        assert_eq!(
            base,
            request_digest("POST", "https://a.example/x", Some("k"), b"{}")
        );
        for other in [
            request_digest("PUT", "https://a.example/x", Some("k"), b"{}"),
            request_digest("POST", "https://a.example/y", Some("k"), b"{}"),
            request_digest("POST", "https://a.example/x", Some("j"), b"{}"),
            request_digest("POST", "https://a.example/x", None, b"{}"),
            request_digest("POST", "https://a.example/x", Some("k"), b"{ }"),
            // Lengths are part of the digest: moving a byte between parts
            // is another call.
            request_digest("POS", "Thttps://a.example/x", Some("k"), b"{}"),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn an_entry_keeps_any_bytes() {
        let entry = JournalEntry {
            index: 3,
            request: "d".into(),
            status: 201,
            headers: vec![("content-type".into(), "application/octet-stream".into())],
            body: vec![0, 0xff, 7],
        };
        let text = serde_json::to_string(&entry).expect("json");
        assert_eq!(
            serde_json::from_str::<JournalEntry>(&text).expect("back"),
            entry
        );
    }
}
