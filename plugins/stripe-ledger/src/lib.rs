//! Keeps a ledger of Stripe payment intents.
//!
//! Subscribes to `stripe.payment_intent.*`. For each succeeded payment it adds
//! the received amount to the balance of its currency (`balance:<currency>` in
//! kv), records the entry (`entry:<payment intent id>`) so a payment is counted
//! once even if Stripe sends it twice, and emits `ledger.entry`. Payments at or
//! above the configured `large_payment_cents` are logged as warnings and, when
//! the secret `notify_url` is set (a Slack-style incoming-webhook URL, whose
//! host must be in `allowed_hosts`), posted there as `{"text": …}` with the
//! payment intent as idempotency key. Failed payments are counted per
//! currency.

use hookhost_sdk::{
    Event, Handler, HandlerError, Manifest, RetryPolicy, config, emit, http, kv, log,
};
// `PaymentIntentEvent`, `PaymentIntentData` and `PaymentIntent`, generated at
// build time from the contract the host checks `stripe.payment_intent.*`
// bodies against, so the handler reads exactly what was validated.
typify::import_types!(schema = "../../contracts/stripe-payment-intent.schema.json");

struct StripeLedger;

impl Handler for StripeLedger {
    fn describe() -> Manifest {
        Manifest::new()
            .subscribe("stripe.payment_intent.*")
            .retry(RetryPolicy {
                max_attempts: 8,
                initial_backoff_ms: 1_000,
                max_backoff_ms: 600_000,
            })
    }

    fn handle(event: Event) -> Result<(), HandlerError> {
        let stripe: PaymentIntentEvent = event.json()?;
        let intent = stripe.data.object;
        let currency = intent.currency.to_ascii_lowercase();
        match stripe.type_.as_str() {
            "payment_intent.succeeded" => record_payment(&event, &stripe.id, &intent, &currency),
            "payment_intent.payment_failed" => {
                let failures = kv::increment(&format!("failures:{currency}"), 1)?;
                log::with_fields(
                    log::Level::Warn,
                    "payment failed",
                    &[
                        ("payment_intent", &intent.id),
                        ("failures", &failures.to_string()),
                    ],
                );
                Ok(())
            }
            other => {
                log::debug(&format!("ignoring {other}"));
                Ok(())
            }
        }
    }
}

fn record_payment(
    event: &Event,
    stripe_event_id: &str,
    intent: &PaymentIntent,
    currency: &str,
) -> Result<(), HandlerError> {
    let entry_key = format!("entry:{}", intent.id);
    if kv::get(&entry_key).is_some() {
        log::info(&format!("payment {} already recorded", intent.id));
        return Ok(());
    }
    let cents = intent
        .amount_received
        .filter(|&received| received > 0)
        .unwrap_or(intent.amount);
    if cents <= 0 {
        return Err(HandlerError::reject(format!(
            "payment {} has no amount",
            intent.id
        )));
    }
    let balance = kv::increment(&format!("balance:{currency}"), cents)?;
    kv::set_json(
        &entry_key,
        &serde_json::json!({ "cents": cents, "event": stripe_event_id }),
    )?;

    let entry = serde_json::json!({
        "payment_intent": intent.id,
        "customer": intent.customer,
        "currency": currency,
        "cents": cents,
        "balance_cents": balance,
        "source_event": event.id,
    });
    emit::json(
        "ledger.entry",
        &entry,
        Some(&format!("ledger-{}", intent.id)),
    )?;

    let large = config::get("large_payment_cents")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(100_000);
    let cents_text = cents.to_string();
    let fields = [
        ("payment_intent", intent.id.as_str()),
        ("cents", cents_text.as_str()),
        ("currency", currency),
    ];
    if cents >= large {
        log::with_fields(log::Level::Warn, "large payment recorded", &fields);
        if let Some(url) = config::get("notify_url") {
            notify(&url, intent, cents, currency)?;
        }
    } else {
        log::with_fields(log::Level::Info, "payment recorded", &fields);
    }
    Ok(())
}

/// Posts a large payment to the notification webhook. A failure retries the
/// attempt; the idempotency key keeps the other end from posting it twice.
fn notify(
    url: &str,
    intent: &PaymentIntent,
    cents: i64,
    currency: &str,
) -> Result<(), HandlerError> {
    let text = format!(
        "Large payment: {}.{:02} {} ({}{})",
        cents / 100,
        cents % 100,
        currency.to_ascii_uppercase(),
        intent.id,
        intent
            .customer
            .as_deref()
            .map(|c| format!(", customer {c}"))
            .unwrap_or_default(),
    );
    let response = http::Request::post(url)
        .json(&serde_json::json!({ "text": text }))?
        .idempotency_key(&format!("large-payment-{}", intent.id))
        .send()?;
    if !response.is_success() {
        return Err(HandlerError::retry(format!(
            "notification answered {}",
            response.status
        )));
    }
    log::info("large payment notified");
    Ok(())
}

hookhost_sdk::export!(StripeLedger);
