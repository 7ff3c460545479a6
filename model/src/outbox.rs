//! Requests a handler queued with `outbox.send-after-commit`: committed with
//! the attempt's success as an event of topic [`OUTBOX_TOPIC`], delivered to
//! the route [`outbox_route`] of the plugin, which the host serves itself by
//! sending the request.
//!
//! # Invariants
//! - Only the runtime makes outbox events with that route: a handler cannot
//!   `emit` the topic, and events posted with it reach no outbox route.
//! - No secret value is stored: the runtime replaces each with its
//!   placeholder, and [`OutboxRequest::with_secrets`] puts it back only in
//!   the request being sent.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The topic of the events that carry outbox requests.
pub const OUTBOX_TOPIC: &str = "hookhost.outbox";
/// Most requests one attempt may queue.
pub const MAX_OUTBOX_PER_ATTEMPT: usize = 16;
/// The bound on one try when the request gives none.
pub const OUTBOX_DEFAULT_TIMEOUT_MS: u32 = 30_000;

const ROUTE_PREFIX: &str = "outbox:";

/// The delivery route of `plugin`'s outbox. A plugin name never holds a
/// `:`, so no plugin can be named like it.
pub fn outbox_route(plugin: &str) -> String {
    format!("{ROUTE_PREFIX}{plugin}")
}

/// The plugin whose outbox `route` is, when it is one.
pub fn outbox_owner(route: &str) -> Option<&str> {
    route.strip_prefix(ROUTE_PREFIX)
}

/// The placeholder stored in place of secret `key`'s value.
pub fn secret_placeholder(key: &str) -> String {
    format!("[redacted secret {key}]")
}

/// One queued request, as its event's JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRequest {
    pub method: String,
    pub url: String,
    /// Without `Idempotency-Key`, which is [`Self::idempotency_key`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// The body, when it is UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The body, base64, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    /// Sent as `Idempotency-Key` with every try; `None` sends none.
    pub idempotency_key: Option<String>,
    /// The bound on one try.
    pub timeout_ms: u32,
}

impl OutboxRequest {
    /// Stores `bytes` as text when they are UTF-8, else as base64.
    pub fn set_body(&mut self, bytes: Vec<u8>) {
        match String::from_utf8(bytes) {
            Ok(text) => self.body = Some(text),
            Err(e) => {
                self.body_base64 =
                    Some(base64::engine::general_purpose::STANDARD.encode(e.as_bytes()))
            }
        }
    }

    /// The body's bytes; empty when there is none.
    pub fn body_bytes(&self) -> Result<Vec<u8>, String> {
        match (&self.body, &self.body_base64) {
            (Some(text), _) => Ok(text.clone().into_bytes()),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("body_base64: {e}")),
            (None, None) => Ok(Vec::new()),
        }
    }

    /// The request with each secret's placeholder replaced by its value.
    pub fn with_secrets<'a>(&self, secrets: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut request = self.clone();
        for (key, value) in secrets {
            let placeholder = secret_placeholder(key);
            let put = |text: &mut String| {
                if text.contains(&placeholder) {
                    *text = text.replace(&placeholder, value);
                }
            };
            put(&mut request.url);
            for (_, v) in &mut request.headers {
                put(v);
            }
            if let Some(body) = &mut request.body {
                put(body);
            }
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_names_its_owner_and_no_plugin_name_is_a_route() {
        assert_eq!(outbox_owner(&outbox_route("shop")), Some("shop"));
        assert_eq!(outbox_owner("shop"), None);
        assert!(!crate::valid_plugin_name(&outbox_route("shop")));
    }

    #[test]
    fn bodies_keep_their_bytes_and_secrets_come_back_only_when_asked() {
        let mut r = OutboxRequest {
            method: "POST".into(),
            url: "https://api.example.com/v1?k=[redacted secret token]".into(),
            headers: vec![(
                "authorization".into(),
                "Bearer [redacted secret token]".into(),
            )],
            body: None,
            body_base64: None,
            idempotency_key: Some("k".into()),
            timeout_ms: 1000,
        };
        r.set_body(vec![0xff, 0, 1]);
        assert_eq!(r.body_bytes().expect("bytes"), vec![0xff, 0, 1]);
        r.body_base64 = None;
        r.set_body(b"{\"t\":\"[redacted secret token]\"}".to_vec());
        let sent = r.with_secrets([("token", "sk_live_1")]);
        assert_eq!(sent.headers[0].1, "Bearer sk_live_1");
        assert_eq!(sent.url, "https://api.example.com/v1?k=sk_live_1");
        assert_eq!(sent.body.as_deref(), Some("{\"t\":\"sk_live_1\"}"));
        assert!(r.headers[0].1.contains("[redacted secret token]"));
    }
}
