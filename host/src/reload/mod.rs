//! Loading plugins from the plugins directory into the registry, at startup
//! and whenever a file changes ([`watch`]).
//!
//! Only top-level `<name>.wasm` files count, `<name>` being
//! `[a-z0-9][a-z0-9-]*`. Compilation runs on the blocking pool, never on the
//! async threads, and uses the artifact cache so unchanged plugins are not
//! recompiled. A file that fails is recorded (`GET /plugins` shows why) and
//! skipped.
//!
//! # Invariants
//! - A failed load never replaces a working version.
//! - Installing a version with a new sha256 appends it to the plugin's
//!   history; loading the same bytes again changes nothing.

pub mod watch;

use crate::core::Core;
use crate::model::{PluginVersion, now_ms};
use crate::runtime::{LoadError, LoadFailure, Plugin, load};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a load did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// A new version is serving.
    Installed,
    /// The file holds the version already serving.
    Unchanged,
}

/// Loads the plugins directory when the host starts. A plugin never seen
/// before loads before this returns: until it describes itself nothing can
/// route events to it. A plugin with a recorded version is *expected* under
/// its last manifest and loads in the background, so a large guest
/// compiling for seconds never holds up ingest: events are routed to it
/// meanwhile and its deliveries wait, paused, until it serves. Returns how
/// many loaded now, and the background loads (how many of them loaded).
pub async fn load_at_start(core: &Arc<Core>) -> (usize, tokio::task::JoinHandle<usize>) {
    let dir = &core.config.plugins_dir;
    let files = plugin_files(dir).unwrap_or_else(|e| {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot list the plugins directory; starting with no plugins");
        Vec::new()
    });
    let (mut now, mut later) = (Vec::new(), Vec::new());
    for path in files {
        let last = match plugin_name(&path) {
            Some(name) => match core.store.versions(&name).await {
                Ok(mut history) => history.pop().map(|version| (name, version)),
                Err(_) => None,
            },
            None => None,
        };
        match last {
            Some((name, version)) => {
                core.registry
                    .expect(&name, version.manifest, core.limits_for(&name));
                later.push(path);
            }
            None => now.push(path),
        }
    }
    let loaded = futures_util::future::join_all(now.iter().map(|path| load_file(core, path)))
        .await
        .into_iter()
        .filter(Result::is_ok)
        .count();
    let core = core.clone();
    let background = tokio::spawn(async move {
        let loads = later.iter().map(|path| load_file(&core, path));
        let loaded = futures_util::future::join_all(loads)
            .await
            .into_iter()
            .filter(Result::is_ok)
            .count();
        if loaded > 0 {
            core.wake.notify_one();
        }
        loaded
    });
    (loaded, background)
}

/// Loads every plugin in the configured directory; returns how many loaded.
pub async fn load_all(core: &Arc<Core>) -> usize {
    let dir = &core.config.plugins_dir;
    let files = match plugin_files(dir) {
        Ok(files) => files,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot list the plugins directory; starting with no plugins");
            return 0;
        }
    };
    // All at once: cached plugins load in milliseconds while a large guest
    // compiles on the blocking pool.
    let loads = files.iter().map(|path| load_file(core, path));
    futures_util::future::join_all(loads)
        .await
        .into_iter()
        .filter(Result::is_ok)
        .count()
}

/// The plugin name a file stands for: its name without `.wasm`, for
/// top-level, non-hidden `.wasm` files.
pub fn plugin_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let name = file.strip_suffix(".wasm")?;
    (!name.starts_with('.')).then(|| name.to_owned())
}

/// Loads one plugin file and swaps it into the registry, or records why not.
pub async fn load_file(core: &Arc<Core>, path: &Path) -> Result<Loaded, LoadError> {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = plugin_name(path).unwrap_or_else(|| file.clone());
    let result = load_checked(core, &name, path).await;
    if !matches!(result, Ok(Loaded::Unchanged)) {
        crate::metrics::reload(&name, result.is_ok());
    }
    if let Err(e) = &result {
        tracing::error!(plugin = %name, file = %path.display(), error = %e, "plugin failed to load");
        core.registry.record_failure(
            &name,
            LoadFailure {
                file,
                error: e.to_string(),
                at_ms: now_ms(),
            },
        );
    }
    result
}

