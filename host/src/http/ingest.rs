//! `POST /events/{topic}`: validate → persist (flushed) → 202.

use super::ApiError;
use crate::contracts::Violation;
use crate::core::Core;
use crate::model::{
    MAX_IDEMPOTENCY_KEY, NewEvent, Provenance, Quarantined, now_ms, validate_topic,
};
use crate::sources::SourceError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tracing::Instrument as _;

/// Headers never stored: credentials, and framing that means nothing later.
const DROPPED_HEADERS: [&str; 7] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
];

pub async fn ingest(
    State(core): State<Arc<Core>>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = std::time::Instant::now();
    let answer = ingest_event(&core, topic, &headers, body).await;
    measured("events", started, answer)
}

/// `POST /hooks/{source}`: verify the sender's signature, derive the topic
/// and idempotency key from its headers and body, then ingest.
pub async fn hook(
    State(core): State<Arc<Core>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = std::time::Instant::now();
    let answer = ingest_hook(&core, &source, &headers, body).await;
    // Unknown sources share one label, so a scanner cannot grow the metrics.
    let label = if core.sources.contains_key(&source) {
        source.as_str()
    } else {
        "unknown"
    };
    measured(label, started, answer)
}

/// The answer, counted and timed under `source`.
fn measured(
    source: &str,
    started: std::time::Instant,
    answer: Result<Response, ApiError>,
) -> Response {
    let response = answer.unwrap_or_else(IntoResponse::into_response);
    crate::metrics::ingest(source, response.status().as_u16(), started.elapsed());
    response
}

async fn ingest_event(
    core: &Core,
    topic: String,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = read_body(core, body)?;
    validate_topic(&topic).map_err(ApiError::BadRequest)?;
    if let Some(reserved) = crate::model::refusal(&core.reserved, &topic, None) {
        return Err(ApiError::Forbidden(reserved.explain(&topic)));
    }
    let key = idempotency_key(headers)?;
    accept(core, topic, key, Provenance::Api, headers, body).await
}

async fn ingest_hook(
    core: &Core,
    source: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Some(src) = core.sources.get(source) else {
        return Err(ApiError::NotFound(format!(
            "no source {source:?}: configure [sources.{source}] in hookhost.toml"
        )));
    };
    let body = read_body(core, body)?;
    let limit = src
        .config
        .body_limit_bytes
        .unwrap_or(core.config.body_limit_bytes);
    if body.len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let now_secs = now_ms() / 1000;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let derived = src.verify(header, &body, now_secs).map_err(|e| match e {
        SourceError::Signature(reason) => {
            tracing::warn!(source = %source, %reason, "webhook refused: bad signature");
            ApiError::Unauthorized(format!("signature check failed: {reason}"))
        }
        SourceError::Malformed(reason) => ApiError::BadRequest(reason),
    })?;
    if let Some(reserved) = crate::model::refusal(&core.reserved, &derived.topic, Some(source)) {
        return Err(ApiError::Forbidden(reserved.explain(&derived.topic)));
    }
    if let Some(key) = &derived.idempotency_key {
        check_idempotency_key(key)?;
    }
    let provenance = Provenance::Source {
        name: source.to_owned(),
        verified: src.verifies(),
    };
    accept(
        core,
        derived.topic,
        derived.idempotency_key,
        provenance,
        headers,
        body,
    )
    .await
}

fn read_body(core: &Core, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge {
                limit: core.config.body_limit_bytes,
            }
        } else {
            ApiError::BadRequest(format!(
                "cannot read body: {}",
                rejection.body_text().to_lowercase()
            ))
        }
    })
}

/// Stores a validated event (flushed) and answers 202, or 200 for a known
/// idempotency key.
async fn accept(
    core: &Core,
    topic: String,
    idempotency_key: Option<String>,
    provenance: Provenance,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if content_type.as_deref().is_some_and(is_json)
        && let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body)
    {
        return Err(ApiError::BadRequest(format!("body is not valid json: {e}")));
    }
    let event = NewEvent {
        topic,
        idempotency_key,
        headers: kept_headers(headers, &core.config.strip_headers),
        content_type,
        body: body.to_vec(),
        provenance,
    };
    if let Err(violation) = core.contracts.check(&event.topic, &event.body) {
        return quarantine(core, event, violation).await;
    }
    store_event(core, event).await
}

