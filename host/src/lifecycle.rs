//! Background care of the store: retention, the quarantine's bounds and
//! recovery from failed writes.

use crate::core::Core;
use crate::model::now_ms;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the store's health is checked, and how long a failed recovery
/// waits before the next try.
const HEAL_EVERY: Duration = Duration::from_millis(500);
const HEAL_RETRY: Duration = Duration::from_secs(1);

/// Purges finished events older than `[retention] max_age`, every
/// `check_every`, in batches that each yield to other work, until `stop`.
pub async fn retention(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let settings = core.config.retention.clone();
    let Some(max_age) = settings.max_age() else {
        tracing::info!("retention is off: events are kept forever");
        return;
    };
    let every = settings.check_every();
    let batch = settings.batch.unwrap_or_else(|| core.store.purge_batch());
    loop {
        let cutoff = now_ms().saturating_sub(max_age.as_millis() as u64);
        let started = Instant::now();
        let mut after = None;
        let (mut examined, mut purged) = (0, 0);
        loop {
            if *stop.borrow() {
                return;
            }
            let began = Instant::now();
            match core.store.purge(cutoff, after, batch).await {
                Ok(report) => {
                    examined += report.examined;
                    purged += report.purged;
                    crate::metrics::purged(report.purged);
                    after = report.resume_after;
                    if after.is_none() {
                        break;
                    }
                    // Rest as long as the batch took: the purge uses at most
                    // half of one core, and ingest keeps the rest.
                    tokio::select! {
                        _ = tokio::time::sleep(began.elapsed()) => {}
                        _ = stop.changed() => return,
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention pass stopped; the next one starts over");
                    break;
                }
            }
        }
        if purged > 0 {
            tracing::info!(
                purged,
                kept = examined - purged,
                took_ms = started.elapsed().as_millis() as u64,
                "purged finished events past retention"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Keeps the quarantine within `[retention] quarantine_max_age` and
/// `quarantine_max_bytes`, every `check_every`, until `stop`.
pub async fn quarantine(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let settings = core.config.retention.clone();
    let every = settings.check_every();
    loop {
        let cutoff = settings
            .quarantine_max_age()
            .map_or(0, |age| now_ms().saturating_sub(age.as_millis() as u64));
        match core
            .store
            .purge_quarantine(cutoff, settings.quarantine_max_bytes)
            .await
        {
            Ok(0) => {}
            Ok(removed) => {
                tracing::info!(removed, "purged quarantined bodies past their age or size")
            }
            Err(e) => tracing::warn!(error = %e, "quarantine purge failed; trying again later"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Watches for a store that stopped taking writes and reopens it until it
/// takes them again, then wakes the dispatcher.
pub async fn heal(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let mut failed_since: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(HEAL_EVERY) => {}
            _ = stop.changed() => return,
        }
        let Some(reason) = core.store.failure() else {
            continue;
        };
        let since = *failed_since.get_or_insert_with(|| {
            crate::metrics::store_failed();
            Instant::now()
        });
        match core.store.recover().await {
            Ok(()) => {
                tracing::info!(
                    failed_for_ms = since.elapsed().as_millis() as u64,
                    "the store takes writes again"
                );
                failed_since = None;
                core.wake.notify_one();
            }
            Err(e) => {
                tracing::warn!(%reason, error = %e, "the store still cannot write; trying again");
                tokio::select! {
                    _ = tokio::time::sleep(HEAL_RETRY) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}