async fn load_checked(core: &Arc<Core>, name: &str, path: &Path) -> Result<Loaded, LoadError> {
    if !crate::model::valid_plugin_name(name) {
        return Err(LoadError::Read(format!(
            "invalid plugin name {name:?}: use lowercase letters, digits and '-', starting with a letter or digit"
        )));
    }
    // Read under the plugin's lock: bytes read before another version was
    // installed (one followed from the store, say) must not replace it.
    let lock = core.plugin_lock(name);
    let _held = lock.lock().await;
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| LoadError::Read(e.to_string()))?;
    // Shared with other hosts unless the shared version is newer than the
    // file (changed while this host was down, say).
    let modified = modified_ms(path).await.unwrap_or_else(now_ms);
    install_locked(core, name, bytes, "file", Publish::UnlessSince(modified)).await
}

/// When a file was last changed, in ms since the epoch.
async fn modified_ms(path: &Path) -> Option<u64> {
    let modified = tokio::fs::metadata(path).await.ok()?.modified().ok()?;
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(since.as_millis() as u64)
}

/// Whether a version installed on this host becomes the one every host
/// sharing the store runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publish {
    Always,
    /// Unless the shared version changed at or after this time (ms).
    UnlessSince(u64),
    /// It came from the store.
    Never,
}

/// Compiles (or takes from the cache), describes and installs `bytes` as
/// plugin `name`, unless that exact version is already serving. The caller
/// holds the plugin's install lock ([`Core::plugin_lock`]).
async fn install_locked(
    core: &Arc<Core>,
    name: &str,
    bytes: Vec<u8>,
    source: &str,
    publish: Publish,
) -> Result<Loaded, LoadError> {
    let sha256 = load::sha256_hex(&bytes);
    if core.registry.get(name).is_some_and(|p| p.version == sha256) {
        // A failure recorded for a half-written file is over.
        core.registry.clear_failure(name);
        return Ok(Loaded::Unchanged);
    }
    let shared = (publish != Publish::Never && core.store.shared()).then(|| bytes.clone());
    let compiler = core.clone();
    let compiled = tokio::task::spawn_blocking(move || load::compile(&compiler.runtime, &bytes))
        .await
        .map_err(|e| LoadError::Compile(format!("compile task failed: {e}")))??;
    let limits = core.limits_for(name);
    let plugin = load::describe(&core.runtime, name, compiled, limits).await?;
    tracing::info!(
        plugin = %name,
        version = %plugin.version,
        from_cache = plugin.from_cache,
        subscriptions = ?plugin.manifest.subscriptions,
        "plugin loaded"
    );
    record_version(core, &plugin, source).await;
    core.registry.install(plugin);
    resume(core, name).await;
    if let Some(bytes) = shared {
        let unless_since = match publish {
            Publish::UnlessSince(t) => Some(t),
            _ => None,
        };
        match core
            .store
            .publish_plugin(name, &sha256, &bytes, unless_since)
            .await
        {
            Ok(true) => {
                tracing::info!(plugin = %name, version = %sha256, "version published to every host")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(plugin = %name, error = %e, "cannot publish the version to the other hosts")
            }
        }
    }
    Ok(Loaded::Installed)
}

async fn record_version(core: &Core, plugin: &Plugin, source: &str) {
    let known = core
        .store
        .versions(&plugin.name)
        .await
        .map(|history| history.last().is_some_and(|v| v.sha256 == plugin.version))
        .unwrap_or(false);
    if known {
        return;
    }
    let version = PluginVersion {
        sha256: plugin.version.clone(),
        loaded_at_ms: plugin.loaded_at_ms,
        size_bytes: plugin.size_bytes,
        manifest: plugin.manifest.clone(),
        source: source.to_owned(),
    };
    if let Err(e) = core.store.record_version(&plugin.name, &version).await {
        tracing::error!(plugin = %plugin.name, error = %e, "cannot record the plugin version");
    }
}

