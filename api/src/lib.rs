//! The admin API's requests and answers, as types the server builds and the
//! CLI reads, and [`Client`], a typed client of it.
//!
//! The server answers with these types and the client decodes them, so a
//! renamed or retyped field fails to compile on both sides instead of
//! reaching a user as an empty column. `docs/api.md` lists every route and
//! the type it answers with.

mod client;
mod events;
mod plugins;
mod redrive;
mod shadow;

pub use client::{Client, ClientError, EventFilter, Query, encode};
pub use events::*;
pub use plugins::*;
pub use redrive::*;
pub use shadow::*;

use serde::{Deserialize, Serialize};

/// Every error answer: what was wrong, for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// `GET /healthz`: `ok` while the store takes writes (200), else
/// `store unavailable` and why (503).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
