//! Wiring: open the store, build the runtime, load plugins, start the
//! dispatcher and the HTTP server, and shut all of it down in order.

use crate::config::Config;
use crate::config::StoreKind;
use crate::core::Core;
use crate::runtime::Runtime;
use crate::store::Store;
use crate::{dispatch, http, reload};
use anyhow::Context as _;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Runs the host on `listener` until `shutdown` completes, then stops
/// accepting, lets running attempts finish (or hit their deadline), and
/// flushes the store.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    #[cfg(unix)]
    survive_file_size_limit();
    // Installed before anything is counted.
    let _ = crate::metrics::handle();
    let admin_token = token_from(config.admin_token_env.as_deref(), "admin_token_env")?;
    let ingest_token = token_from(config.ingest_token_env.as_deref(), "ingest_token_env")?;
    check_exposure(
        listener.local_addr()?,
        Exposure {
            admin_token: admin_token.is_some(),
            public_admin: config.allow_public_admin,
            ingest_token: ingest_token.is_some(),
            public_ingest: config.allow_public_ingest,
        },
    )?;
    let sources = crate::sources::resolve_all(&config.sources, |var| std::env::var(var).ok())?;
    let contracts = crate::contracts::Contracts::load(&config.contracts)?;
    let secrets = config.resolve_secrets(|var| std::env::var(var).ok())?;
    for dir in [&config.data, &config.plugins_dir] {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    let store = match config.store {
        StoreKind::Sled => {
            Store::open_with_cache(&config.data, config.store_cache_mb * 1024 * 1024)
                .with_context(|| format!("cannot open the store in {}", config.data.display()))?
        }
        StoreKind::Postgres => {
            let options = config.postgres.options(|var| std::env::var(var).ok())?;
            Store::connect(&options)
                .await
                .context("cannot connect to the PostgreSQL store")?
        }
    };
    let requeued = store.requeue_running().await?;
    if requeued > 0 {
        tracing::warn!(
            deliveries = requeued,
            "requeued deliveries left running by an unclean stop"
        );
    }
    let runtime = Runtime::new(
        config.workers,
        config.max_memory_bytes(),
        Some(&config.data.join("artifacts")),
    )
    .context("cannot build the wasm engine")?;
    let core = Arc::new(Core::new(
        config, store, runtime, sources, contracts, secrets,
    ));
    // With a shared store, what the other hosts run comes first: a local
    // file then replaces it only if it is newer.
    let mut applied = reload::Applied::new();
    if core.store.shared() {
        let n = reload::follow_once(&core, &mut applied).await;
        tracing::info!(
            plugins = n,
            "serving the plugin versions the shared store holds"
        );
    }
    let (loaded, background) = reload::load_at_start(&core).await;
    tracing::info!(
        plugins = loaded,
        failed = core.registry.failures().len(),
        loading = core.registry.expected().len(),
        dir = %core.config.plugins_dir.display(),
        "plugins loaded"
    );
    {
        let core = core.clone();
        tokio::spawn(async move {
            if let Ok(n) = background.await
                && n > 0
            {
                tracing::info!(
                    plugins = n,
                    failed = core.registry.failures().len(),
                    "known plugins loaded in the background"
                );
            }
        });
    }

    let (stop, stopped) = watch::channel(false);
    let watcher = match reload::watch::spawn(core.clone(), stopped.clone()) {
        Ok(task) => Some(task),
        Err(e) => {
            tracing::error!(dir = %core.config.plugins_dir.display(), error = %e, "cannot watch the plugins directory: hot reload is off");
            None
        }
    };
    let dispatcher = tokio::spawn(dispatch::run(core.clone(), stopped.clone()));
    let schedules = tokio::spawn(crate::schedule::run(core.clone(), stopped.clone()));
    let retention = tokio::spawn(crate::lifecycle::retention(core.clone(), stopped.clone()));
    let quarantine = tokio::spawn(crate::lifecycle::quarantine(core.clone(), stopped.clone()));
    let healer = tokio::spawn(crate::lifecycle::heal(core.clone(), stopped.clone()));
    let follower = core
        .store
        .shared()
        .then(|| tokio::spawn(reload::follow(core.clone(), applied, stopped.clone())));
    let hangups = tokio::spawn(reload_on_hangup(core.clone(), stopped));
    let app = http::router(
        core.clone(),
        http::Tokens {
            admin: admin_token,
            ingest: ingest_token,
        },
    );
    tracing::info!(addr = %listener.local_addr()?, data = %core.config.data.display(), "hookhost listening");
    let header_timeout = std::time::Duration::from_millis(core.config.header_timeout_ms);
    http::serve(listener, app, header_timeout, shutdown).await;

    tracing::info!("shutting down: no new attempts; waiting for running ones");
    let _ = stop.send(true);
    if let Err(e) = dispatcher.await {
        tracing::error!(error = %e, "dispatcher failed");
    }
    if let Some(watcher) = watcher
        && let Err(e) = watcher.await
    {
        tracing::error!(error = %e, "plugin watcher failed");
    }
    hangups.abort();
    if let Some(follower) = follower
        && let Err(e) = follower.await
    {
        tracing::error!(error = %e, "plugin version follower failed");
    }
    for task in [retention, quarantine, healer] {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "store care task failed");
        }
    }
    if let Err(e) = schedules.await {
        tracing::error!(error = %e, "scheduler failed");
    }
    core.store.close().await.context("final flush failed")?;
    tracing::info!("store flushed; bye");
    Ok(())
}

