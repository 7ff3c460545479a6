//! One attempt: a fresh `Store` from the plugin's `InstancePre`, bounded by
//! fuel, an epoch deadline and a memory cap, and the record of how it went.

use super::record::{self, List};
use super::world::Handled;
use super::{EPOCH_TICK, FUEL_YIELD_INTERVAL, HostState, KvSnapshot, Plugin, Runtime};
use crate::model::{self, AttemptStore, Effects, Emitted, JournalEntry, KvRead};
use crate::model::{
    Attempt, Blob, DeliveryId, EffectsRecord, EmitRecord, EventRecord, KvRecord, Outcome, now_ms,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::Trap;

/// What an attempt produced: its record, and its effects to commit if it
/// succeeded.
pub struct AttemptRun {
    pub attempt: Attempt,
    pub effects: Effects,
    /// For an exact replay: where it read its clocks or random otherwise
    /// than the recorded attempt.
    pub inputs_diverged: Option<String>,
}

/// How an attempt runs: live with its delivery's journal, or offline.
struct Run {
    journal: Option<Journal>,
    offline: Option<(KvSnapshot, super::Offline)>,
    /// The recorded clock and random reads to answer from (exact replay).
    replay: Option<model::Inputs>,
}

/// The journal an attempt answers calls from.
enum Journal {
    /// The delivery's, read at the start and added to as calls are answered.
    Live(Arc<dyn model::Journal>),
    /// A live attempt's, as recorded: read only (shadow runs).
    Recorded(Vec<JournalEntry>),
}

/// Longest trap message kept in a record.
const MAX_TRAP_MESSAGE: usize = 4096;

/// Epoch ticks for a deadline of `timeout_ms`, rounded up, plus one because
/// the current tick is already partly gone.
pub(super) fn deadline_ticks(timeout_ms: u64) -> u64 {
    timeout_ms.div_ceil(EPOCH_TICK.as_millis() as u64) + 1
}

impl Runtime {
    /// Runs `plugin`'s `handle` on `event` once. Never fails: whatever the
    /// guest does becomes the attempt's outcome.
    ///
    /// Its `http.fetch` calls are journaled in `store` for `delivery`, each
    /// answer durable before the guest sees it; while its calls match those
    /// an earlier attempt of the delivery made, in order, each is answered
    /// from the journal and never reaches the network.
    pub async fn run_attempt(
        &self,
        plugin: &Plugin,
        store: Arc<dyn AttemptStore>,
        delivery: DeliveryId,
        number: u32,
        event: &EventRecord,
        body: &[u8],
    ) -> AttemptRun {
        let journal: Arc<dyn model::Journal> = store.clone();
        let kv: Arc<dyn KvRead> = store;
        let run = Run {
            journal: Some(Journal::Live(journal)),
            offline: None,
            replay: None,
        };
        self.run(plugin, kv, delivery, number, event, body, run)
            .await
    }

    /// Runs `plugin` as [`Runtime::run_attempt`] does, but never reaching
    /// the network: its kv reads see `kv` first (a shadow run: the live
    /// attempt's reads; `hookhost test`: the case's kv), other keys are read
    /// from `store`, and its outbound calls are refused or answered as
    /// `offline` says. The caller must not commit the effects.
    #[allow(clippy::too_many_arguments)]
    pub async fn run_offline(
        &self,
        plugin: &Plugin,
        store: Arc<dyn KvRead>,
        delivery: DeliveryId,
        number: u32,
        event: &EventRecord,
        body: &[u8],
        kv: KvSnapshot,
        offline: super::Offline,
    ) -> AttemptRun {
        let run = Run {
            journal: None,
            offline: Some((kv, offline)),
            replay: None,
        };
        self.run(plugin, store, delivery, number, event, body, run)
            .await
    }

    /// A run on a recorded attempt's inputs, never reaching the network:
    /// its kv reads see `kv` first (the recorded attempt's reads; other keys
    /// are read from `store`), its calls that match `journal` (the recorded
    /// delivery's, in order) are answered from it as a retry of that
    /// delivery would be, and every other call is refused. A shadow run
    /// passes no `inputs`; an exact replay passes the recorded attempt's
    /// clock and random reads, answered in order
    /// ([`AttemptRun::inputs_diverged`] says where they were not). The
    /// caller must not commit the effects.
    #[allow(clippy::too_many_arguments)]
    pub async fn run_recorded(
        &self,
        plugin: &Plugin,
        store: Arc<dyn KvRead>,
        delivery: DeliveryId,
        number: u32,
        event: &EventRecord,
        body: &[u8],
        kv: KvSnapshot,
        journal: Vec<JournalEntry>,
        inputs: Option<model::Inputs>,
    ) -> AttemptRun {
        let run = Run {
            journal: Some(Journal::Recorded(journal)),
            offline: Some((kv, super::Offline::Refuse)),
            replay: inputs,
        };
        self.run(plugin, store, delivery, number, event, body, run)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        plugin: &Plugin,
        store: Arc<dyn KvRead>,
        delivery: DeliveryId,
        number: u32,
        event: &EventRecord,
        body: &[u8],
        run: Run,
    ) -> AttemptRun {
        let started_at_ms = now_ms();
        let started = Instant::now();
        let limits = &plugin.limits;
        let reads = match &run.replay {
            Some(recorded) => super::inputs::Reads::replaying(recorded),
            None => super::inputs::Reads::default(),
        };
        let seed = model::insecure_seed(delivery, number);
        let (mut state, stdout, stderr) =
            HostState::new(&plugin.name, limits, Some(store), &reads, seed);
        if let Some((snapshot, offline)) = run.offline {
            state.outbound.go_offline(offline);
            state.call.snapshot = Some(snapshot);
        }
        state.call.journal = run.journal.map(|journal| {
            let (store, entries) = match journal {
                Journal::Live(store) => (Some(store), None),
                Journal::Recorded(entries) => (None, Some(entries)),
            };
            super::Journaled {
                store,
                delivery,
                entries,
                diverged: false,
            }
        });
        state.call.event_id = Some(event.id.to_string());
        let mut wstore = wasmtime::Store::new(&self.engine, state);
        wstore.limiter(|s| &mut s.limiter);

        let call = async {
            wstore.set_fuel(limits.fuel)?;
            wstore.fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL))?;
            wstore.set_epoch_deadline(deadline_ticks(limits.timeout_ms));
            wstore.epoch_deadline_trap();
            plugin.pre.handle(&mut wstore, event, number, body).await
        };
        // The epoch deadline stops the guest; this backstop also covers time
        // spent outside it (e.g. a slow instantiation).
        let backstop = Duration::from_millis(limits.timeout_ms) + Duration::from_secs(1);
        let result = tokio::time::timeout(backstop, call).await;
        let duration_us = started.elapsed().as_micros() as u64;

        let fuel_left = wstore.get_fuel().unwrap_or(0);
        let state = wstore.into_data();
        let (inputs, inputs_diverged) = reads.finish();
        let outcome = match result {
            Err(_elapsed) => Outcome::Deadline,
            Ok(Ok(Handled::Ok)) => Outcome::Ok,
            Ok(Ok(Handled::Retry(m))) => Outcome::Retry(m),
            Ok(Ok(Handled::Reject(m))) => Outcome::Reject(m),
            Ok(Err(e)) => classify_trap(&e, state.limiter.exceeded),
        };
        let (stdout, out_cut) = stdout.take();
        let (stderr, err_cut) = stderr.take();
        let calls = state
            .outbound
            .calls
            .lock()
            .map(|c| c.kept.clone())
            .unwrap_or_default();
        let mut call = state.call;
        let mut cut = false;
        let http = calls
            .into_iter()
            .map(|mut c| {
                c.error = c.error.map(|e| {
                    let mut e = call.redact(&e);
                    record::cut_http_error(&mut e);
                    e
                });
                c
            })
            .collect();
        let http = call.budget.keep(List::Http, http);
        let (mut stdout, mut stderr) = (call.redact(&stdout), call.redact(&stderr));
        cut |= record::cut_json(&mut stdout, record::STDIO_SHARE);
        cut |= record::cut_json(&mut stderr, record::STDIO_SHARE);
        let mut message = |m: String| {
            let mut m = call.redact(&m);
            cut |= record::cut_json(&mut m, record::MESSAGE_SHARE);
            m
        };
        let outcome = match outcome {
            Outcome::Retry(m) => Outcome::Retry(message(m)),
            Outcome::Reject(m) => Outcome::Reject(message(m)),
            Outcome::Trap(m) => Outcome::Trap(message(m)),
            other => other,
        };
        let kv_writes = call
            .writes
            .iter()
            .map(|(key, value)| KvRecord {
                key: key.clone(),
                value: value.as_deref().map(Blob::of),
            })
            .collect();
        let kv_writes = call.budget.keep(List::KvWrites, kv_writes);
        let emitted = call
            .emitted
            .iter()
            .map(|e| EmitRecord {
                topic: e.topic.clone(),
                idempotency_key: e.idempotency_key.clone(),
                body: Blob::of(&e.body),
            })
            .collect();
        let emitted = call.budget.keep(List::Emitted, emitted);
        let record = EffectsRecord {
            committed: false,
            kv_reads: std::mem::take(&mut call.read_records),
            kv_writes,
            emitted,
        };
        let omitted = std::mem::take(&mut call.budget).omitted();
        let attempt = Attempt {
            delivery,
            number,
            plugin: plugin.name.clone(),
            version: plugin.version.clone(),
            started_at_ms,
            duration_us,
            fuel_consumed: limits.fuel.saturating_sub(fuel_left),
            peak_memory_bytes: state.limiter.peak as u64,
            outcome,
            logs: std::mem::take(&mut call.logs),
            stdout,
            stderr,
            truncated: call.truncated || out_cut || err_cut || cut || omitted.is_some(),
            effects: Some(record),
            http,
            omitted,
            inputs,
        };
        let effects = Effects {
            reads: call.reads.into_iter().collect(),
            writes: call.writes.into_iter().collect(),
            emitted: call
                .emitted
                .into_iter()
                .map(|event| {
                    // An outbox request goes to its plugin's outbox route
                    // alone; other events to their topic's subscribers,
                    // which the dispatcher finds.
                    let subscribers = if event.topic == crate::model::OUTBOX_TOPIC {
                        vec![crate::model::Route::new(crate::model::outbox_route(
                            &plugin.name,
                        ))]
                    } else {
                        Vec::new()
                    };
                    Emitted { event, subscribers }
                })
                .collect(),
        };
        AttemptRun {
            attempt,
            effects,
            inputs_diverged,
        }
    }
}

fn classify_trap(e: &wasmtime::Error, memory_exceeded: bool) -> Outcome {
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Outcome::OutOfFuel,
        Some(Trap::Interrupt) => Outcome::Deadline,
        _ if memory_exceeded => Outcome::Memory,
        _ => {
            // The error chain with the guest's wasm backtrace, without the
            // host's own Rust backtrace.
            let mut message = format!("{e:#}");
            if message.len() > MAX_TRAP_MESSAGE {
                let mut end = MAX_TRAP_MESSAGE;
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                message.truncate(end);
                message.push('…');
            }
            Outcome::Trap(message)
        }
    }
}
