//! Prometheus metrics, through the `metrics` facade.
//!
//! One recorder per process (the facade's global); `GET /metrics` renders it
//! after setting the gauges that are read at scrape time (queue depth,
//! plugins loaded, warm instance memory).
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `hookhost_ingest_total` | counter | `source` (`events` or the hook source), `status` |
//! | `hookhost_ingest_duration_seconds` | histogram | `source` |
//! | `hookhost_queue_depth` | gauge | |
//! | `hookhost_plugins_loaded` | gauge | |
//! | `hookhost_attempts_total` | counter | `plugin`, `outcome` |
//! | `hookhost_attempt_duration_seconds` | histogram | `plugin` |
//! | `hookhost_attempt_fuel` | histogram | `plugin` |
//! | `hookhost_http_calls_total` | counter | `plugin`, `result` (`ok`, `error`, `denied`) |
//! | `hookhost_reloads_total` | counter | `plugin`, `result` (`ok`, `error`) |
//! | `hookhost_schedule_ticks_total` | counter | `plugin`, `schedule` |
//! | `hookhost_purged_events_total` | counter | |
//! | `hookhost_store_failures_total` | counter | |
//! | `hookhost_store_writable` | gauge | (1 or 0) |
//! | `hookhost_wasm_warm_memories` | gauge | |
//! | `hookhost_wasm_warm_memory_bytes` | gauge | |
//! | `hookhost_store_flush_duration_seconds` | histogram | |
//! | `hookhost_store_flush_waiters` | histogram | |
//! | `hookhost_store_transaction_seconds` | histogram | `kind` (`ingest`, `record`) |
//! | `hookhost_store_transaction_items` | histogram | `kind` |

use crate::model::Attempt;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder (once); `None` if another recorder was
/// installed first (metrics then go there and `/metrics` is empty).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let seconds = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ];
            let fuel = [1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_fuel".into()), &fuel))
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    metrics::describe_counter!(
        "hookhost_ingest_total",
        "Ingest requests by source and answer status"
    );
    metrics::describe_histogram!(
        "hookhost_ingest_duration_seconds",
        metrics::Unit::Seconds,
        "Ingest request time, flush included"
    );
    metrics::describe_gauge!("hookhost_queue_depth", "Deliveries waiting or running");
    metrics::describe_gauge!("hookhost_plugins_loaded", "Plugins serving");
    metrics::describe_counter!(
        "hookhost_attempts_total",
        "Attempts recorded by plugin and outcome"
    );
    metrics::describe_histogram!(
        "hookhost_attempt_duration_seconds",
        metrics::Unit::Seconds,
        "Attempt wall-clock time"
    );
    metrics::describe_histogram!("hookhost_attempt_fuel", "Fuel an attempt consumed");
    metrics::describe_counter!(
        "hookhost_http_calls_total",
        "Outbound HTTP calls by plugin and result"
    );
    metrics::describe_counter!("hookhost_reloads_total", "Plugin loads by result");
    metrics::describe_counter!("hookhost_schedule_ticks_total", "Schedule ticks fired");
    metrics::describe_counter!(
        "hookhost_purged_events_total",
        "Finished events removed by retention"
    );
    metrics::describe_counter!(
        "hookhost_store_failures_total",
        "Times the store stopped taking writes"
    );
    metrics::describe_histogram!(
        "hookhost_store_transaction_seconds",
        metrics::Unit::Seconds,
        "Batched store transactions (ingested events, attempt records), waits for sled's lock included"
    );
    metrics::describe_histogram!(
        "hookhost_store_transaction_items",
        "Events or attempt results one batched transaction wrote"
    );
    metrics::describe_histogram!(
        "hookhost_store_flush_duration_seconds",
        metrics::Unit::Seconds,
        "Group-commit flushes to disk"
    );
    metrics::describe_histogram!(
        "hookhost_store_flush_waiters",
        "Writes one group-commit flush made durable at once"
    );
    metrics::describe_gauge!(
        "hookhost_store_writable",
        "1 while the store takes writes, 0 while it is failed"
    );
    metrics::describe_gauge!(
        "hookhost_wasm_warm_memories",
        "Instance memory slots no attempt uses that keep pages resident"
    );
    metrics::describe_gauge!(
        "hookhost_wasm_warm_memory_bytes",
        "Bytes those unused slots keep resident"
    );
}

/// Events removed by a retention pass.
pub fn purged(events: usize) {
    metrics::counter!("hookhost_purged_events_total").increment(events as u64);
}

/// The store stopped taking writes.
pub fn store_failed() {
    metrics::counter!("hookhost_store_failures_total").increment(1);
}

/// One ingest request answered.
pub fn ingest(source: &str, status: u16, took: Duration) {
    let source = source.to_owned();
    metrics::counter!("hookhost_ingest_total", "source" => source.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("hookhost_ingest_duration_seconds", "source" => source)
        .record(took.as_secs_f64());
}

/// One attempt recorded.
pub fn attempt(attempt: &Attempt) {
    let plugin = attempt.plugin.clone();
    metrics::counter!("hookhost_attempts_total", "plugin" => plugin.clone(), "outcome" => attempt.outcome.kind())
        .increment(1);
    metrics::histogram!("hookhost_attempt_duration_seconds", "plugin" => plugin.clone())
        .record(attempt.duration_us as f64 / 1e6);
    metrics::histogram!("hookhost_attempt_fuel", "plugin" => plugin.clone())
        .record(attempt.fuel_consumed as f64);
    for call in &attempt.http {
        let result = match (&call.status, &call.error) {
            (_, Some(e)) if e.starts_with("denied") => "denied",
            (Some(_), None) => "ok",
            _ => "error",
        };
        metrics::counter!("hookhost_http_calls_total", "plugin" => plugin.clone(), "result" => result)
            .increment(1);
    }
}

/// One plugin load (or failed load).
pub fn reload(plugin: &str, ok: bool) {
    metrics::counter!(
        "hookhost_reloads_total",
        "plugin" => plugin.to_owned(),
        "result" => if ok { "ok" } else { "error" }
    )
    .increment(1);
}

/// One schedule tick fired.
pub fn schedule_tick(plugin: &str, schedule: &str) {
    metrics::counter!(
        "hookhost_schedule_ticks_total",
        "plugin" => plugin.to_owned(),
        "schedule" => schedule.to_owned()
    )
    .increment(1);
}

/// What a scrape reads now.
pub struct Gauges {
    pub queue_depth: u64,
    pub plugins_loaded: usize,
    pub writable: bool,
    /// Unused warm memory slots, and the bytes they keep resident.
    pub warm_memory: (u32, usize),
}

/// The Prometheus text for a scrape, gauges read now.
pub fn render(gauges: Gauges) -> String {
    let Gauges {
        queue_depth,
        plugins_loaded,
        writable,
        warm_memory: (warm_slots, warm_bytes),
    } = gauges;
    let Some(handle) = handle() else {
        return String::new();
    };
    metrics::gauge!("hookhost_queue_depth").set(queue_depth as f64);
    metrics::gauge!("hookhost_store_writable").set(if writable { 1.0 } else { 0.0 });
    metrics::gauge!("hookhost_plugins_loaded").set(plugins_loaded as f64);
    metrics::gauge!("hookhost_wasm_warm_memories").set(f64::from(warm_slots));
    metrics::gauge!("hookhost_wasm_warm_memory_bytes").set(warm_bytes as f64);
    handle.render()
}
