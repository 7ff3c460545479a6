//! An attempt's slots: the worker's and its plugin's permits it holds while
//! its handler runs, and the place a delivery claimed ahead holds while it
//! waits for them.

use crate::core::Core;
use crate::model::DeliveryId;
use crate::runtime::Plugin;
use std::sync::Arc;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// How a claimed delivery starts: with its worker's and plugin's slots, or
/// claimed ahead, holding a permit of the dispatcher's `ahead` until it has
/// them.
pub(super) enum Start {
    Now(OwnedSemaphorePermit, OwnedSemaphorePermit),
    Waiting(OwnedSemaphorePermit),
}

/// An attempt's share of the workers and of its plugin's concurrency. They
/// bound sandboxes running, so an attempt holds them while its handler runs
/// and gives them back before its record waits for the store: a record
/// waits for a flush to disk (milliseconds), a trivial handler runs for tens
/// of microseconds, and holding the permits through the flush capped a
/// plugin at `max_concurrency` records per flush.
pub(super) struct Slots {
    pub(super) global: Arc<Semaphore>,
    pub(super) plugin: Arc<Semaphore>,
    pub(super) held: Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
    /// Held by a delivery claimed ahead until it first has its slots: one
    /// of the dispatcher's `ahead` permits.
    pub(super) waiting: Option<OwnedSemaphorePermit>,
}

impl Slots {
    /// The slots of a delivery claimed to `start` so, bounded by the
    /// workers' `global` and its plugin's `plugin`.
    pub(super) fn new(global: &Arc<Semaphore>, plugin: &Arc<Semaphore>, start: Start) -> Self {
        let (held, waiting) = match start {
            Start::Now(worker, slot) => (Some((worker, slot)), None),
            Start::Waiting(waiting) => (None, Some(waiting)),
        };
        Self {
            global: global.clone(),
            plugin: plugin.clone(),
            held,
            waiting,
        }
    }

    /// Gives the permits back and wakes the dispatcher to use them.
    pub(super) fn release(&mut self, wake: &Notify) {
        if self.held.take().is_some() {
            wake.notify_one();
        }
    }

    /// Takes the permits, for a delivery claimed ahead or a re-run: the
    /// plugin's slot first, so that an attempt waiting for its plugin holds
    /// no worker another plugin could use. A delivery claimed ahead then
    /// gives its `ahead` permit back and wakes the dispatcher to claim the
    /// next.
    pub(super) async fn acquire(&mut self, wake: &Notify) {
        if self.held.is_some() {
            return;
        }
        // The semaphores are never closed: a failure cannot happen, and
        // would only let the attempt go without its permits.
        let plugin = self.plugin.clone().acquire_owned().await;
        let global = self.global.clone().acquire_owned().await;
        if let (Ok(global), Ok(plugin)) = (global, plugin) {
            self.held = Some((global, plugin));
        }
        if self.waiting.take().is_some() {
            wake.notify_one();
        }
    }
}

/// The plugin version to run claimed delivery `id` on. A delivery claimed
/// ahead first waits for its slots, then runs on the version current then.
/// Its claim is given back instead, and `None` returned, if its plugin was
/// removed meanwhile (the next scan pauses it, as it does every delivery of
/// a plugin not loaded) or the dispatcher stopped (it closes `ahead`: no
/// attempt starts once the host is stopping; the delivery runs after the
/// next start).
pub(super) async fn start_waiting(
    core: &Core,
    plugin: Arc<Plugin>,
    id: DeliveryId,
    slots: &mut Slots,
) -> Option<Arc<Plugin>> {
    let Some(ahead) = slots.waiting.as_ref().map(|w| w.semaphore().clone()) else {
        return Some(plugin);
    };
    slots.acquire(&core.wake).await;
    let current = core.registry.get(&plugin.name);
    if let Some(current) = current.filter(|_| !ahead.is_closed()) {
        return Some(current);
    }
    slots.release(&core.wake);
    match core.store.give_back(id).await {
        Ok(_) => core.wake.notify_one(),
        // The lease runs out instead.
        Err(e) => tracing::warn!(error = %e, "giving back a claim failed"),
    }
    None
}
