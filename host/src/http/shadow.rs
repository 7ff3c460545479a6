//! Candidate versions and shadow runs: try a new version of a handler on
//! recorded events before it serves anything; and exact replays of one
//! recorded attempt.

use super::ApiError;
use crate::api;
use crate::core::Core;
use crate::exact::ExactError;
use crate::model::valid_plugin_name;
use crate::reload;
use crate::shadow::{self, ShadowError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use std::sync::Arc;

/// Largest component accepted as a candidate (a Python guest is ~18 MB).
pub const MAX_COMPONENT_BYTES: usize = 64 * 1024 * 1024;

/// `POST /plugins/{name}/candidates`: the body is a component; it is
/// compiled, described and kept for shadow runs, not installed.
pub async fn upload(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<api::Candidate>), ApiError> {
    check_name(&name)?;
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge {
                limit: MAX_COMPONENT_BYTES,
            }
        } else {
            ApiError::BadRequest(format!("cannot read body: {}", rejection.body_text()))
        }
    })?;
    let plugin = reload::load_candidate(&core, &name, bytes.to_vec())
        .await
        .map_err(|e| ApiError::Unprocessable(format!("not a usable component: {e}")))?;
    tracing::info!(plugin = %name, version = %plugin.version, "candidate version uploaded");
    Ok((
        StatusCode::CREATED,
        Json(api::Candidate {
            plugin: name,
            version: plugin.version.clone(),
            size_bytes: plugin.size_bytes,
            subscriptions: plugin.manifest.subscriptions.clone(),
        }),
    ))
}

/// `POST /plugins/{name}/shadow`: runs the candidate on recorded events the
/// plugin handled and reports, per event, how it differs from the live run.
pub async fn run(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
    Json(body): Json<api::ShadowRequest>,
) -> Result<Json<shadow::Report>, ApiError> {
    check_name(&name)?;
    let filter = shadow::Filter {
        topic: body.topic,
        since_ms: body.since_ms,
        until_ms: body.until_ms,
        limit: body.limit,
    };
    match shadow::run(&core, &name, &body.version, &filter).await {
        Ok(report) => {
            tracing::info!(plugin = %name, candidate = %body.version, events = report.events, different = report.different, "shadow run done");
            Ok(Json(report))
        }
        Err(e @ ShadowError::BadFilter(_)) => Err(ApiError::BadRequest(e.to_string())),
        Err(e @ ShadowError::Candidate { .. }) => Err(ApiError::NotFound(e.to_string())),
        Err(ShadowError::Store(e)) => Err(e.into()),
    }
}

/// `POST /events/{id}/replay-exact`: re-executes one recorded attempt
/// offline with what it read, and reports whether it did the same.
pub async fn replay_exact(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
    body: Option<Json<api::ExactReplayRequest>>,
) -> Result<Json<api::ExactReplay>, ApiError> {
    let id = super::admin::parse_id(&id)?;
    let request = body.map(|Json(b)| b).unwrap_or_default();
    match crate::exact::replay(&core, id, &request).await {
        Ok(report) => {
            tracing::info!(event = %id, plugin = %report.plugin, attempt = report.attempt, exact = report.exact, "exact replay done");
            Ok(Json(report))
        }
        Err(ExactError::NotFound(e)) => Err(ApiError::NotFound(e)),
        Err(ExactError::BadRequest(e)) => Err(ApiError::BadRequest(e)),
        Err(ExactError::Store(e)) => Err(e.into()),
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if valid_plugin_name(name) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "{name:?} is not a plugin name"
        )))
    }
}
