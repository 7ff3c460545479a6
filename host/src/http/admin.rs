//! Read-only admin routes: events, their deliveries and attempts, plugins.

use super::ApiError;
use crate::api;
use crate::core::Core;
use crate::model::{Delivery, EventRecord, EventStatus};
use crate::reload::{self, RollbackError};
use crate::runtime::{LoadFailure, Plugin};
use crate::store::{EventQuery, StoreError};
use axum::Json;
use axum::extract::{Path, Query, State};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use ulid::Ulid;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::Sled(_) | StoreError::Database(_) => {
                ApiError::Unavailable(e.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// `GET /healthz`: 200 while the store takes writes, 503 with the reason
/// while it does not.
pub async fn healthz(State(core): State<Arc<Core>>) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    match core.store.failure() {
        None => Json(api::Health {
            status: "ok".into(),
            reason: None,
        })
        .into_response(),
        Some(reason) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(api::Health {
                status: "store unavailable".into(),
                reason: Some(reason),
            }),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    topic: Option<String>,
    status: Option<String>,
    plugin: Option<String>,
    since_ms: Option<u64>,
    until_ms: Option<u64>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// The store query for `GET /events` and `GET /export` parameters; empty
/// values mean no filter.
fn event_query(params: ListParams, default_limit: usize) -> Result<EventQuery, ApiError> {
    Ok(EventQuery {
        topic: params.topic.filter(|t| !t.is_empty()),
        status: params
            .status
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<EventStatus>())
            .transpose()
            .map_err(ApiError::BadRequest)?,
        before: params
            .cursor
            .filter(|c| !c.is_empty())
            .map(|c| parse_id(&c))
            .transpose()?,
        plugin: params.plugin.filter(|p| !p.is_empty()),
        since_ms: params.since_ms,
        until_ms: params.until_ms,
        limit: params.limit.unwrap_or(default_limit),
    })
}

pub async fn list_events(
    State(core): State<Arc<Core>>,
    Query(params): Query<ListParams>,
) -> Result<Json<api::EventList>, ApiError> {
    let query = event_query(params, 50)?;
    let page = core.store.list_events(&query).await?;
    let events = page
        .events
        .iter()
        .map(|(record, deliveries)| api::EventSummary {
            id: record.id.to_string(),
            topic: record.topic.clone(),
            idempotency_key: record.idempotency_key.clone(),
            received_at_ms: record.received_at_ms,
            status: EventStatus::of(deliveries),
            deliveries: deliveries.iter().map(delivery_summary).collect(),
        })
        .collect();
    Ok(Json(api::EventList {
        events,
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

fn delivery_summary(d: &Delivery) -> api::DeliverySummary {
    api::DeliverySummary {
        id: d.id,
        plugin: d.plugin.clone(),
        status: d.status,
        attempts: d.attempts,
        last_outcome: d.last_outcome.as_ref().map(|o| o.kind().to_owned()),
    }
}

pub async fn show_event(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
) -> Result<Json<api::EventDetail>, ApiError> {
    let id = parse_id(&id)?;
    // One consistent view: never a delivery still `running` beside the
    // attempt that ended it.
    let Some((record, body, view)) = core.store.event_view(id).await? else {
        return Err(ApiError::NotFound(format!("no event {id}")));
    };
    let status = EventStatus::of(&view.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>());
    Ok(Json(api::EventDetail {
        event: event_shown(&record, &body),
        status,
        deliveries: view
            .into_iter()
            .map(|(d, attempts)| api::DeliveryDetail::new(d, attempts))
            .collect(),
    }))
}

/// An event with its body shown as JSON when it is JSON, else as text or
/// base64 (`body_encoding` says which).
pub(super) fn event_shown(record: &EventRecord, body: &[u8]) -> api::EventShown {
    let (body, encoding) = match serde_json::from_slice::<Value>(body) {
        Ok(v) if !body.is_empty() => (v, "json"),
        _ => match std::str::from_utf8(body) {
            Ok(text) => (Value::String(text.to_owned()), "utf8"),
            Err(_) => (
                Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
                "base64",
            ),
        },
    };
    api::EventShown {
        id: record.id.to_string(),
        topic: record.topic.clone(),
        idempotency_key: record.idempotency_key.clone(),
        received_at_ms: record.received_at_ms,
        content_type: record.content_type.clone(),
        headers: record.headers.clone(),
        emitted_by: record.emitted_by,
        provenance: record.provenance.clone(),
        body,
        body_encoding: encoding.to_owned(),
    }
}

pub(super) fn parse_id(id: &str) -> Result<Ulid, ApiError> {
    Ulid::from_string(id).map_err(|e| ApiError::BadRequest(format!("invalid event id {id:?}: {e}")))
}

pub async fn list_plugins(State(core): State<Arc<Core>>) -> Json<api::PluginList> {
    let plugins = core.registry.snapshot();
    let failures = core.registry.failures();
    let loaded = plugins
        .values()
        .map(|p| plugin_info(p, failures.get(&p.name).map(load_failure)))
        .collect();
    let errors = failures
        .iter()
        .map(|(name, f)| api::NamedLoadFailure {
            name: name.clone(),
            file: f.file.clone(),
            error: f.error.clone(),
            at_ms: f.at_ms,
        })
        .collect();
    // Known plugins still loading in the background after a start: events
    // are routed to them already.
    let loading = core.registry.expected().keys().cloned().collect();
    Json(api::PluginList {
        plugins: loaded,
        errors,
        loading,
    })
}

fn load_failure(f: &LoadFailure) -> api::LoadFailure {
    api::LoadFailure {
        file: f.file.clone(),
        error: f.error.clone(),
        at_ms: f.at_ms,
    }
}

pub async fn show_plugin(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
) -> Result<Json<api::PluginInfo>, ApiError> {
    let failure = core.registry.failures().get(&name).map(load_failure);
    let history = core.store.versions(&name).await?;
    let mut shown = match core.registry.get(&name) {
        Some(plugin) => plugin_info(&plugin, failure),
        None if failure.is_some() || !history.is_empty() => api::PluginInfo {
            name: name.clone(),
            loaded: false,
            loading: Some(core.registry.expected().contains_key(&name)),
            serving: None,
            last_error: failure,
            history: None,
        },
        None => return Err(ApiError::NotFound(format!("no plugin {name:?}"))),
    };
    shown.history = Some(history);
    Ok(Json(shown))
}

/// `POST /plugins/{name}/rollback`: to `{"sha256": …}` or the previous version.
pub async fn rollback(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
    body: Option<Json<api::Rollback>>,
) -> Result<Json<api::PluginInfo>, ApiError> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    match reload::rollback(&core, &name, body.sha256.as_deref()).await {
        Ok(plugin) => Ok(Json(plugin_info(&plugin, None))),
        Err(e @ RollbackError::NoHistory(_)) => Err(ApiError::NotFound(e.to_string())),
        Err(
            e @ (RollbackError::NoEarlierVersion(_)
            | RollbackError::UnknownVersion(_)
            | RollbackError::Load(_)),
        ) => Err(ApiError::Conflict(e.to_string())),
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

fn plugin_info(p: &Plugin, last_error: Option<api::LoadFailure>) -> api::PluginInfo {
    let serving = api::Serving {
        version: p.version.clone(),
        contract: p.contract.to_owned(),
        size_bytes: p.size_bytes,
        from_cache: p.from_cache,
        loaded_at_ms: p.loaded_at_ms,
        subscriptions: p.manifest.subscriptions.clone(),
        schedules: crate::schedule::effective(p)
            .into_iter()
            .map(|s| api::ScheduleInfo {
                next_at_ms: s.parsed.next_tick(crate::model::now_ms()),
                name: s.name,
                cron: s.cron,
                from: s.from.to_owned(),
            })
            .collect(),
        retry: p.limits.retry.or(p.manifest.retry).unwrap_or_default(),
        limits: api::LimitsInfo {
            fuel: p.limits.fuel,
            timeout_ms: p.limits.timeout_ms,
            memory_bytes: p.limits.memory_bytes,
            max_concurrency: p.limits.max_concurrency,
        },
        running: p.limits.max_concurrency - p.permits.available_permits(),
    };
    api::PluginInfo {
        name: p.name.clone(),
        loaded: true,
        loading: None,
        serving: Some(serving),
        last_error,
        history: None,
    }
}

/// `POST /config/reload`: re-reads the configuration file and applies its
/// plugin settings (as `SIGHUP` does).
pub async fn reload_config(
    State(core): State<Arc<Core>>,
) -> Result<Json<api::ConfigReloaded>, ApiError> {
    match reload::reload_config(&core) {
        Ok(changed) => Ok(Json(api::ConfigReloaded {
            reloaded: true,
            plugins_changed: changed,
        })),
        Err(e @ reload::ConfigReloadError::NoFile) => Err(ApiError::Conflict(e.to_string())),
        Err(e) => Err(ApiError::Unprocessable(e.to_string())),
    }
}

/// `GET /backup`: a consistent snapshot of the whole store, in the format
/// `hookhost restore` reads. The snapshot is written to an unnamed file in
/// the data directory first (writes wait only for that), then streamed.
pub async fn backup(State(core): State<Arc<Core>>) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    use std::io::Seek as _;
    if core.store.shared() {
        return Err(ApiError::Conflict(
            "this host's store is PostgreSQL: back it up with the database's own tools (pg_dump)"
                .into(),
        ));
    }
    let dir = core.config.data.clone();
    let store = core.store.clone();
    let (file, summary) = tokio::task::spawn_blocking(move || {
        let mut file = tempfile::tempfile_in(&dir)
            .map_err(|e| ApiError::Unavailable(format!("cannot create the snapshot file: {e}")))?;
        let summary = store.backup(&mut file)?;
        file.rewind()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok::<_, ApiError>((file, summary))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    tracing::info!(
        records = summary.records,
        bytes = summary.bytes,
        paused_ms = summary.paused_ms,
        "backup taken"
    );
    let file = tokio::fs::File::from_std(file);
    let chunks = futures_util::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt as _;
        let mut buf = Vec::with_capacity(256 * 1024);
        match file.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), file)),
            Err(e) => Some((Err(e), file)),
        }
    });
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/octet-stream".to_owned(),
            ),
            (
                axum::http::header::CONTENT_LENGTH,
                summary.bytes.to_string(),
            ),
            (
                axum::http::HeaderName::from_static("x-hookhost-backup-records"),
                summary.records.to_string(),
            ),
            (
                axum::http::HeaderName::from_static("x-hookhost-backup-paused-ms"),
                summary.paused_ms.to_string(),
            ),
        ],
        axum::body::Body::from_stream(chunks),
    )
        .into_response())
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(core): State<Arc<Core>>) -> impl axum::response::IntoResponse {
    let text = crate::metrics::render(crate::metrics::Gauges {
        queue_depth: core.store.queue_depth(),
        plugins_loaded: core.registry.snapshot().len(),
        writable: core.store.failure().is_none(),
        warm_memory: core.runtime.warm_memory(),
    });
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// `GET /export`: every matching event, newest first, one JSON object
/// per line (event, body, status, deliveries with their last outcome),
/// streamed a page at a time so that no export is held in memory whole.
pub async fn export_events(
    State(core): State<Arc<Core>>,
    Query(params): Query<ListParams>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    let query = event_query(params, 500)?;
    // The state: the query for the next page, or `None` when done.
    let pages = futures_util::stream::unfold(Some(query), move |query| {
        let core = core.clone();
        async move {
            let mut query = query?;
            let page = match core.store.list_events(&query).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(error = %e, "export stopped: store read failed");
                    return Some((Err(std::io::Error::other(e.to_string())), None));
                }
            };
            let mut chunk = Vec::new();
            for (record, deliveries) in &page.events {
                let body = match core.store.event(record.id).await {
                    Ok(Some((_, body))) => body,
                    _ => Vec::new(),
                };
                let line = api::ExportLine {
                    event: event_shown(record, &body),
                    status: EventStatus::of(deliveries),
                    deliveries: deliveries
                        .iter()
                        .map(|d| api::ExportedDelivery {
                            id: d.id,
                            plugin: d.plugin.clone(),
                            status: d.status,
                            attempts: d.attempts,
                            last_outcome: d.last_outcome.clone(),
                            updated_at_ms: d.updated_at_ms,
                        })
                        .collect(),
                };
                if serde_json::to_writer(&mut chunk, &line).is_ok() {
                    chunk.push(b'\n');
                }
            }
            let next = page.next_cursor.map(|cursor| {
                query.before = Some(cursor);
                query
            });
            Some((Ok::<_, std::io::Error>(chunk), next))
        }
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(pages),
    )
        .into_response())
}
