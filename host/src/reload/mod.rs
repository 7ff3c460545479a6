//! Loading plugins from the plugins directory into the registry.
//!
//! Only top-level `<name>.wasm` files count, `<name>` being
//! `[a-z0-9][a-z0-9-]*`. Compilation runs on the blocking pool, never on the
//! async threads. A file that fails is recorded (`GET /plugins` shows why) and
//! skipped; the host starts anyway.
//!
//! # Invariant
//! A failed load never replaces a working version.

use crate::core::Core;
use crate::model::now_ms;
use crate::runtime::{LoadError, LoadFailure, load};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    let mut loaded = 0;
    for path in files {
        if load_file(core, &path).await.is_ok() {
            loaded += 1;
        }
    }
    loaded
}

/// Loads one plugin file and swaps it into the registry, or records why not.
pub async fn load_file(core: &Arc<Core>, path: &Path) -> Result<(), LoadError> {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = file.strip_suffix(".wasm").unwrap_or(&file).to_owned();
    let result = load_checked(core, &name, path).await;
    match &result {
        Ok(()) => {}
        Err(e) => {
            tracing::error!(plugin = %name, file = %path.display(), error = %e, "plugin failed to load");
            core.registry.record_failure(
                &name,
                LoadFailure {
                    file: file.clone(),
                    error: e.to_string(),
                    at_ms: now_ms(),
                },
            );
        }
    }
    result
}

async fn load_checked(core: &Arc<Core>, name: &str, path: &Path) -> Result<(), LoadError> {
    if !load::valid_plugin_name(name) {
        return Err(LoadError::Read(format!(
            "invalid plugin name {name:?}: use lowercase letters, digits and '-', starting with a letter or digit"
        )));
    }
    let compiler = core.clone();
    let owned = path.to_owned();
    let compiled =
        tokio::task::spawn_blocking(move || load::read_and_compile(&compiler.runtime, &owned))
            .await
            .map_err(|e| LoadError::Compile(format!("compile task failed: {e}")))??;
    let limits = core.config.limits_for(name);
    let plugin = load::describe(&core.runtime, name, compiled, limits).await?;
    tracing::info!(
        plugin = %name,
        version = %plugin.version,
        subscriptions = ?plugin.manifest.subscriptions,
        "plugin loaded"
    );
    core.registry.install(plugin);
    match core.store.resume_paused(name) {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(plugin = %name, deliveries = n, "resumed paused deliveries");
            core.wake.notify_one();
        }
        Err(e) => tracing::error!(plugin = %name, error = %e, "cannot resume paused deliveries"),
    }
    Ok(())
}

/// Top-level `*.wasm` files of `dir`, sorted.
fn plugin_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_file() && path.extension().is_some_and(|e| e == "wasm") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
