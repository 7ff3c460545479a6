//! Schedules: clock-driven events `schedule.<name>` from the crons plugins
//! declare in `describe()` (or the operator sets in `hookhost.toml`).
//!
//! # Rules
//! - Crons are evaluated in UTC. Five fields (minute granularity) or six
//!   (seconds first); `@daily` and the like work too.
//! - A schedule's event goes to the plugin that declared it (whatever its
//!   subscriptions), with idempotency key `schedule:<plugin>:<name>:<tick ms>`.
//! - The last tick fired is stored per plugin and schedule, in the same
//!   transaction as the event: no tick fires twice, across restarts too.
//! - Ticks missed while the host was down fire once, as the latest of them.
//! - A schedule seen for the first time starts from now: it does not fire
//!   for ticks before it existed.

use crate::core::Core;
use crate::model::{Cron, NewEvent, OFF, Provenance, Schedule, now_ms, utc};
use crate::runtime::Plugin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Longest the scheduler sleeps before looking again (new plugins, changed
/// settings).
const MAX_NAP: Duration = Duration::from_secs(1);

/// One schedule in force: the plugin's, or the operator's override of it.
#[derive(Debug, Clone)]
pub struct Effective {
    pub name: String,
    pub cron: String,
    /// `"plugin"` or `"config"`.
    pub from: &'static str,
    pub parsed: Cron,
}

/// The schedules in force for `plugin`: its manifest's, with the operator's
/// overrides applied (`"off"` drops one). Crons were checked at load and at
/// config validation, so none fails to parse here; one that did is skipped.
pub fn effective(plugin: &Plugin) -> Vec<Effective> {
    let overrides = &plugin.limits.schedules;
    plugin
        .manifest
        .schedules
        .iter()
        .filter_map(|Schedule { name, cron }| {
            let (cron, from) = match overrides.get(name) {
                Some(o) if o == OFF => return None,
                Some(o) => (o.clone(), "config"),
                None => (cron.clone(), "plugin"),
            };
            let parsed = Cron::parse(&cron).ok()?;
            Some(Effective {
                name: name.clone(),
                cron,
                from,
                parsed,
            })
        })
        .collect()
}

/// Fires due schedules until `stop` turns true.
pub async fn run(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let nap = match fire_due(&core, now_ms()).await {
            Ok(next) => next
                .map(|at| Duration::from_millis(at.saturating_sub(now_ms())))
                .map_or(MAX_NAP, |d| d.min(MAX_NAP)),
            Err(e) => {
                tracing::error!(error = %e, "schedules: cannot fire; trying again");
                MAX_NAP
            }
        };
        tokio::select! {
            () = tokio::time::sleep(nap) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Fires every schedule with a tick in `(last fired, now]`, once, as its
/// latest tick; returns when the next tick of any schedule falls.
pub async fn fire_due(core: &Core, now: u64) -> Result<Option<u64>, crate::store::StoreError> {
    let mut next: Option<u64> = None;
    for plugin in core.registry.snapshot().values() {
        for schedule in effective(plugin) {
            let last = match core
                .store
                .schedule_last(&plugin.name, &schedule.name)
                .await?
            {
                Some(last) => last,
                None => {
                    core.store
                        .schedule_start(&plugin.name, &schedule.name, now)
                        .await?;
                    now
                }
            };
            let mut from = last;
            if let Some(tick) = schedule.parsed.latest_tick(last, now) {
                if fire(core, plugin, &schedule, tick).await? {
                    core.wake.notify_one();
                }
                from = tick;
            }
            if let Some(at) = schedule.parsed.next_tick(from.max(now)) {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
    }
    Ok(next)
}

async fn fire(
    core: &Core,
    plugin: &Plugin,
    schedule: &Effective,
    tick: u64,
) -> Result<bool, crate::store::StoreError> {
    let at = utc(tick).map(|t| t.to_rfc3339()).unwrap_or_default();
    let body = serde_json::json!({
        "schedule": schedule.name,
        "cron": schedule.cron,
        "plugin": plugin.name,
        "tick_ms": tick,
        "tick": at,
    });
    let event = NewEvent {
        topic: format!("schedule.{}", schedule.name),
        idempotency_key: Some(format!("schedule:{}:{}:{tick}", plugin.name, schedule.name)),
        headers: Vec::new(),
        content_type: Some("application/json".into()),
        body: body.to_string().into_bytes(),
        provenance: Provenance::Schedule {
            plugin: plugin.name.clone(),
            name: schedule.name.clone(),
        },
    };
    let route = core
        .registry
        .route(&plugin.name, event.idempotency_key.as_deref(), &event.body);
    let fired = core
        .store
        .fire_schedule(&plugin.name, &schedule.name, tick, event, &[route])
        .await?;
    if fired {
        crate::metrics::schedule_tick(&plugin.name, &schedule.name);
        tracing::info!(plugin = %plugin.name, schedule = %schedule.name, tick = %at, "schedule fired");
    }
    Ok(fired)
}
