//! Dispatch: claims due deliveries, runs their attempts, records outcomes.
//!
//! One dispatcher task scans the `due` index in time order and claims what it
//! can start now: a global permit bounds attempts across plugins, a per-plugin
//! semaphore bounds each plugin. Each claimed delivery runs in its own task;
//! the dispatcher wakes when an event with deliveries is ingested, an attempt's
//! handler returns (giving its permits back) or its task ends, or the next
//! retry falls due.
//!
//! # Invariants
//! - A delivery is claimed (in memory; readers show it `running`) before its
//!   attempt starts, and its outcome is recorded in the same transaction that
//!   moves it on, so a crash at any point leaves it due, to run again:
//!   at-least-once execution.
//! - The permits bound handlers running, not attempts being recorded: an
//!   attempt holds both from its claim until its handler returns, and gives
//!   them back before its record is written, so a plugin's `max_concurrency`
//!   attempts run while earlier ones wait for their flush. A re-run after a
//!   kv conflict takes them again first.
//! - Deliveries are also claimed ahead of a free slot, up to `workers` of
//!   them across plugins: their tasks wait for their slots (the plugin's,
//!   then a worker's) and start as running attempts end, while the
//!   dispatcher's next scan and claims wait for the store. With claims only
//!   for free slots, a plugin ran at most `max_concurrency` attempts per
//!   scan-and-claim round trip: eight no-op attempts take tens of
//!   microseconds, and a round trip that waits for sled's lock behind an
//!   ingest transaction up to a millisecond. A delivery claimed ahead runs
//!   on its plugin's version current when its slots come, not the one it
//!   was claimed under, and is given back if its plugin was removed
//!   meanwhile (the next scan pauses it) or the host is stopping. The
//!   claims waiting hold their events, so the host holds at most twice
//!   `workers` claimed events.
//! - A kv conflict re-runs the attempt without counting it: at once the
//!   first times, then after a short random pause that grows with the
//!   conflicts, so attempts contending for one key (many hosts on one
//!   database) take turns instead of invalidating each other forever. A
//!   re-run holds this host's turn on the keys it read (`turns.rs`): one
//!   attempt per host at a time contends for a hot key.
//! - On shutdown no new attempt starts; running ones finish or hit their
//!   deadline before [`run`] returns.

mod outbox;
pub mod retry;
mod slots;
pub mod turns;

use crate::core::Core;
use crate::model::{DeliveryId, Outcome, now_ms};
use crate::reload;
use crate::runtime::Plugin;
use crate::store::{Claimed, DueEntry, Finish, Next, StoreError};
use retry::Decision;
use slots::{Slots, Start, start_waiting};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

/// Due entries read per scan at most.
const BATCH: usize = 256;
/// Entries read beyond the free workers, for those skipped (blocked by
/// ordering, or their plugin not loaded).
const SKIP_MARGIN: usize = 8;
/// Due entries examined per pass at most (blocked ones included).
const SCAN_CAP: usize = 4096;
/// Re-runs after kv conflicts before the claim is given back, so that the
/// delivery runs again later, on any host, without counting as a failure.
const MAX_CONFLICT_RERUNS: u32 = 100;
/// Tries to record an attempt before leaving it to the restart's requeue.
const FINISH_TRIES: u32 = 5;
/// How often a host sharing its store with others looks for due deliveries
/// it was not woken for.
const SHARED_POLL: Duration = Duration::from_millis(200);
/// Wait after a store error before scanning again.
const ERROR_PAUSE: Duration = Duration::from_millis(500);
/// With fewer free workers than this, a scan waits up to [`GATHER`] for more
/// attempts to end, so that one scan starts several. (Scans used to read past
/// the `due` entries of every attempt in flight, which keep their entries
/// until recorded: when every worker was busy, scanning at each attempt's end
/// read about `workers` entries to start one attempt, a tenth of the host's
/// CPU under load. The sled store's scan floor now skips those.)
const GATHER_FREE: usize = 8;
const GATHER: Duration = Duration::from_millis(1);

