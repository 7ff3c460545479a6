//! What a successful attempt leaves: its routes, its buffered kv writes and
//! emitted events, and the one thing the runtime reads from the store, kv.

use std::future::Future;
use std::pin::Pin;

use crate::event::NewEvent;

/// Where an event goes: one plugin, and for a plugin with per-key ordering
/// the key its delivery is ordered by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub plugin: String,
    pub order_key: Option<String>,
}

impl Route {
    /// A route without ordering.
    pub fn new(plugin: impl Into<String>) -> Self {
        Self {
            plugin: plugin.into(),
            order_key: None,
        }
    }
}

/// An event a plugin emitted, with the plugins subscribed to its topic.
#[derive(Debug, Clone)]
pub struct Emitted {
    pub event: NewEvent,
    pub subscribers: Vec<Route>,
}

/// A successful attempt's buffered effects.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    /// Every kv key the attempt read from the store, with the version it saw
    /// (0 for absent).
    pub reads: Vec<(String, u64)>,
    /// The last write to each key: `None` deletes it.
    pub writes: Vec<(String, Option<Vec<u8>>)>,
    pub emitted: Vec<Emitted>,
}

/// What the runtime reads a plugin's kv through: the store implements it,
/// and the runtime names nothing else of the store.
pub trait KvRead: Send + Sync {
    /// The version and value of `key` in `plugin`'s kv space, or `None`.
    /// An `Err` is the store's failure, as text for the attempt's error.
    #[allow(clippy::type_complexity)]
    fn kv_read<'a>(
        &'a self,
        plugin: &'a str,
        key: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Option<(u64, Vec<u8>)>, String>> + Send + 'a>>;
}
