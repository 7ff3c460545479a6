//! The state every part of the host shares.

use crate::config::{Config, ResolvedSecrets};
use crate::model::PluginLimits;
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
    /// One lock per plugin name, held while a version is installed: a
    /// version followed from the shared store never interleaves with one
    /// loaded here.
    pub plugin_locks: std::sync::Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Turns on kv keys that attempts conflicted on (`dispatch/turns.rs`).
    pub turns: crate::dispatch::turns::Turns,
    /// JSON Schema contracts checked at ingest.
    pub contracts: crate::contracts::Contracts,
    /// Configured webhook sources, secrets resolved, by name.
    pub sources: BTreeMap<String, Source>,
    /// Topics only a source's hook or the scheduler may produce.
    pub reserved: Vec<crate::model::Reserved>,
    /// The plugin settings in force; replaced whole when the configuration
    /// file is reloaded. `config` above keeps what the host started with.
    pub settings: std::sync::RwLock<Arc<Settings>>,
}

/// Plugin settings (`[defaults]`, `[plugins.*]`) and their resolved secrets.
pub struct Settings {
    pub config: Config,
    pub secrets: ResolvedSecrets,
}

impl Core {
    /// The install lock of plugin `name`.
    pub fn plugin_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = match self.plugin_locks.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        locks.entry(name.to_owned()).or_default().clone()
    }

    /// A core for `config`, with nothing loaded yet.
    pub fn new(
        config: Config,
        store: Store,
        runtime: Runtime,
        sources: BTreeMap<String, Source>,
        contracts: crate::contracts::Contracts,
        secrets: ResolvedSecrets,
    ) -> Self {
        let settings = Settings {
            config: config.clone(),
            secrets,
        };
        Self {
            reserved: crate::sources::reserved_topics(&config.sources),
            config,
            store: Arc::new(store),
            registry: Registry::new(),
            runtime,
            wake: Notify::new(),
            plugin_locks: std::sync::Mutex::new(BTreeMap::new()),
            turns: Default::default(),
            contracts,
            sources,
            settings: std::sync::RwLock::new(Arc::new(settings)),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> Arc<Settings> {
        match self.settings.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Plugin `name`'s limits, grants and secrets as configured now.
    pub fn limits_for(&self, name: &str) -> PluginLimits {
        let s = self.settings();
        s.config.limits_with_secrets(name, &s.secrets)
    }
}
