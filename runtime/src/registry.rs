//! The registry of loaded plugins, swapped atomically.
//!
//! Readers take a snapshot (`Arc` of the whole map) and never block a swap;
//! a swap builds a new map and replaces the pointer. An attempt holds its
//! `Arc<Plugin>`, so it finishes on the version it started with even if a new
//! one is installed meanwhile.

use super::world::Pre;
use crate::model::Manifest;
use crate::model::PluginLimits;
use crate::model::Route;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// One loaded version of a plugin, ready to instantiate.
pub struct Plugin {
    pub name: String,
    /// sha256 of the component's bytes, hex: the version id.
    pub version: String,
    pub size_bytes: u64,
    /// True when its compiled code came from the artifact cache.
    pub from_cache: bool,
    pub manifest: Manifest,
    pub limits: PluginLimits,
    pub loaded_at_ms: u64,
    /// The contract version the component targets, e.g. `0.2.0`.
    pub contract: &'static str,
    pub(super) pre: Pre,
    /// Bounds this plugin's concurrent attempts.
    pub permits: Arc<tokio::sync::Semaphore>,
}

impl Plugin {
    /// The same version under other limits. The concurrency bound is shared
    /// with the old one while it is unchanged.
    pub fn with_limits(&self, limits: PluginLimits) -> Plugin {
        let permits = if limits.max_concurrency == self.limits.max_concurrency {
            self.permits.clone()
        } else {
            Arc::new(tokio::sync::Semaphore::new(limits.max_concurrency))
        };
        Plugin {
            name: self.name.clone(),
            version: self.version.clone(),
            size_bytes: self.size_bytes,
            from_cache: self.from_cache,
            manifest: self.manifest.clone(),
            limits,
            loaded_at_ms: self.loaded_at_ms,
            contract: self.contract,
            pre: self.pre.clone(),
            permits,
        }
    }

    fn route(&self, idempotency_key: Option<&str>, body: &[u8]) -> Route {
        Route {
            plugin: self.name.clone(),
            order_key: self
                .limits
                .order_by
                .as_ref()
                .and_then(|by| by.key_of(idempotency_key, body)),
        }
    }
}

/// A file that failed to load, kept for `GET /plugins`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadFailure {
    pub file: String,
    pub error: String,
    pub at_ms: u64,
}

type Map<T> = Arc<BTreeMap<String, T>>;

/// Loaded plugins by name, and the last load failure per name.
#[derive(Default)]
pub struct Registry {
    // std RwLocks: held only to clone or replace an `Arc`, never across an
    // await, so they are cheaper than async locks here.
    plugins: RwLock<Map<Arc<Plugin>>>,
    failures: RwLock<Map<LoadFailure>>,
    /// Earlier versions loaded for pinned replays, by `name@sha256`.
    pinned: RwLock<Map<Arc<Plugin>>>,
    /// Plugins still loading at startup whose subscriptions are known from
    /// their last recorded version: events are routed to them meanwhile,
    /// and their deliveries wait (paused) until the load ends.
    expected: RwLock<Map<Expected>>,
}

/// A plugin expected to load, with what it subscribed to last time.
#[derive(Debug, Clone)]
pub struct Expected {
    pub manifest: Manifest,
    pub limits: PluginLimits,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The plugins loaded now.
    pub fn snapshot(&self) -> Map<Arc<Plugin>> {
        self.plugins.read().map(|m| m.clone()).unwrap_or_default()
    }

