//! The `outbox` import of `hookhost:plugin@0.2.1`, and the host's sending of
//! what it queued.
//!
//! `send-after-commit` checks the request as `fetch` would (URL, method,
//! headers, size, `allowed_hosts` by name) and buffers it as an outbox event
//! ([`crate::model::OUTBOX_TOPIC`]) among the attempt's emitted events, so
//! it commits with the attempt's success or not at all. [`send`] is one try
//! of a committed request, through the same allow-list, address check and
//! budgets as a handler's own calls.
//!
//! # Bounds
//! At most [`MAX_OUTBOX_PER_ATTEMPT`] requests per attempt, each counted
//! against the attempt's emit limits (count and bytes).

use super::HostState;
use super::fetch::{self, IDEMPOTENCY_KEY};
use super::world::v0_2::hookhost::plugin::http as wit;
use super::world::v0_2_1::hookhost::plugin::outbox;
use crate::model::{
    HttpCall, MAX_OUTBOX_PER_ATTEMPT, NewEvent, OUTBOX_DEFAULT_TIMEOUT_MS, OUTBOX_TOPIC,
    OutboxRequest, Outcome, PluginLimits, Provenance,
};
use http_body_util::BodyExt as _;
use std::time::{Duration, Instant};
use wasmtime_wasi_http::{RequestOptions, WasiHttpHooks as _};

impl outbox::Host for HostState {
    fn send_after_commit(
        &mut self,
        request: wit::Request,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let Some(event_id) = self.call.event_id.clone() else {
            return Ok(Err(wit::Error::Denied(
                "the outbox is not allowed in describe()".into(),
            )));
        };
        let index = self.call.queued;
        if index as usize >= MAX_OUTBOX_PER_ATTEMPT {
            return Ok(Err(wit::Error::Denied(format!(
                "more than {MAX_OUTBOX_PER_ATTEMPT} outbox requests in one attempt"
            ))));
        }
        let default_key = format!("{event_id}:{}:outbox:{index}", self.call.plugin);
        let key = fetch::key_of(&request, &default_key);
        // Checked now as a call would be, so the handler hears of a bad
        // request while it can still do something about it.
        let built = match fetch::build(request.clone(), default_key) {
            Ok(built) => built,
            Err(e) => return Ok(Err(e)),
        };
        if !self.outbound.allows(built.uri()) {
            return Ok(Err(wit::Error::Denied(format!(
                "{} is not in the plugin's allowed_hosts",
                built.uri().host().unwrap_or_default()
            ))));
        }
        let call = &self.call;
        let body = request.body.unwrap_or_default();
        if std::str::from_utf8(&body).is_err()
            && let Some(secret) = call.secret_in(&body)
        {
            return Ok(Err(wit::Error::Invalid(format!(
                "a body that is not UTF-8 holds the value of secret {secret:?}, which the outbox \
                 cannot store as a placeholder"
            ))));
        }
        let mut queued = OutboxRequest {
            method: request.method,
            url: call.redact(&request.url),
            headers: request
                .headers
                .into_iter()
                .filter(|(name, _)| !name.eq_ignore_ascii_case(IDEMPOTENCY_KEY))
                .map(|(name, value)| (name, call.redact(&value)))
                .collect(),
            body: None,
            body_base64: None,
            idempotency_key: key,
            timeout_ms: request.timeout_ms.unwrap_or(OUTBOX_DEFAULT_TIMEOUT_MS),
        };
        match String::from_utf8(body) {
            Ok(text) => queued.body = Some(call.redact(&text)),
            Err(e) => queued.set_body(e.into_bytes()),
        }
        let body = serde_json::to_vec(&queued)?;
        if let Err(e) = self.check_emit(OUTBOX_TOPIC, &body) {
            return Ok(Err(wit::Error::TooLarge(format!("{e:#}"))));
        }
        self.call.queued += 1;
        self.call.emit_bytes += body.len() + OUTBOX_TOPIC.len();
        self.call.emitted.push(NewEvent {
            topic: OUTBOX_TOPIC.to_owned(),
            idempotency_key: None,
            headers: Vec::new(),
            content_type: Some("application/json".to_owned()),
            body,
            provenance: Provenance::Emitted {
                plugin: self.call.plugin.clone(),
            },
        });
        Ok(Ok(()))
    }
}

