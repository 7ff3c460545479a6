//! `__NAME__`: a Hookhost handler.
//!
//! Adds up the `amount` of every `shop.order.*` event in kv and, when the
//! operator configures `notify_url`, posts each new total there.
//!
//! - Test: `cargo test` (no host needed).
//! - Build: `cargo build --release --target wasm32-wasip2`, then copy
//!   `target/wasm32-wasip2/release/__CRATE__.wasm` to `__NAME__.wasm`.
//! - `hookhost test __NAME__.wasm cases` runs the component in the sandbox,
//!   offline; copied into the host's `plugins/`, it is served within a second.

use hookhost_sdk::{Event, Handler, HandlerError, Manifest, config, http, kv, log};
use serde_json::{Value, json};

/// The total after adding `order`'s amount to `before`; rejects what
/// cannot be right.
fn add(before: i64, order: &Value) -> Result<i64, HandlerError> {
    match order.get("amount").and_then(Value::as_i64) {
        Some(amount) if amount > 0 => Ok(before + amount),
        _ => Err(HandlerError::reject("amount must be a positive integer")),
    }
}

struct Plugin;

impl Handler for Plugin {
    fn describe() -> Manifest {
        Manifest::new().subscribe("shop.order.*")
    }

    fn handle(event: Event) -> Result<(), HandlerError> {
        let order: Value = event.json()?;
        let total = add(kv::get_json("total")?.unwrap_or(0), &order)?;
        kv::set_json("total", &total)?; // committed only if this attempt succeeds
        if let Some(url) = config::get("notify_url") {
            // Carries a stable Idempotency-Key: a retry does not notify twice.
            let answer = http::post_json(&url, &json!({ "topic": event.topic, "total": total }))?;
            if !answer.is_success() {
                return Err(HandlerError::retry(format!(
                    "notify_url answered {}",
                    answer.status
                )));
            }
        }
        log::with_fields(
            log::Level::Info,
            "order added",
            &[("topic", &event.topic), ("total", &total.to_string())],
        );
        Ok(())
    }
}

hookhost_sdk::export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_positive_amounts_and_rejects_the_rest() {
        assert_eq!(add(5, &json!({ "amount": 7 })).ok(), Some(12));
        assert!(add(5, &json!({ "amount": 0 })).is_err());
        assert!(add(5, &json!({ "amount": "7" })).is_err());
    }
}
