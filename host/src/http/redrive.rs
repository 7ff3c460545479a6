//! Re-running work: replays of stored events and dead-letter re-drives.

use super::ApiError;
use crate::api;
use crate::core::Core;
use crate::model::{DeliveryId, DeliveryStatus};
use crate::store::EventQuery;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;

/// Events one bulk request may touch at most.
const BULK_CAP: usize = 10_000;

/// `POST /events/{id}/replay`: new deliveries of a stored event to its
/// current subscribers, or to one plugin, optionally pinned to a version.
pub async fn replay_event(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
    body: Option<Json<api::ReplayOne>>,
) -> Result<(StatusCode, Json<api::Replayed>), ApiError> {
    super::ingest::check_queue(&core)?;
    let id = super::admin::parse_id(&id)?;
    let api::ReplayOne { plugin, version } = body.map(|Json(b)| b).unwrap_or_default();
    let Some((record, body)) = core.store.event(id).await? else {
        return Err(ApiError::NotFound(format!("no event {id}")));
    };
    let key = record.idempotency_key.as_deref();
    let plugins = match (&plugin, &version) {
        (None, Some(_)) => return Err(ApiError::BadRequest("a version needs a plugin".into())),
        (None, None) => core.registry.routes(&record.topic, key, &body),
        (Some(name), version) => {
            let history = core.store.versions(name).await?;
            if history.is_empty() && core.registry.get(name).is_none() {
                return Err(ApiError::NotFound(format!("no plugin {name:?}")));
            }
            if let Some(v) = version
                && !history.iter().any(|h| &h.sha256 == v)
            {
                return Err(ApiError::NotFound(format!(
                    "plugin {name:?} never had version {v}"
                )));
            }
            vec![core.registry.route(name, key, &body)]
        }
    };
    if plugins.is_empty() {
        return Err(ApiError::Conflict(format!(
            "no plugin subscribes to {:?}",
            record.topic
        )));
    }
    let ids = core
        .store
        .replay(id, &plugins, version.as_deref())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {id}")))?;
    core.wake.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(api::Replayed { deliveries: ids }),
    ))
}

