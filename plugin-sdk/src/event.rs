//! The event a handler receives.

use crate::wit;
use crate::wit::hookhost::plugin::types;
use serde::de::DeserializeOwned;

/// One delivery of a stored event to this handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The host's id for the event (a ULID). Stable across retries and
    /// replays: pass it as the idempotency key of external API calls.
    pub id: String,
    /// Dot-separated topic, e.g. `stripe.payment_intent.succeeded`.
    pub topic: String,
    /// The sender's idempotency key, when it gave one.
    pub idempotency_key: Option<String>,
    /// When the host durably stored the event, in ms since the Unix epoch.
    pub received_at_ms: u64,
    /// Which attempt this is for this handler, starting at 1.
    pub attempt: u32,
    /// Request headers as received, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The `content-type` of the body, when the sender gave one.
    pub content_type: Option<String>,
    /// The raw body.
    pub body: Vec<u8>,
    /// Where the event came from; `None` for events stored by a host that
    /// did not yet keep it.
    pub provenance: Option<Provenance>,
}

/// Where an event came from. Topics a configured source produces arrive
/// only through that source, so a handler of `stripe.*` that wants to be
/// sure can check [`Event::verified_by`]`("stripe")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// `POST /events/{topic}`, with the ingest token whenever the host
    /// requires one.
    Api,
    /// A configured source's route, `POST /hooks/{name}`.
    Source {
        /// The source's name.
        name: String,
        /// Whether its signature was checked and matched.
        verified: bool,
    },
    /// Emitted by a plugin's handler.
    Emitted {
        /// The emitting plugin.
        plugin: String,
    },
    /// A schedule's tick.
    Schedule {
        /// The plugin that declares the schedule.
        plugin: String,
        /// The schedule's name.
        name: String,
    },
}

impl Event {
    /// Parses the body as JSON into `T`.
    ///
    /// With `?` in a handler, a body that does not parse rejects the event
    /// (it would not parse on a retry either).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The body as UTF-8 text, if it is valid UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the event came through source `name` with a checked
    /// signature.
    pub fn verified_by(&self, name: &str) -> bool {
        matches!(&self.provenance, Some(Provenance::Source { name: n, verified: true }) if n == name)
    }

    pub(crate) fn from_wit(e: wit::Event) -> Self {
        Self {
            id: e.id,
            topic: e.topic,
            idempotency_key: e.idempotency_key,
            received_at_ms: e.received_at_ms,
            attempt: e.attempt,
            headers: e.headers,
            content_type: e.content_type,
            body: e.body,
            provenance: e.provenance.map(|p| match p {
                types::Provenance::Api => Provenance::Api,
                types::Provenance::Source(s) => Provenance::Source {
                    name: s.name,
                    verified: s.verified,
                },
                types::Provenance::Emitted(plugin) => Provenance::Emitted { plugin },
                types::Provenance::Schedule(s) => Provenance::Schedule {
                    plugin: s.plugin,
                    name: s.name,
                },
            }),
        }
    }
}