    /// The current version of plugin `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.snapshot().get(name).cloned()
    }

    /// Where an event on `topic` goes: its subscribers, each with its
    /// ordering key when the plugin orders per key.
    pub fn routes(&self, topic: &str, idempotency_key: Option<&str>, body: &[u8]) -> Vec<Route> {
        let loaded = self.snapshot();
        let mut routes: Vec<Route> = loaded
            .values()
            .filter(|p| p.manifest.subscribes_to(topic))
            .map(|p| p.route(idempotency_key, body))
            .collect();
        let expected = self.expected.read().map(|m| m.clone()).unwrap_or_default();
        for (name, e) in expected.iter() {
            if !loaded.contains_key(name) && e.manifest.subscribes_to(topic) {
                routes.push(Route {
                    plugin: name.clone(),
                    order_key: e
                        .limits
                        .order_by
                        .as_ref()
                        .and_then(|by| by.key_of(idempotency_key, body)),
                });
            }
        }
        routes
    }

    /// Routes events to `name` by `manifest` until it loads or fails to.
    pub fn expect(&self, name: &str, manifest: Manifest, limits: PluginLimits) {
        self.update(&self.expected, |m| {
            m.insert(name.to_owned(), Expected { manifest, limits });
        });
    }

    /// Plugins expected to load, not loaded yet.
    pub fn expected(&self) -> Map<Expected> {
        self.expected.read().map(|m| m.clone()).unwrap_or_default()
    }

    /// The route to plugin `name` (ordered if it is loaded and orders per key).
    pub fn route(&self, name: &str, idempotency_key: Option<&str>, body: &[u8]) -> Route {
        match self.get(name) {
            Some(p) => p.route(idempotency_key, body),
            None => Route::new(name),
        }
    }

    /// Installs `plugin` as the current version of its name and clears the
    /// name's load failure.
    pub fn install(&self, plugin: Plugin) {
        let name = plugin.name.clone();
        self.update(&self.plugins, |m| {
            m.insert(name.clone(), Arc::new(plugin));
        });
        self.update(&self.expected, |m| {
            m.remove(&name);
        });
        self.update(&self.failures, |m| {
            m.remove(&name);
        });
    }

    /// Gives every loaded plugin the limits `limits_for` says, keeping its
    /// version; attempts in flight finish under the old ones. Versions kept
    /// for pinned replays and shadow runs are dropped, to be reloaded with
    /// the new limits when next needed. Returns how many plugins changed.
    pub fn relimit(&self, limits_for: impl Fn(&str) -> PluginLimits) -> usize {
        let mut changed = 0;
        self.update(&self.plugins, |m| {
            for plugin in m.values_mut() {
                let limits = limits_for(&plugin.name);
                if limits != plugin.limits {
                    *plugin = Arc::new(plugin.with_limits(limits));
                    changed += 1;
                }
            }
        });
        self.update(&self.pinned, BTreeMap::clear);
        changed
    }

    /// Removes plugin `name`; its deliveries wait until it returns.
    pub fn remove(&self, name: &str) -> Option<Arc<Plugin>> {
        let mut removed = None;
        self.update(&self.plugins, |m| removed = m.remove(name));
        removed
    }

    /// Records that loading `name` failed; the current version (if any)
    /// keeps serving.
    pub fn record_failure(&self, name: &str, failure: LoadFailure) {
        self.update(&self.failures, |m| {
            m.insert(name.to_owned(), failure);
        });
        // Nothing will serve it: stop routing to it (the deliveries already
        // made wait, paused, for a version that loads).
        self.update(&self.expected, |m| {
            m.remove(name);
        });
    }

    /// Forgets the load failure of `name` (its file is gone).
    pub fn clear_failure(&self, name: &str) {
        self.update(&self.failures, |m| {
            m.remove(name);
        });
    }

    /// A version of `name` loaded for pinned replays, if any.
    pub fn pinned(&self, name: &str, sha256: &str) -> Option<Arc<Plugin>> {
        let key = format!("{name}@{sha256}");
        self.pinned.read().ok().and_then(|m| m.get(&key).cloned())
    }

    /// Keeps a version loaded for pinned replays.
    pub fn keep_pinned(&self, plugin: Arc<Plugin>) {
        let key = format!("{}@{}", plugin.name, plugin.version);
        self.update(&self.pinned, |m| {
            m.insert(key, plugin);
        });
    }

    /// Load failures by plugin name.
    pub fn failures(&self) -> Map<LoadFailure> {
        self.failures.read().map(|m| m.clone()).unwrap_or_default()
    }

    fn update<T: Clone>(
        &self,
        lock: &RwLock<Map<T>>,
        change: impl FnOnce(&mut BTreeMap<String, T>),
    ) {
        let mut guard = match lock.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = BTreeMap::clone(&guard);
        change(&mut next);
        *guard = Arc::new(next);
    }
}