/// One try of a committed outbox request.
pub struct Sent {
    pub outcome: Outcome,
    /// The call as an attempt records it; `None` when the stored request
    /// could not be read.
    pub call: Option<HttpCall>,
    pub duration_us: u64,
}

/// Sends `request`, queued by the plugin whose limits are `limits`: 2xx is
/// success; 408, 425, 429, 5xx and no answer are worth another try; any
/// other answer, and a refusal, are final.
pub async fn send(limits: &PluginLimits, request: &OutboxRequest) -> Sent {
    let started = Instant::now();
    let request = request.with_secrets(
        limits
            .secrets
            .iter()
            .map(|(key, secret)| (key.as_str(), secret.expose())),
    );
    let body = match request.body_bytes() {
        Ok(body) => body,
        Err(e) => return unreadable(started, e),
    };
    let record = wit::Request {
        method: request.method,
        url: request.url,
        headers: request.headers,
        body: Some(body),
        idempotency_key: Some(request.idempotency_key.unwrap_or_default()),
        timeout_ms: None,
    };
    let built = match fetch::build(record, String::new()) {
        Ok(built) => built,
        Err(e) => return unreadable(started, fetch::message(&e).to_owned()),
    };
    let timeout = Duration::from_millis(request.timeout_ms.into());
    let mut outbound = super::outbound::Outbound::new(limits.outbound.clone(), timeout);
    let options = RequestOptions {
        connect_timeout: Some(timeout),
        first_byte_timeout: Some(timeout),
        between_bytes_timeout: Some(timeout),
    };
    let calls = outbound.calls.clone();
    let sent = outbound.send_request(built, Some(options), Box::new(async { Ok(()) }));
    let outcome = match Box::into_pin(sent).await {
        Ok((response, io)) => {
            // The answer's body is not kept; reading it lets the receiver
            // finish writing, within the try's time.
            let io = tokio::spawn(Box::into_pin(io));
            let left = timeout.saturating_sub(started.elapsed());
            let _ = tokio::time::timeout(left, response.into_body().collect()).await;
            io.abort();
            None
        }
        Err(e) => Some(e),
    };
    let call = calls.lock().ok().and_then(|mut c| c.kept.pop());
    let outcome = match (&call, outcome) {
        (
            Some(HttpCall {
                status: Some(status),
                origin,
                ..
            }),
            _,
        ) => match status {
            200..=299 => Outcome::Ok,
            408 | 425 | 429 | 500..=599 => Outcome::Retry(format!("{origin} answered {status}")),
            _ => Outcome::Reject(format!("{origin} answered {status}: not retried")),
        },
        (_, Some(wasmtime_wasi_http::Error::HttpRequestDenied))
        | (_, Some(wasmtime_wasi_http::Error::DestinationIpProhibited)) => Outcome::Reject(
            call.as_ref()
                .and_then(|c| c.error.clone())
                .unwrap_or_else(|| "denied".into()),
        ),
        (_, e) => Outcome::Retry(
            call.as_ref()
                .and_then(|c| c.error.clone())
                .or(e.map(|e| e.to_string()))
                .unwrap_or_else(|| "no answer".into()),
        ),
    };
    Sent {
        outcome,
        call,
        duration_us: started.elapsed().as_micros() as u64,
    }
}

fn unreadable(started: Instant, why: String) -> Sent {
    Sent {
        outcome: Outcome::Reject(format!("the stored request cannot be sent: {why}")),
        call: None,
        duration_us: started.elapsed().as_micros() as u64,
    }
}
