//! Sending one claimed outbox delivery: a request a handler queued with
//! `outbox.send-after-commit`, committed with its attempt's success.
//!
//! It is a delivery like any other: claimed, retried by the plugin's retry
//! policy with backoff, a dead letter after its last try, recorded attempt by
//! attempt (the call's origin, status and duration), shown by the inspector
//! and the CLI, redriven like the rest. What runs is the host's own send,
//! not a handler: within the plugin's `allowed_hosts` and address rules,
//! with its secrets put back into the request only as it goes out, under
//! the same `Idempotency-Key` at every try. Its record names the plugin
//! version whose limits it was sent under.

use super::{Slots, finish_with_retries, renew_while_held};
use crate::core::Core;
use crate::model::{Attempt, OutboxRequest, Outcome, now_ms};
use crate::runtime::Plugin;
use crate::store::{Claimed, Finish};
use std::sync::Arc;

/// Sends `claimed`, queued by `plugin`, once, and records the try.
pub(super) async fn send(core: Arc<Core>, plugin: Arc<Plugin>, claimed: Claimed, mut slots: Slots) {
    let id = claimed.delivery.id;
    let _renewal = renew_while_held(&core, id);
    let Some(plugin) = super::start_waiting(&core, plugin, id, &mut slots).await else {
        return;
    };
    let number = claimed.delivery.attempts + 1;
    let started_at_ms = now_ms();
    let sent = match serde_json::from_slice::<OutboxRequest>(&claimed.body) {
        Ok(request) => crate::runtime::outbox::send(&plugin.limits, &request).await,
        Err(e) => crate::runtime::outbox::Sent {
            outcome: Outcome::Reject(format!("the stored request cannot be read: {e}")),
            call: None,
            duration_us: 0,
        },
    };
    slots.release(&core.wake);
    let next = super::next_after(&plugin, &claimed, number, &sent.outcome);
    let attempt = Attempt {
        delivery: id,
        number,
        plugin: claimed.delivery.plugin.clone(),
        version: plugin.version.clone(),
        started_at_ms,
        duration_us: sent.duration_us,
        fuel_consumed: 0,
        peak_memory_bytes: 0,
        outcome: sent.outcome,
        logs: Vec::new(),
        stdout: String::new(),
        stderr: String::new(),
        truncated: false,
        effects: None,
        http: sent.call.into_iter().collect(),
        omitted: None,
        inputs: None,
    };
    match finish_with_retries(&core, &attempt, next, None).await {
        Ok(Finish::Committed) => {
            crate::metrics::attempt(&attempt);
            tracing::info!(
                attempt = number,
                outcome = attempt.outcome.kind(),
                duration_us = attempt.duration_us,
                next = ?next,
                "outbox request sent"
            );
        }
        Ok(Finish::Conflict | Finish::Stale) => {
            tracing::warn!("outbox delivery changed while it was sent; result dropped");
        }
        Err(e) => {
            core.store.unclaim(id);
            tracing::error!(error = %e, "recording the outbox try failed; it is sent again once the store recovers");
        }
    }
}