/// Runs the dispatcher until `stop` turns true, then waits for the attempts
/// in flight.
pub async fn run(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let global = Arc::new(Semaphore::new(core.config.workers));
    let ahead = Arc::new(Semaphore::new(core.config.workers));
    let mut tasks = JoinSet::new();
    let gather_free = GATHER_FREE.min(core.config.workers);
    let mut gather_until: Option<tokio::time::Instant> = None;
    while !*stop.borrow() {
        let gathering = if global.available_permits() < gather_free {
            let until = *gather_until.get_or_insert_with(|| tokio::time::Instant::now() + GATHER);
            let now = tokio::time::Instant::now();
            (now < until).then(|| until - now)
        } else {
            None
        };
        // The scan takes what is due at `scanned_at`, and the timer is set
        // for the first entry after that same instant: an entry falling due
        // while the scan runs is then found by the timer (sleeping for 0),
        // where a fresh clock would skip it, and nothing would wake us.
        let scanned_at = now_ms();
        let pause = match gathering {
            Some(wait) => Some(wait),
            None => {
                gather_until = None;
                match dispatch_due(&core, (&global, &ahead), &mut tasks, scanned_at).await {
                    Ok(()) => None,
                    Err(e) => {
                        tracing::error!(error = %e, "dispatch scan failed");
                        Some(ERROR_PAUSE)
                    }
                }
            }
        };
        let timer = match pause {
            Some(pause) => Some(pause),
            None => match core.store.next_due_after(scanned_at).await {
                Ok(Some(at)) => Some(Duration::from_millis(at.saturating_sub(now_ms()))),
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(error = %e, "reading the due index failed");
                    Some(ERROR_PAUSE)
                }
            },
        };
        // Other hosts add deliveries this one is not woken for.
        let timer = match (timer, core.store.shared()) {
            (Some(t), true) => Some(t.min(SHARED_POLL)),
            (None, true) => Some(SHARED_POLL),
            (t, false) => t,
        };
        let sleep = async {
            match timer {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = core.wake.notified() => {}
            _ = sleep => {}
            _ = stop.changed() => {}
            Some(done) = tasks.join_next() => log_panic(done),
        }
    }
    // Deliveries claimed ahead give their claims back instead of starting.
    ahead.close();
    tracing::info!(
        running = tasks.len(),
        "dispatcher stopping; waiting for running attempts"
    );
    while let Some(done) = tasks.join_next().await {
        log_panic(done);
    }
}

fn log_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(error = %e, "attempt task failed");
    }
}

