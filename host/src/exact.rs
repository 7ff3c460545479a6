//! Exact replay: one recorded attempt re-executed offline with everything
//! it read (its event, the kv values it saw, its delivery's journal, its
//! clock and random reads), compared byte for byte with what it did.
//!
//! A replay of the version that ran is exact unless the handler depends on
//! something the host does not record: a kv value over
//! [`Blob::KEEP_BYTES`](crate::model::Blob::KEEP_BYTES) that has changed
//! since, config or secrets changed since, calls past the journal's bound,
//! or clock and random reads past the record's. Each shows as a difference,
//! never as a pass. Like a shadow run, it never reaches the network and
//! commits nothing.

use crate::api::{ExactDifference, ExactReplay, ExactReplayRequest};
use crate::core::Core;
use crate::model::{Attempt, HttpCall, outbox_owner};
use crate::store::StoreError;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ExactError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Replays attempt `request.attempt` (default: the last) of `plugin`'s
/// delivery of event `id`.
pub async fn replay(
    core: &Arc<Core>,
    id: ulid::Ulid,
    request: &ExactReplayRequest,
) -> Result<ExactReplay, ExactError> {
    let Some((record, body)) = core.store.event(id).await? else {
        return Err(ExactError::NotFound(format!("no event {id}")));
    };
    let ran: Vec<_> = core
        .store
        .deliveries_of(id)
        .await?
        .into_iter()
        .filter(|d| d.attempts > 0)
        .filter(|d| request.plugin.as_ref().is_none_or(|p| *p == d.plugin))
        .collect();
    let delivery = match ran.as_slice() {
        [] => {
            return Err(ExactError::NotFound(match &request.plugin {
                Some(p) => format!("{p} has no attempt of event {id}"),
                None => format!("event {id} has no attempt"),
            }));
        }
        // The latest delivery (a replay adds one) of the plugin.
        [.., last] if ran.iter().all(|d| d.plugin == last.plugin) => last,
        _ => {
            let plugins: Vec<_> = ran.iter().map(|d| d.plugin.as_str()).collect();
            return Err(ExactError::BadRequest(format!(
                "event {id} went to {}: name one as plugin",
                plugins.join(", ")
            )));
        }
    };
    if outbox_owner(&delivery.plugin).is_some() {
        return Err(ExactError::BadRequest(format!(
            "{} is an outbox: the host sent its request, no handler ran",
            delivery.plugin
        )));
    }
    let mut attempts = core.store.attempts_of(delivery.id).await?;
    let recorded = match request.attempt {
        Some(n) => attempts.into_iter().find(|a| a.number == n),
        None => attempts.pop(),
    }
    .ok_or_else(|| {
        ExactError::NotFound(format!(
            "delivery {} has no attempt {}",
            delivery.id,
            request.attempt.unwrap_or_default()
        ))
    })?;
    let version = request.version.as_ref().unwrap_or(&recorded.version);
    let plugin = crate::reload::load_pinned(core, &delivery.plugin, version)
        .await
        .map_err(|e| {
            ExactError::NotFound(format!(
                "cannot load version {version} of {}: {e}",
                delivery.plugin
            ))
        })?;
    let journal = core.store.journaled(delivery.id).await?;
    let run = core
        .runtime
        .run_recorded(
            &plugin,
            core.store.clone(),
            delivery.id,
            recorded.number,
            &record,
            &body,
            crate::shadow::snapshot_of(&recorded),
            journal,
            Some(recorded.inputs.clone().unwrap_or_default()),
        )
        .await;
    let mut differences = compare(&recorded, &run.attempt);
    if let Some(diverged) = run.inputs_diverged {
        differences.push(ExactDifference {
            what: "inputs".into(),
            recorded: json(&recorded.inputs),
            replayed: Value::String(diverged),
        });
    }
    let replayed = run.attempt;
    Ok(ExactReplay {
        event: id.to_string(),
        delivery: delivery.id,
        plugin: delivery.plugin.clone(),
        attempt: recorded.number,
        recorded_version: recorded.version,
        replayed_version: replayed.version,
        exact: differences.is_empty(),
        differences,
        outcome: replayed.outcome,
        fuel_consumed: replayed.fuel_consumed,
        duration_us: replayed.duration_us,
    })
}

/// Where `replayed` differs from `recorded`, as JSON, field by field.
fn compare(recorded: &Attempt, replayed: &Attempt) -> Vec<ExactDifference> {
    // Whether the record says its effects were committed is the one field
    // a replay cannot share.
    let effects = |a: &Attempt| {
        a.effects.clone().map(|mut e| {
            e.committed = false;
            e
        })
    };
    // A replayed call is answered from the journal; what it asked and got
    // is what must match.
    let calls = |a: &Attempt| -> Vec<(String, String, Option<u16>)> {
        a.http
            .iter()
            .map(|c: &HttpCall| (c.method.clone(), c.origin.clone(), c.status))
            .collect()
    };
    let fields = [
        ("version", json(&recorded.version), json(&replayed.version)),
        ("outcome", json(&recorded.outcome), json(&replayed.outcome)),
        (
            "effects",
            json(&effects(recorded)),
            json(&effects(replayed)),
        ),
        ("omitted", json(&recorded.omitted), json(&replayed.omitted)),
        ("http", json(&calls(recorded)), json(&calls(replayed))),
    ];
    fields
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(what, recorded, replayed)| ExactDifference {
            what: what.into(),
            recorded,
            replayed,
        })
        .collect()
}

fn json(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