/// Resumes `plugin`'s paused deliveries, its outbox's with them.
async fn resume(core: &Core, plugin: &str) {
    for name in [plugin.to_owned(), crate::model::outbox_route(plugin)] {
        resume_route(core, &name).await;
    }
}

async fn resume_route(core: &Core, name: &str) {
    match core.store.resume_paused(name).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(plugin = %name, deliveries = n, "resumed paused deliveries");
            core.wake.notify_one();
        }
        Err(e) => tracing::error!(plugin = %name, error = %e, "cannot resume paused deliveries"),
    }
}

/// Version `sha256` of plugin `name`, for a pinned replay: the current one
/// if it is that version, else loaded (once) from the artifact cache.
pub async fn load_pinned(
    core: &Arc<Core>,
    name: &str,
    sha256: &str,
) -> Result<Arc<Plugin>, LoadError> {
    if let Some(current) = core.registry.get(name).filter(|p| p.version == sha256) {
        return Ok(current);
    }
    if let Some(kept) = core.registry.pinned(name, sha256) {
        return Ok(kept);
    }
    let bytes = core
        .runtime
        .component_bytes(sha256)
        .ok_or_else(|| LoadError::Read(format!("version {sha256} of {name} is not kept")))?;
    load_candidate(core, name, bytes).await
}

/// Compiles `bytes` as a version of plugin `name` that is kept (in the
/// artifact cache and loaded, for pinned replays and shadow runs) but not
/// installed.
pub async fn load_candidate(
    core: &Arc<Core>,
    name: &str,
    bytes: Vec<u8>,
) -> Result<Arc<Plugin>, LoadError> {
    let compiler = core.clone();
    let compiled = tokio::task::spawn_blocking(move || load::compile(&compiler.runtime, &bytes))
        .await
        .map_err(|e| LoadError::Compile(format!("compile task failed: {e}")))??;
    let plugin =
        Arc::new(load::describe(&core.runtime, name, compiled, core.limits_for(name)).await?);
    core.registry.keep_pinned(plugin.clone());
    Ok(plugin)
}

/// Why the configuration file could not be applied; the settings in force
/// stay.
#[derive(Debug, thiserror::Error)]
pub enum ConfigReloadError {
    #[error("the host was started without a configuration file: there is nothing to reload")]
    NoFile,
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(
        "memory_mb of {wanted} MiB is above the {limit} MiB the host started with: that needs a restart"
    )]
    MemoryNeedsRestart { wanted: u64, limit: u64 },
    #[error(
        "a plugin timeout_ms of {wanted} ms is not shorter than the lease of {lease_ms} ms the host started with: \
         another host could run a delivery still running here; raise [postgres] lease and restart"
    )]
    TimeoutPastLease { wanted: u64, lease_ms: u64 },
}

/// Re-reads the configuration file and applies its `[defaults]` and
/// `[plugins.*]` tables (limits, retry, ordering, config values, secrets) to
/// every loaded plugin and to later loads. Other settings need a restart.
/// Returns how many loaded plugins changed.
pub fn reload_config(core: &Core) -> Result<usize, ConfigReloadError> {
    let path = core
        .config
        .source
        .as_ref()
        .ok_or(ConfigReloadError::NoFile)?;
    let config = crate::config::Config::from_file(path)?;
    let secrets = config.resolve_secrets(|var| std::env::var(var).ok())?;
    let (wanted, limit) = (config.max_memory_bytes(), core.runtime.max_memory_bytes());
    if wanted > limit {
        return Err(ConfigReloadError::MemoryNeedsRestart {
            wanted: wanted >> 20,
            limit: limit >> 20,
        });
    }
    // The lease in force is the one the host started with, whatever the
    // file now says.
    if let Some(lease) = core.store.lease() {
        let lease_ms = lease.as_millis() as u64;
        let wanted = config.longest_timeout_ms();
        if wanted >= lease_ms {
            return Err(ConfigReloadError::TimeoutPastLease { wanted, lease_ms });
        }
    }
    let settings = Arc::new(crate::core::Settings { config, secrets });
    match core.settings.write() {
        Ok(mut s) => *s = settings,
        Err(poisoned) => *poisoned.into_inner() = settings,
    }
    let changed = core.registry.relimit(|name| core.limits_for(name));
    tracing::info!(file = %path.display(), plugins_changed = changed, "configuration reloaded");
    Ok(changed)
}