/// Stores an event and its deliveries (flushed); 202, or 200 for a known
/// idempotency key.
pub(super) async fn store_event(core: &Core, event: NewEvent) -> Result<Response, ApiError> {
    let span = tracing::info_span!(
        "ingest",
        topic = %event.topic,
        event = tracing::field::Empty,
        deliveries = tracing::field::Empty,
    );
    store_in(core, event).instrument(span).await
}

async fn store_in(core: &Core, event: NewEvent) -> Result<Response, ApiError> {
    let routes = core
        .registry
        .routes(&event.topic, event.idempotency_key.as_deref(), &event.body);
    if !routes.is_empty() {
        check_queue(core)?;
    }
    let ingested = core
        .store
        .ingest(event, &routes)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let span = tracing::Span::current();
    span.record("event", tracing::field::display(ingested.id));
    span.record("deliveries", routes.len());
    tracing::debug!(duplicate = ingested.duplicate, "event stored");
    let status = if ingested.duplicate {
        StatusCode::OK
    } else {
        // Only a new delivery gives the dispatcher work. Its scan reads
        // sled on a runtime thread, and a read waits while a transaction
        // waits for a flush: waking it for every event blocked one of the
        // runtime's threads for milliseconds at a time under ingest alone.
        if !routes.is_empty() {
            core.wake.notify_one();
        }
        StatusCode::ACCEPTED
    };
    let answer = crate::api::Ingested {
        id: ingested.id.to_string(),
        duplicate: ingested.duplicate,
    };
    Ok((status, Json(answer)).into_response())
}

/// Refuses new deliveries while the queue is at its configured depth.
pub(super) fn check_queue(core: &Core) -> Result<(), ApiError> {
    let depth = core.store.queue_depth();
    let limit = core.config.max_queue_depth;
    if depth >= limit {
        tracing::warn!(depth, limit, "queue full: ingest refused with 503");
        return Err(ApiError::QueueFull { depth, limit });
    }
    Ok(())
}

/// Keeps a body that broke its contract and answers 422 with the reasons.
async fn quarantine(
    core: &Core,
    event: NewEvent,
    violation: Violation,
) -> Result<Response, ApiError> {
    let record = Quarantined {
        id: core.store.new_id(),
        received_at_ms: now_ms(),
        topic: event.topic,
        idempotency_key: event.idempotency_key,
        headers: event.headers,
        content_type: event.content_type,
        body: event.body,
        contract: violation.pattern.clone(),
        violations: violation.violations.clone(),
        provenance: Some(event.provenance),
    };
    core.store
        .quarantine(&record)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    tracing::warn!(topic = %record.topic, contract = %record.contract, id = %record.id, "body violates its contract: quarantined");
    let answer = crate::api::Refused {
        error: format!("body violates the contract for {}", violation.pattern),
        violations: violation.violations,
        quarantine_id: Some(record.id.to_string()),
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(answer)).into_response())
}

fn is_json(content_type: &str) -> bool {
    let essence = media_type(content_type);
    essence == "application/json" || essence.ends_with("+json")
}

/// A content type's media type, without parameters, lowercase.
pub(super) fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::BadRequest("idempotency-key must be visible ascii".into()))?;
    check_idempotency_key(key)?;
    Ok(Some(key.to_owned()))
}

fn check_idempotency_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::BadRequest(format!(
            "idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
        )));
    }
    Ok(())
}

/// The headers stored with an event: all but credentials (the built-in
/// list and `strip`) and framing.
fn kept_headers(headers: &HeaderMap, strip: &[String]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| !DROPPED_HEADERS.contains(&name.as_str()))
        .filter(|(name, _)| !strip.iter().any(|s| s.eq_ignore_ascii_case(name.as_str())))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_content_types_are_recognised() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/vnd.github+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