/// A write past the process's file-size limit (`ulimit -f`, systemd's
/// `LimitFSIZE=`) raises `SIGXFSZ`, whose default action ends the process.
/// Handled, the write fails with `EFBIG` instead, and the store treats it
/// like a full disk: refuse writes, recover when it can.
#[cfg(unix)]
fn survive_file_size_limit() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::from_raw(libc::SIGXFSZ)) {
        Ok(mut signals) => {
            tokio::spawn(async move {
                while signals.recv().await.is_some() {
                    tracing::warn!("a write went past the file-size limit (SIGXFSZ)");
                }
            });
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot handle SIGXFSZ: a write past the file-size limit would end the process")
        }
    }
}

/// What guards the API when it listens beyond loopback.
struct Exposure {
    admin_token: bool,
    public_admin: bool,
    ingest_token: bool,
    public_ingest: bool,
}

/// Refuses to serve the admin API or open ingest to the network without a
/// token, unless the operator said so explicitly.
fn check_exposure(listen: std::net::SocketAddr, exposure: Exposure) -> anyhow::Result<()> {
    if listen.ip().is_loopback() {
        return Ok(());
    }
    if !exposure.admin_token && !exposure.public_admin {
        anyhow::bail!(
            "refusing to listen on {listen} without an admin token: anyone who reaches it could read every event. \
             Set admin_token_env (and that variable), listen on 127.0.0.1, or pass --allow-public-admin"
        )
    }
    if !exposure.ingest_token && !exposure.public_ingest {
        anyhow::bail!(
            "refusing to listen on {listen} without an ingest token: anyone who reaches it could post events to every handler. \
             Set ingest_token_env (and that variable), listen on 127.0.0.1, or pass --allow-public-ingest \
             (webhook senders use /hooks/{{source}}, which checks their signatures instead)"
        )
    }
    Ok(())
}

/// The token in the environment variable `var`, if one is configured.
fn token_from(var: Option<&str>, key: &str) -> anyhow::Result<Option<String>> {
    let Some(var) = var else {
        return Ok(None);
    };
    match std::env::var(var) {
        Ok(token) if !token.is_empty() => Ok(Some(token)),
        _ => anyhow::bail!("{key} is {var:?} but that environment variable is not set or empty"),
    }
}

/// Applies the configuration file's plugin settings on every `SIGHUP`.
async fn reload_on_hangup(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: reload with POST /config/reload");
                return;
            }
        };
        loop {
            tokio::select! {
                Some(()) = hangups.recv() => {
                    if let Err(e) = reload::reload_config(&core) {
                        tracing::error!(error = %e, "configuration not reloaded; the settings in force stay");
                    }
                }
                _ = stop.changed() => return,
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (core, stop.changed().await);
    }
}

#[cfg(test)]
mod tests {
    use super::{Exposure, check_exposure};

    #[test]
    fn the_api_is_not_exposed_to_the_network_without_tokens_or_consent() {
        let public = "0.0.0.0:8080".parse().expect("addr");
        let local = "127.0.0.1:8080".parse().expect("addr");
        let with = |admin_token, public_admin, ingest_token, public_ingest| Exposure {
            admin_token,
            public_admin,
            ingest_token,
            public_ingest,
        };
        assert!(check_exposure(local, with(false, false, false, false)).is_ok());
        let err = check_exposure(public, with(false, false, true, false)).expect_err("refused");
        assert!(err.to_string().contains("--allow-public-admin"), "{err}");
        let err = check_exposure(public, with(true, false, false, false)).expect_err("refused");
        assert!(err.to_string().contains("--allow-public-ingest"), "{err}");
        assert!(check_exposure(public, with(true, false, true, false)).is_ok());
        assert!(check_exposure(public, with(false, true, false, true)).is_ok());
    }
}
