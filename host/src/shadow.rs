//! Shadow runs: a candidate version of a plugin runs on recorded events,
//! its effects captured and never committed, and each run is compared with
//! what the live version did.
//!
//! # Fidelity
//! A shadow run reads kv as the live attempt did: every key the live attempt
//! read returns the value it saw then (from the attempt's record); other keys
//! are read from the store as it is now. Values over
//! [`Blob::KEEP_BYTES`](crate::model::Blob::KEEP_BYTES) are recorded by digest
//! only, so those keys too are read as they are now.
//!
//! # Invariant
//! A shadow run never reaches the network. A call that matches the live
//! delivery's journal (the live attempt's calls, in order) is answered from
//! it, as a retry of the live delivery would be; every other call is
//! refused and recorded (`candidate.http`), never sent.

use crate::core::Core;
use crate::model::{Attempt, EffectsRecord, EventRecord, Omitted, Outcome};
use crate::runtime::{KvSnapshot, LoadError, Plugin};
use crate::store::{EventQuery, StoreError};
use serde::Deserialize;
use std::sync::Arc;

/// Events compared per shadow run at most.
pub const MAX_EVENTS: usize = 1000;
const DEFAULT_EVENTS: usize = 100;

/// Which recorded events to run the candidate on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Topic pattern (`orders.*`); unset: every topic the plugin handled.
    pub topic: Option<String>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    /// Newest matching events first, at most this many (≤ 1000, default 100).
    pub limit: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ShadowError {
    #[error("{0}")]
    BadFilter(String),
    #[error("cannot load version {version} of {plugin}: {error}")]
    Candidate {
        plugin: String,
        version: String,
        error: LoadError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub use hookhost_api::{ShadowReport as Report, ShadowResult as EventResult, ShadowSide as Side};

/// Runs version `candidate` of plugin `name` on the recorded events that
/// match `filter` and that the plugin has attempted, newest first.
pub async fn run(
    core: &Arc<Core>,
    name: &str,
    candidate: &str,
    filter: &Filter,
) -> Result<Report, ShadowError> {
    if filter
        .since_ms
        .zip(filter.until_ms)
        .is_some_and(|(since, until)| since > until)
    {
        return Err(ShadowError::BadFilter("since_ms is after until_ms".into()));
    }
    let limit = filter.limit.unwrap_or(DEFAULT_EVENTS).clamp(1, MAX_EVENTS);
    let plugin = crate::reload::load_pinned(core, name, candidate)
        .await
        .map_err(|error| ShadowError::Candidate {
            plugin: name.to_owned(),
            version: candidate.to_owned(),
            error,
        })?;
    let mut report = Report {
        plugin: name.to_owned(),
        candidate: candidate.to_owned(),
        events: 0,
        same: 0,
        different: 0,
        capped: false,
        results: Vec::new(),
    };
    let mut query = EventQuery {
        topic: filter.topic.clone(),
        plugin: Some(name.to_owned()),
        since_ms: filter.since_ms,
        until_ms: filter.until_ms,
        limit: 1000,
        ..EventQuery::default()
    };
    'pages: loop {
        let page = core.store.list_events(&query).await?;
        for (record, deliveries) in &page.events {
            if filter.until_ms.is_some_and(|t| record.received_at_ms > t) {
                continue;
            }
            if filter.since_ms.is_some_and(|t| record.received_at_ms < t) {
                break 'pages; // newest first: the rest are older
            }
            // The plugin's latest delivery of this event that has run.
            let Some(delivery) = deliveries
                .iter()
                .rev()
                .find(|d| d.plugin == name && d.attempts > 0)
            else {
                continue;
            };
            let Some(live) = core.store.attempts_of(delivery.id).await?.pop() else {
                continue;
            };
            if report.events == limit {
                report.capped = true;
                break 'pages;
            }
            let result = compare(core, &plugin, record, live).await?;
            report.events += 1;
            if result.differences.is_empty() {
                report.same += 1;
            } else {
                report.different += 1;
            }
            report.results.push(result);
        }
        match page.next_cursor {
            Some(cursor) => query.before = Some(cursor),
            None => break,
        }
    }
    Ok(report)
}

/// Runs the candidate on one event and compares it with the live attempt.
async fn compare(
    core: &Arc<Core>,
    plugin: &Plugin,
    record: &EventRecord,
    live: Attempt,
) -> Result<EventResult, ShadowError> {
    let body = core
        .store
        .event(record.id)
        .await?
        .map(|(_, body)| body)
        .unwrap_or_default();
    let snapshot = snapshot_of(&live);
    // The live delivery's journal answers the calls that match the live
    // attempt's; the rest are refused.
    let journal = core.store.journaled(live.delivery).await?;
    let run = core
        .runtime
        .run_recorded(
            plugin,
            core.store.clone(),
            live.delivery,
            live.number,
            record,
            &body,
            snapshot,
            journal,
            None,
        )
        .await;
    let shadow = run.attempt;
    let mut differences = Vec::new();
    if shadow.outcome != live.outcome {
        differences.push("outcome".to_owned());
    }
    let effects_compared = live.effects.is_some();
    if let Some(live_effects) = &live.effects {
        // Only a success's effects take effect: a failed side wrote nothing.
        let committed = |outcome: &Outcome, effects: Option<&EffectsRecord>| {
            effects
                .filter(|_| *outcome == Outcome::Ok)
                .cloned()
                .unwrap_or_default()
        };
        let a = committed(&live.outcome, Some(live_effects));
        let b = committed(&shadow.outcome, shadow.effects.as_ref());
        // What a record left out past its bound is compared by its digest.
        let tails = |outcome: &Outcome, omitted: Option<&Omitted>| {
            omitted
                .filter(|_| *outcome == Outcome::Ok)
                .map(|o| (o.kv_writes.clone(), o.emitted.clone()))
                .unwrap_or_default()
        };
        let (live_writes, live_emits) = tails(&live.outcome, live.omitted.as_ref());
        let (writes, emits) = tails(&shadow.outcome, shadow.omitted.as_ref());
        if kv_digest(&a) != kv_digest(&b) || live_writes != writes {
            differences.push("kv_writes".to_owned());
        }
        if emit_digest(&a) != emit_digest(&b) || live_emits != emits {
            differences.push("emitted".to_owned());
        }
    }
    Ok(EventResult {
        event: record.id.to_string(),
        topic: record.topic.clone(),
        delivery: live.delivery.to_string(),
        live: Side {
            version: live.version,
            outcome: live.outcome,
            effects: live.effects,
            fuel_consumed: None,
            duration_us: None,
            logs: Vec::new(),
            stdout: String::new(),
            stderr: String::new(),
            http: live.http,
        },
        candidate: Side {
            version: shadow.version,
            outcome: shadow.outcome,
            effects: shadow.effects,
            fuel_consumed: Some(shadow.fuel_consumed),
            duration_us: Some(shadow.duration_us),
            logs: shadow.logs,
            stdout: shadow.stdout,
            stderr: shadow.stderr,
            http: shadow.http,
        },
        differences,
        effects_compared,
    })
}

/// The kv values `live` read, as its record kept them: values kept by
/// digest only are left out, and read from the store as they are now.
pub(crate) fn snapshot_of(live: &Attempt) -> KvSnapshot {
    live.effects
        .iter()
        .flat_map(|e| &e.kv_reads)
        .filter_map(|read| match &read.value {
            None => Some((read.key.clone(), None)),
            Some(blob) => blob.bytes().map(|bytes| (read.key.clone(), Some(bytes))),
        })
        .collect()
}

/// Each written key with the digest of its new value, sorted.
fn kv_digest(effects: &EffectsRecord) -> Vec<(&str, Option<&str>)> {
    let mut writes: Vec<_> = effects
        .kv_writes
        .iter()
        .map(|w| (w.key.as_str(), w.value.as_ref().map(|v| v.sha256.as_str())))
        .collect();
    writes.sort_unstable();
    writes
}

/// Each emitted event's topic, key and body digest, sorted.
fn emit_digest(effects: &EffectsRecord) -> Vec<(&str, Option<&str>, &str)> {
    let mut emitted: Vec<_> = effects
        .emitted
        .iter()
        .map(|e| {
            (
                e.topic.as_str(),
                e.idempotency_key.as_deref(),
                e.body.sha256.as_str(),
            )
        })
        .collect();
    emitted.sort_unstable();
    emitted
}
