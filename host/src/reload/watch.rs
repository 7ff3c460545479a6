//! Hot reload: a notify watcher on the plugins directory.
//!
//! Events are only hints. For each plugin file an event names, the watcher
//! waits until the file has been quiet for [`DEBOUNCE`] (not at all after a
//! rename, which is atomic), then looks at the directory as it is: a file there is loaded (and validated in full before
//! any swap), a file gone is unloaded. That one rule covers a new file, an
//! in-place overwrite (whose first event fires before its bytes are
//! written), an atomic rename (temp file, then `mv` into place) and a delete.

use super::{load_file, plugin_name, unload};
use crate::core::Core;
use notify::event::{EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a file must be quiet before it is (re)loaded.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// Starts watching the plugins directory until `stop` turns true.
pub fn spawn(core: Arc<Core>, stop: watch::Receiver<bool>) -> notify::Result<JoinHandle<()>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = tx.send(event);
    })?;
    watcher.watch(&core.config.plugins_dir, RecursiveMode::NonRecursive)?;
    Ok(tokio::spawn(async move {
        // The watcher stops when dropped: keep it for as long as the loop.
        let _watcher = watcher;
        run(core, rx, stop).await;
    }))
}

async fn run(
    core: Arc<Core>,
    mut events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    mut stop: watch::Receiver<bool>,
) {
    // Plugin name → (file, when it will have been quiet long enough).
    let mut pending: HashMap<String, (PathBuf, Instant)> = HashMap::new();
    // Loads run as tasks of their own, so a large guest compiling for
    // seconds never holds up another plugin's reload; one load per name at
    // a time, a newer change waiting in `pending` until it ends.
    let mut loads: tokio::task::JoinSet<String> = tokio::task::JoinSet::new();
    let mut loading: std::collections::HashSet<String> = Default::default();
    while !*stop.borrow() {
        let next = pending
            .iter()
            .filter(|(name, _)| !loading.contains(*name))
            .map(|(_, (_, at))| *at)
            .min();
        let timer = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = events.recv() => match event {
                Some(Ok(event)) => {
                    // A rename is atomic: the file is whole the moment it
                    // appears. Anything else may be a write still going on.
                    let quiet = match event.kind {
                        EventKind::Modify(ModifyKind::Name(_)) => Duration::ZERO,
                        _ => DEBOUNCE,
                    };
                    for path in event.paths {
                        if let Some(name) = plugin_name(&path) {
                            pending.insert(name, (path, Instant::now() + quiet));
                        }
                    }
                }
                Some(Err(e)) => tracing::warn!(error = %e, "plugin directory watch error"),
                None => break,
            },
            _ = timer => {
                let now = Instant::now();
                let ready: Vec<String> = pending
                    .iter()
                    .filter(|(name, (_, at))| *at <= now && !loading.contains(*name))
                    .map(|(name, _)| name.clone())
                    .collect();
                for name in ready {
                    if let Some((path, _)) = pending.remove(&name) {
                        if path.is_file() {
                            loading.insert(name.clone());
                            let core = core.clone();
                            loads.spawn(async move {
                                // Errors are recorded and logged by load_file.
                                let _ = load_file(&core, &path).await;
                                name
                            });
                        } else {
                            unload(&core, &name).await;
                        }
                    }
                }
            }
            Some(done) = loads.join_next() => {
                match done {
                    Ok(name) => {
                        loading.remove(&name);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "a plugin load task failed");
                        // Its name is unknown here: let every name load again.
                        loading.clear();
                    }
                }
            }
            _ = stop.changed() => {}
        }
    }
}
