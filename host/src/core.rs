//! The state every part of the host shares.

use crate::config::Config;
use crate::runtime::{Registry, Runtime};
use crate::sources::Source;
use crate::store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Notify;

/// What `http/`, `dispatch/` and `reload/` share: one per running host.
pub struct Core {
    pub config: Config,
    /// An `Arc` because attempts hand it to their sandbox's kv import.
    pub store: Arc<Store>,
    pub registry: Registry,
    pub runtime: Runtime,
    /// Wakes the dispatcher: new deliveries may be due.
    pub wake: Notify,
    /// JSON Schema contracts checked at ingest.
    pub contracts: crate::contracts::Contracts,
    /// Configured webhook sources, secrets resolved, by name.
    pub sources: BTreeMap<String, Source>,
}
