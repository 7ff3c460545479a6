//! What the store reports through the `metrics` facade: the host installs
//! the Prometheus recorder that serves them at `GET /metrics`.

use std::time::Duration;

/// One write transaction: how long it took (its wait for sled's lock
/// included) and how many ingests or results it carried.
pub fn transaction(kind: &'static str, took: Duration, items: usize) {
    metrics::histogram!("hookhost_store_transaction_seconds", "kind" => kind)
        .record(took.as_secs_f64());
    metrics::histogram!("hookhost_store_transaction_items", "kind" => kind).record(items as f64);
}

/// One group-commit flush: how long it took and how many waiters it served.
pub fn flushed(took: Duration, waiters: usize) {
    metrics::histogram!("hookhost_store_flush_duration_seconds").record(took.as_secs_f64());
    metrics::histogram!("hookhost_store_flush_waiters").record(waiters as f64);
}