/// Claims and starts every due delivery that permits allow, and claims
/// ahead as many more as `ahead` allows.
async fn dispatch_due(
    core: &Arc<Core>,
    (global, ahead): (&Arc<Semaphore>, &Arc<Semaphore>),
    tasks: &mut JoinSet<()>,
    now: u64,
) -> Result<(), StoreError> {
    let plugins = core.registry.snapshot();
    let loaded = plugins.len();
    // Plugins with no free slot this pass: once every loaded plugin is
    // full, nothing further in the index can start, however long it is.
    let mut full_plugins: Vec<String> = Vec::new();
    let mut cursor: Option<DueEntry> = None;
    let mut scanned = 0;
    while scanned < SCAN_CAP {
        // Read about as many entries as there are free workers: when the
        // queue is long and one attempt just ended, a full batch would be
        // read to start one.
        let (free, ahead_free) = (global.available_permits(), ahead.available_permits());
        if free == 0 && ahead_free == 0 {
            return Ok(()); // all workers busy: an ending attempt wakes us
        }
        // Nor more than the plugins' free slots: entries past them are read
        // only to be skipped. With one busy plugin, each pass read a batch
        // the size of the free workers to start an attempt or two.
        let slots: usize = plugins
            .values()
            .map(|p| p.permits.available_permits())
            .sum();
        if slots == 0 && ahead_free == 0 && loaded > 0 {
            // Every loaded plugin is full: nothing read could start, and an
            // ending attempt wakes us. (With none loaded, the scan goes on
            // to pause what is due.)
            return Ok(());
        }
        let limit = (free.min(slots) + ahead_free + SKIP_MARGIN).min(BATCH);
        let batch = core.store.due(now, cursor.as_ref(), limit).await?;
        let full = batch.len() == limit;
        // The entries this pass starts, claimed together once the batch is
        // gone through: one call to the store for them all.
        let (mut entries, mut starting) = (Vec::new(), Vec::new());
        let mut saturated = false;
        for entry in batch {
            scanned += 1;
            if global.available_permits() == 0 && ahead.available_permits() == 0 {
                saturated = true; // all workers busy: an ending attempt wakes us
                break;
            }
            // An outbox delivery is sent by the host, within its plugin's
            // limits and concurrency.
            let outbox = crate::model::outbox_owner(&entry.plugin);
            let name = outbox.unwrap_or(&entry.plugin);
            let Some(plugin) = core.registry.get(name) else {
                if core.store.pause(&entry).await? {
                    tracing::warn!(delivery = %entry.delivery, plugin = %entry.plugin, "plugin not loaded: delivery paused");
                    // The plugin may have loaded, and resumed its paused
                    // deliveries, between the lookup and the pause.
                    if core.registry.get(name).is_some() {
                        core.store.resume_paused(&entry.plugin).await?;
                        core.wake.notify_one();
                    }
                }
                continue;
            };
            if outbox.is_none()
                && plugin.limits.order_by.is_some()
                && core.store.blocked(&entry).await?
            {
                // An earlier delivery with its key has not ended yet; that
                // one's end wakes the dispatcher.
                cursor = Some(entry);
                continue;
            }
            // Free slots run it at once; else it is claimed ahead, to wait
            // for them, while claims ahead are left.
            let now = plugin
                .permits
                .clone()
                .try_acquire_owned()
                .ok()
                .and_then(|slot| {
                    let worker = global.clone().try_acquire_owned().ok()?;
                    Some(Start::Now(worker, slot))
                });
            let waiting = || ahead.clone().try_acquire_owned().ok().map(Start::Waiting);
            let Some(start) = now.or_else(waiting) else {
                if !full_plugins.contains(&plugin.name) {
                    full_plugins.push(plugin.name.clone());
                    if full_plugins.len() >= loaded {
                        saturated = true;
                        break;
                    }
                }
                cursor = Some(entry);
                continue;
            };
            let outbox = outbox.is_some();
            cursor = Some(entry.clone());
            entries.push(entry);
            starting.push((plugin, start, outbox));
        }
        let claims = core.store.claim_many(&entries).await;
        let mut failed = None;
        for ((plugin, start, outbox), claim) in starting.into_iter().zip(claims) {
            match claim {
                Ok(Some(claimed)) => {
                    let span = tracing::info_span!(
                        "attempt",
                        event = %claimed.event.id,
                        delivery = %claimed.delivery.id,
                        plugin = %plugin.name,
                        version = %short(&plugin.version),
                    );
                    let slots = Slots::new(global, &plugin.permits, start);
                    if outbox {
                        tasks.spawn(
                            outbox::send(core.clone(), plugin, claimed, slots).instrument(span),
                        );
                    } else {
                        tasks.spawn(deliver(core.clone(), plugin, claimed, slots).instrument(span));
                    }
                }
                Ok(None) => {} // no longer due: its permits go back
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        if saturated {
            return Ok(());
        }
        if !full {
            break;
        }
    }
    Ok(())
}

fn short(version: &str) -> &str {
    version.get(..12).unwrap_or(version)
}

/// Runs one claimed delivery's attempt and records it (re-running at once on
/// a kv conflict).
async fn deliver(core: Arc<Core>, plugin: Arc<Plugin>, claimed: Claimed, mut slots: Slots) {
    let id = claimed.delivery.id;
    let _renewal = renew_while_held(&core, id);
    let number = claimed.delivery.attempts + 1;
    let Some(plugin) = start_waiting(&core, plugin, id, &mut slots).await else {
        return;
    };
    let plugin = match &claimed.delivery.pinned_version {
        Some(sha) if *sha != plugin.version => {
            match reload::load_pinned(&core, &plugin.name, sha).await {
                Ok(pinned) => pinned,
                Err(e) => {
                    let attempt = unavailable_version(&claimed, &plugin.name, sha, number, &e);
                    if let Err(e) = finish_with_retries(&core, &attempt, Next::Dead, None).await {
                        core.store.unclaim(id);
                        tracing::error!(error = %e, "recording the attempt failed");
                    }
                    return;
                }
            }
        }
        _ => plugin,
    };
    let mut conflicts = 0;
    // This host's turn on the keys of a conflict, held through the re-runs.
    let mut turn = turns::Held::new();
    loop {
        slots.acquire(&core.wake).await;
        let mut run = core
            .runtime
            .run_attempt(
                &plugin,
                core.store.clone(),
                id,
                number,
                &claimed.event,
                &claimed.body,
            )
            .await;
        slots.release(&core.wake);
        if run.attempt.outcome == Outcome::Ok {
            route_emitted(&core, &mut run.effects);
            if let Some(full) = queue_refusal(&core, &run.effects) {
                run.attempt.outcome = Outcome::Retry(full);
            }
        }
        let next = next_after(&plugin, &claimed, number, &run.attempt.outcome);
        if next == Next::Succeeded
            && let Some(record) = &mut run.attempt.effects
        {
            record.committed = true;
        }
        let effects = (next == Next::Succeeded).then_some(&run.effects);
        match finish_with_retries(&core, &run.attempt, next, effects).await {
            Ok(Finish::Committed) => {
                let a = &run.attempt;
                crate::metrics::attempt(a);
                tracing::info!(
                    attempt = a.number,
                    outcome = a.outcome.kind(),
                    fuel = a.fuel_consumed,
                    duration_us = a.duration_us,
                    next = ?next,
                    "attempt recorded"
                );
                if !run.effects.emitted.is_empty() {
                    core.wake.notify_one();
                }
                return;
            }
            Ok(Finish::Conflict) => {
                conflicts += 1;
                if conflicts >= MAX_CONFLICT_RERUNS {
                    give_back(&core, id, conflicts).await;
                    return;
                }
                tracing::debug!(conflicts, "kv conflict: re-running attempt");
                if turn.is_empty() {
                    let read = run.effects.reads.iter().map(|(key, _)| key.as_str());
                    turn = core.turns.take(&plugin.name, read).await;
                } else if let Some(pause) = conflict_pause(conflicts, rand::random()) {
                    tokio::time::sleep(pause).await;
                }
            }
            Ok(Finish::Stale) => {
                tracing::warn!("delivery changed while its attempt ran; result dropped");
                return;
            }
            Err(e) => {
                // The delivery stays due (or claimed, until its lease runs
                // out): nothing is lost, the attempt runs again once the
                // store recovers.
                core.store.unclaim(id);
                tracing::error!(error = %e, "recording the attempt failed; the delivery runs again once the store recovers");
                return;
            }
        }
    }
}

/// Where attempt `number` of `claimed` moves its delivery after `outcome`,
/// by `plugin`'s retry policy (its configured one, else its manifest's).
fn next_after(plugin: &Plugin, claimed: &Claimed, number: u32, outcome: &Outcome) -> Next {
    let policy = plugin
        .limits
        .retry
        .or(plugin.manifest.retry)
        .unwrap_or_default();
    let in_window = number - claimed.delivery.attempts_before_retry;
    match retry::decide(&policy, in_window, outcome, rand::random()) {
        Decision::Succeeded => Next::Succeeded,
        Decision::RetryIn(ms) => Next::RetryAt(retry::due_after(now_ms(), ms)),
        Decision::Dead => Next::Dead,
    }
}

/// The pause before re-running an attempt after its `conflicts`-th kv
/// conflict: none for the first two, then up to 2^n ms (at most 64 ms),
/// scaled by `jitter` in [0, 1).
fn conflict_pause(conflicts: u32, jitter: f64) -> Option<Duration> {
    if conflicts <= 2 {
        return None;
    }
    let cap = (1u64 << conflicts.min(6)) as f64;
    Some(Duration::from_micros((cap * 1000.0 * jitter) as u64))
}

/// Gives back the claim of a delivery whose kv conflicts persisted through
/// `conflicts` re-runs: every conflict means another attempt committed, so
/// the work as a whole moves on; this one runs again later, on any host,
/// and no failed attempt is charged to it.
async fn give_back(core: &Core, id: DeliveryId, conflicts: u32) {
    tracing::warn!(
        conflicts,
        "kv conflict persisted: the claim is given back and the delivery runs again"
    );
    match core.store.give_back(id).await {
        Ok(true) => core.wake.notify_one(),
        Ok(false) => tracing::warn!("the claim was lost before it was given back"),
        // The lease runs out instead.
        Err(e) => tracing::warn!(error = %e, "giving back a claim failed"),
    }
}

/// Renews the claim on a delivery while it lives (where claims are leases).
struct Renewal(Option<tokio::task::JoinHandle<()>>);

impl Drop for Renewal {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// Renews this host's lease on `id` every third of the lease until the
/// returned guard is dropped: one claim may outlast one attempt's deadline
/// (kv-conflict re-runs, a pinned version's compile, waits for a slot).
fn renew_while_held(core: &Arc<Core>, id: DeliveryId) -> Renewal {
    let Some(every) = core.store.lease_renewal() else {
        return Renewal(None);
    };
    let store = core.store.clone();
    Renewal(Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        // The first tick is at once: the claim was just made.
        ticks.tick().await;
        loop {
            ticks.tick().await;
            match store.renew_lease(id).await {
                Ok(true) => {}
                // Recorded or given back since the last tick; a lease that
                // ran out shows as a stale result when the attempt ends.
                Ok(false) => return,
                Err(e) => tracing::warn!(delivery = %id, error = %e, "renewing a lease failed"),
            }
        }
    })))
}