/// Takes plugin `name` out of service (its file is gone). Attempts in
/// flight finish; its pending deliveries pause until it returns.
pub async fn unload(core: &Core, name: &str) {
    core.registry.clear_failure(name);
    if let Some(plugin) = core.registry.remove(name) {
        tracing::warn!(plugin = %name, version = %plugin.version, "plugin file removed: plugin unloaded");
    }
    match core.store.unpublish_plugin(name).await {
        Ok(true) => tracing::info!(plugin = %name, "plugin removed on every host"),
        Ok(false) => {}
        Err(e) => {
            tracing::error!(plugin = %name, error = %e, "cannot remove the plugin on the other hosts")
        }
    }
}

/// Why a rollback could not happen.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error("plugin {0:?} has no version history")]
    NoHistory(String),
    #[error("plugin {0:?} has no earlier version to roll back to")]
    NoEarlierVersion(String),
    #[error("version {0} is not in the plugin's history")]
    UnknownVersion(String),
    #[error("the bytes of version {0} are no longer kept")]
    Missing(String),
    #[error("{0}")]
    Load(#[from] LoadError),
    #[error("cannot write the plugin file: {0}")]
    Write(String),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
}

/// Serves an earlier version of plugin `name`: `sha256`, or else the latest
/// version before the current one. The plugin file is rewritten with those
/// bytes, so a restart keeps the rollback.
pub async fn rollback(
    core: &Arc<Core>,
    name: &str,
    sha256: Option<&str>,
) -> Result<Arc<Plugin>, RollbackError> {
    let history = core.store.versions(name).await?;
    if history.is_empty() {
        return Err(RollbackError::NoHistory(name.to_owned()));
    }
    let current = core.registry.get(name).map(|p| p.version.clone());
    let target = match sha256 {
        Some(sha) => history
            .iter()
            .find(|v| v.sha256 == sha)
            .ok_or_else(|| RollbackError::UnknownVersion(sha.to_owned()))?,
        None => history
            .iter()
            .rev()
            .find(|v| Some(&v.sha256) != current.as_ref())
            .ok_or_else(|| RollbackError::NoEarlierVersion(name.to_owned()))?,
    };
    let bytes = match core.runtime.component_bytes(&target.sha256) {
        Some(bytes) => bytes,
        // Loaded on another host sharing the store.
        None => core
            .store
            .plugin_blob(&target.sha256)
            .await?
            .ok_or_else(|| RollbackError::Missing(target.sha256.clone()))?,
    };
    {
        // The file is rewritten under the same hold of the plugin's lock as
        // the install (as `follow_once` does): a reload from the file that
        // took the lock in between would read the version rolled back from
        // and serve it again.
        let lock = core.plugin_lock(name);
        let _held = lock.lock().await;
        install_locked(core, name, bytes.clone(), "rollback", Publish::Always).await?;
        write_plugin_file(core, name, &bytes, "rollback")
            .await
            .map_err(|e| RollbackError::Write(e.to_string()))?;
    }
    core.registry
        .get(name)
        .ok_or_else(|| RollbackError::Missing(target.sha256.clone()))
}

/// Writes `bytes` as plugin `name`'s file, atomically, so a restart serves
/// what is serving now. The watcher sees the new file and finds its version
/// already serving.
async fn write_plugin_file(
    core: &Core,
    name: &str,
    bytes: &[u8],
    why: &str,
) -> std::io::Result<()> {
    let dir = &core.config.plugins_dir;
    let tmp = dir.join(format!(".{name}.wasm.{why}"));
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, dir.join(format!("{name}.wasm"))).await
}

