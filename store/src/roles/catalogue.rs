//! The plugin catalogue: loaded versions, versions published to every
//! host, their bytes, and each plugin's kv reads.

use crate::model::PluginVersion;
use crate::{Backend, Published, Store, StoreError};

impl Store {
    /// The version and value of `key` in `plugin`'s kv space.
    pub async fn kv_get(
        &self,
        plugin: &str,
        key: &str,
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.kv_get(plugin, key),
            Backend::Postgres(p) => p.kv_get(plugin, key).await,
        }
    }

    /// Appends a loaded version to a plugin's history.
    pub async fn record_version(
        &self,
        plugin: &str,
        version: &PluginVersion,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.record_version(plugin, version),
            Backend::Postgres(p) => p.record_version(plugin, version).await,
        }
    }

    /// Makes `sha256` (whose bytes are `bytes`) the version of `plugin` that
    /// every host sharing the store runs, unless it already is, or (with
    /// `unless_since`) the shared version changed at or after that time.
    /// Returns whether it changed; a store of one host keeps nothing.
    pub async fn publish_plugin(
        &self,
        plugin: &str,
        sha256: &str,
        bytes: &[u8],
        unless_since: Option<u64>,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Embedded(_) => Ok(false),
            Backend::Postgres(p) => p.publish_plugin(plugin, sha256, bytes, unless_since).await,
        }
    }

    /// Marks `plugin` removed for every host sharing the store.
    pub async fn unpublish_plugin(&self, plugin: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Embedded(_) => Ok(false),
            Backend::Postgres(p) => p.unpublish_plugin(plugin).await,
        }
    }

    /// Every plugin's shared current version (none for a store of one host).
    pub async fn published_plugins(&self) -> Result<Vec<Published>, StoreError> {
        match &self.backend {
            Backend::Embedded(_) => Ok(Vec::new()),
            Backend::Postgres(p) => p.published_plugins().await,
        }
    }

    /// The bytes of a published version.
    pub async fn plugin_blob(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.backend {
            Backend::Embedded(_) => Ok(None),
            Backend::Postgres(p) => p.plugin_blob(sha256).await,
        }
    }

    /// A plugin's loaded versions, oldest first.
    pub async fn versions(&self, plugin: &str) -> Result<Vec<PluginVersion>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.versions(plugin),
            Backend::Postgres(p) => p.versions(plugin).await,
        }
    }
}

impl crate::model::KvRead for Store {
    fn kv_read<'a>(
        &'a self,
        plugin: &'a str,
        key: &'a str,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Option<(u64, Vec<u8>)>, String>> + Send + 'a>,
    > {
        Box::pin(async move { self.kv_get(plugin, key).await.map_err(|e| e.to_string()) })
    }
}