/// Finds the subscribers of each event an attempt emitted; an outbox
/// request already names its route.
fn route_emitted(core: &Core, effects: &mut crate::store::Effects) {
    for emitted in &mut effects.emitted {
        if !emitted.subscribers.is_empty() {
            continue;
        }
        let e = &emitted.event;
        emitted.subscribers = core
            .registry
            .routes(&e.topic, e.idempotency_key.as_deref(), &e.body);
    }
}

/// Why an attempt's emitted events cannot join the queue now, if they
/// cannot: they would take it past `max_queue_depth`, as an ingest would.
/// The attempt is then retried by its policy, its effects discarded, so a
/// handler that feeds itself slows down instead of growing the queue.
fn queue_refusal(core: &Core, effects: &crate::store::Effects) -> Option<String> {
    let added: usize = effects.emitted.iter().map(|e| e.subscribers.len()).sum();
    let depth = core.store.queue_depth();
    let limit = core.config.max_queue_depth;
    (added > 0 && depth.saturating_add(added as u64) > limit).then(|| {
        format!(
            "the queue is full ({depth} deliveries waiting, limit {limit}): the {} events \
             this attempt emitted would add {added} deliveries; retried later",
            effects.emitted.len()
        )
    })
}

/// The record of an attempt that could not start: its pinned version is gone.
fn unavailable_version(
    claimed: &Claimed,
    plugin: &str,
    sha: &str,
    number: u32,
    error: &crate::runtime::LoadError,
) -> crate::model::Attempt {
    crate::model::Attempt {
        delivery: claimed.delivery.id,
        number,
        plugin: plugin.to_owned(),
        version: sha.to_owned(),
        started_at_ms: now_ms(),
        duration_us: 0,
        fuel_consumed: 0,
        peak_memory_bytes: 0,
        outcome: Outcome::Reject(format!("pinned version unavailable: {error}")),
        logs: Vec::new(),
        stdout: String::new(),
        stderr: String::new(),
        truncated: false,
        effects: None,
        http: Vec::new(),
        omitted: None,
        inputs: None,
    }
}

/// Attempts to record an outcome, riding out a brief store failure.
async fn finish_with_retries(
    core: &Core,
    attempt: &crate::model::Attempt,
    next: Next,
    effects: Option<&crate::store::Effects>,
) -> Result<Finish, StoreError> {
    let mut pause = Duration::from_millis(100);
    let mut tries = 1;
    loop {
        match core.store.finish_attempt(attempt, next, effects).await {
            Err(e) if tries < FINISH_TRIES => {
                tracing::warn!(error = %e, tries, "recording the attempt failed; trying again");
                tokio::time::sleep(pause).await;
                pause *= 2;
                tries += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests;