/// How often a host sharing its store looks for versions published by the
/// others.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The last change to each plugin this host applied: `seq` of
/// [`crate::store::Published`].
pub type Applied = std::collections::HashMap<String, u64>;

/// Runs what the shared store says is current, once: installs each plugin
/// version published since `applied` (writing its file, so a restart serves
/// it too) and unloads the plugins removed. Returns how many changed here.
pub async fn follow_once(core: &Arc<Core>, applied: &mut Applied) -> usize {
    let published = match core.store.published_plugins().await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the plugin versions other hosts published");
            return 0;
        }
    };
    let mut changed = 0;
    for p in published {
        if applied.get(&p.plugin).is_some_and(|seq| *seq >= p.seq) {
            continue;
        }
        applied.insert(p.plugin.clone(), p.seq);
        // Decided and installed under the plugin's lock, from a fresh read:
        // a version loaded here meanwhile was published after `p`, and a
        // stale `p` must not replace it.
        let lock = core.plugin_lock(&p.plugin);
        let _held = lock.lock().await;
        match core.store.published_plugins().await {
            Ok(now) if now.iter().any(|q| q.plugin == p.plugin && q.seq == p.seq) => {}
            Ok(_) => {
                // Changed again: the next pass applies the newer change.
                applied.remove(&p.plugin);
                continue;
            }
            Err(e) => {
                applied.remove(&p.plugin);
                tracing::warn!(plugin = %p.plugin, error = %e, "cannot read the plugin versions other hosts published");
                continue;
            }
        }
        let serving = core.registry.get(&p.plugin).map(|c| c.version.clone());
        let file = core.config.plugins_dir.join(format!("{}.wasm", p.plugin));
        if modified_ms(&file).await.is_some_and(|m| m > p.changed_ms) {
            // Changed here after the shared change (while this host was
            // down, say): the file wins, and its load publishes it.
            continue;
        }
        match &p.sha256 {
            Some(sha) if serving.as_ref() != Some(sha) => {
                let bytes = match core.store.plugin_blob(sha).await {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => {
                        tracing::error!(plugin = %p.plugin, version = %sha, "a published version has no bytes");
                        continue;
                    }
                    Err(e) => {
                        // Try again on the next pass.
                        applied.remove(&p.plugin);
                        tracing::warn!(plugin = %p.plugin, error = %e, "cannot read a published version");
                        continue;
                    }
                };
                match install_locked(core, &p.plugin, bytes.clone(), "store", Publish::Never).await
                {
                    Ok(_) => {
                        changed += 1;
                        tracing::info!(plugin = %p.plugin, version = %sha, "serving the version another host published");
                        if let Err(e) = write_plugin_file(core, &p.plugin, &bytes, "store").await {
                            tracing::warn!(plugin = %p.plugin, error = %e, "cannot write the plugin file");
                        }
                    }
                    Err(e) => {
                        tracing::error!(plugin = %p.plugin, version = %sha, error = %e, "a published version failed to load here");
                        core.registry.record_failure(
                            &p.plugin,
                            LoadFailure {
                                file: format!("published version {sha}"),
                                error: e.to_string(),
                                at_ms: now_ms(),
                            },
                        );
                    }
                }
            }
            None if serving.is_some() || file.exists() => {
                changed += 1;
                if let Err(e) = tokio::fs::remove_file(&file).await
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(plugin = %p.plugin, error = %e, "cannot remove the plugin file");
                }
                unload(core, &p.plugin).await;
            }
            _ => {}
        }
    }
    // A host without a plugin (not followed yet, or failing to load it
    // here) pauses its deliveries; any host serving it takes them back.
    for name in core.registry.snapshot().keys() {
        resume(core, name).await;
    }
    changed
}

/// [`follow_once`] every [`FOLLOW_EVERY`] until `stop` turns true.
pub async fn follow(
    core: Arc<Core>,
    mut applied: Applied,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_EVERY) => {}
            _ = stop.changed() => return,
        }
        follow_once(&core, &mut applied).await;
    }
}

/// Top-level `*.wasm` files of `dir`, sorted.
fn plugin_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_file() && plugin_name(&path).is_some() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