/// `POST /replay`: replays every stored event matching a filter, newest
/// first, up to `limit` (at most 10 000).
pub async fn replay_many(
    State(core): State<Arc<Core>>,
    Json(filter): Json<api::ReplayMany>,
) -> Result<Json<api::ReplayedMany>, ApiError> {
    super::ingest::check_queue(&core)?;
    let limit = filter.limit.unwrap_or(1000).min(BULK_CAP);
    let mut query = EventQuery {
        topic: filter.topic.clone(),
        status: filter.status,
        since_ms: filter.since_ms,
        until_ms: filter.until_ms,
        before: None,
        limit: 1000,
        ..EventQuery::default()
    };
    let (mut events, mut deliveries) = (0usize, 0usize);
    'pages: loop {
        let page = core.store.list_events(&query).await?;
        for (record, _) in &page.events {
            if filter
                .until_ms
                .is_some_and(|until| record.received_at_ms > until)
            {
                continue;
            }
            if filter
                .since_ms
                .is_some_and(|since| record.received_at_ms < since)
            {
                break 'pages; // newest first: everything after is older
            }
            if events == limit {
                break 'pages;
            }
            let Some((_, body)) = core.store.event(record.id).await? else {
                continue;
            };
            let key = record.idempotency_key.as_deref();
            let plugins = match &filter.plugin {
                Some(p) => vec![core.registry.route(p, key, &body)],
                None => core.registry.routes(&record.topic, key, &body),
            };
            if plugins.is_empty() {
                continue;
            }
            deliveries += core
                .store
                .replay(record.id, &plugins, None)
                .await?
                .map_or(0, |ids| ids.len());
            events += 1;
        }
        match page.next_cursor {
            Some(cursor) => query.before = Some(cursor),
            None => break,
        }
    }
    core.wake.notify_one();
    Ok(Json(api::ReplayedMany {
        events,
        deliveries,
        capped: events == limit,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadParams {
    plugin: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `GET /dead-letters?plugin=&limit=&cursor=`: oldest first.
pub async fn list_dead(
    State(core): State<Arc<Core>>,
    Query(params): Query<DeadParams>,
) -> Result<Json<api::DeadLetterList>, ApiError> {
    let after = params
        .cursor
        .filter(|c| !c.is_empty())
        .map(|c| parse_delivery(&c))
        .transpose()?;
    let page = core
        .store
        .dead_letters(params.plugin.as_deref(), after, params.limit.unwrap_or(50))
        .await?;
    let mut letters = Vec::with_capacity(page.deliveries.len());
    for d in &page.deliveries {
        let topic = core.store.event(d.id.event).await?.map(|(e, _)| e.topic);
        letters.push(api::DeadLetter {
            delivery: d.id,
            event: d.id.event.to_string(),
            topic,
            plugin: d.plugin.clone(),
            attempts: d.attempts,
            last_outcome: d.last_outcome.clone(),
            dead_since_ms: d.updated_at_ms,
        });
    }
    Ok(Json(api::DeadLetterList {
        dead_letters: letters,
        next_cursor: page.next_cursor,
    }))
}

/// `POST /dead-letters/{delivery}/retry`: back to the queue with a full
/// retry budget.
pub async fn retry_dead(
    State(core): State<Arc<Core>>,
    Path(delivery): Path<String>,
) -> Result<(StatusCode, Json<api::Retried>), ApiError> {
    let id = parse_delivery(&delivery)?;
    super::ingest::check_queue(&core)?;
    if core.store.retry_dead(id).await? {
        core.wake.notify_one();
        Ok((
            StatusCode::ACCEPTED,
            Json(api::Retried {
                delivery: id,
                status: DeliveryStatus::Pending,
            }),
        ))
    } else if core.store.delivery(id).await?.is_some() {
        Err(ApiError::Conflict(format!(
            "delivery {id} is not a dead letter"
        )))
    } else {
        Err(ApiError::NotFound(format!("no delivery {id}")))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RetryAll {
    plugin: Option<String>,
}

/// `POST /dead-letters/retry?plugin=`: re-drives every dead letter (of one
/// plugin), up to 10 000.
pub async fn retry_all_dead(
    State(core): State<Arc<Core>>,
    Query(filter): Query<RetryAll>,
) -> Result<Json<api::RetriedMany>, ApiError> {
    super::ingest::check_queue(&core)?;
    let mut retried = 0;
    let mut after = None;
    loop {
        let page = core
            .store
            .dead_letters(filter.plugin.as_deref(), after, 1000)
            .await?;
        for d in &page.deliveries {
            if retried == BULK_CAP {
                break;
            }
            if core.store.retry_dead(d.id).await? {
                retried += 1;
            }
        }
        match page.next_cursor {
            Some(next) if retried < BULK_CAP => after = Some(next),
            _ => break,
        }
    }
    core.wake.notify_one();
    Ok(Json(api::RetriedMany {
        retried,
        capped: retried == BULK_CAP,
    }))
}

fn parse_delivery(text: &str) -> Result<DeliveryId, ApiError> {
    text.parse().map_err(ApiError::BadRequest)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuarantineParams {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `GET /quarantine?limit=&cursor=`: bodies refused by a contract, newest
/// first.
pub async fn list_quarantine(
    State(core): State<Arc<Core>>,
    Query(params): Query<QuarantineParams>,
) -> Result<Json<api::QuarantineList>, ApiError> {
    let before = params
        .cursor
        .filter(|c| !c.is_empty())
        .map(|c| super::admin::parse_id(&c))
        .transpose()?;
    let limit = params.limit.unwrap_or(50).clamp(1, 1000);
    let items = core.store.quarantined(before, limit).await?;
    let next_cursor = (items.len() == limit)
        .then(|| items.last().map(|q| q.id.to_string()))
        .flatten();
    let quarantine = items
        .iter()
        .map(|q| api::QuarantineItem {
            id: q.id.to_string(),
            received_at_ms: q.received_at_ms,
            topic: q.topic.clone(),
            idempotency_key: q.idempotency_key.clone(),
            contract: q.contract.clone(),
            violations: q.violations.clone(),
            body: String::from_utf8_lossy(&q.body).into_owned(),
        })
        .collect();
    Ok(Json(api::QuarantineList {
        quarantine,
        next_cursor,
    }))
}

/// `POST /quarantine/{id}/reingest`: checks the body against the contracts
/// as they are now; if it passes, ingests it and releases it from quarantine.
pub async fn reingest(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    let id = super::admin::parse_id(&id)?;
    let Some(record) = core.store.quarantined_one(id).await? else {
        return Err(ApiError::NotFound(format!("nothing quarantined as {id}")));
    };
    if let Err(violation) = core.contracts.check(&record.topic, &record.body) {
        let answer = api::Refused {
            error: format!("body still violates the contract for {}", violation.pattern),
            violations: violation.violations,
            quarantine_id: None,
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(answer)).into_response());
    }
    let response = super::ingest::store_event(&core, record.to_event()).await?;
    core.store.release(id).await?;
    Ok(response)
}
