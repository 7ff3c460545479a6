//! The state every part of the host shares.

use crate::config::Config;
use crate::runtime::{Registry, Runtime};
use crate::store::Store;
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
}
