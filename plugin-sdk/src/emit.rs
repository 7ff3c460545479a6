//! Emits new events into the host.
//!
//! Emitted events are buffered and stored only when the attempt succeeds; they
//! are then delivered to their own subscribers like any posted event. Give an
//! idempotency key derived from the incoming event (e.g. its id) so that a
//! replayed event does not emit twice.
//!
//! ```no_run
//! hookhost_sdk::emit::json("ledger.entry", &serde_json::json!({"cents": 500}), Some("evt-1")).unwrap();
//! ```

use crate::HandlerError;
use crate::wit::hookhost::plugin::emit as wit_emit;
use serde::Serialize;

/// Emits an event with a raw body.
pub fn bytes(topic: &str, body: &[u8], idempotency_key: Option<&str>) {
    wit_emit::emit(topic, body, idempotency_key);
}

/// Emits an event whose body is `value` as JSON.
pub fn json<T: Serialize + ?Sized>(
    topic: &str,
    value: &T,
    idempotency_key: Option<&str>,
) -> Result<(), HandlerError> {
    let body = serde_json::to_vec(value)
        .map_err(|e| HandlerError::reject(format!("cannot encode event for {topic:?}: {e}")))?;
    wit_emit::emit(topic, &body, idempotency_key);
    Ok(())
}
