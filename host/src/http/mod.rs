//! The HTTP API (axum): ingest, admin reads, health.
//!
//! # Invariant
//! The ingest handler never awaits a plugin: it validates, persists (flushed)
//! and answers 202; attempts run later in `dispatch/`.

mod admin;
mod error;
mod ingest;
mod redrive;

pub use error::ApiError;

use crate::core::Core;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use std::sync::Arc;

/// The host's routes over `core`. `admin_token`: when set, admin routes
/// require `Authorization: Bearer <token>`.
pub fn router(core: Arc<Core>, admin_token: Option<String>) -> Router {
    let admin = Router::new()
        .route("/events", get(admin::list_events))
        .route("/events/{id}", get(admin::show_event))
        .route("/plugins", get(admin::list_plugins))
        .route("/plugins/{name}", get(admin::show_plugin))
        .route("/plugins/{name}/rollback", post(admin::rollback))
        .route("/events/{id}/replay", post(redrive::replay_event))
        .route("/replay", post(redrive::replay_many))
        .route("/dead-letters", get(redrive::list_dead))
        .route("/dead-letters/retry", post(redrive::retry_all_dead))
        .route("/dead-letters/{delivery}/retry", post(redrive::retry_dead))
        .route("/quarantine", get(redrive::list_quarantine))
        .route("/quarantine/{id}/reingest", post(redrive::reingest))
        .route_layer(middleware::from_fn_with_state(
            Arc::new(admin_token),
            require_token,
        ));
    Router::new()
        // `POST /events/{topic}`: the segment is named like the GET's because
        // the router requires one name per position.
        .route("/events/{id}", post(ingest::ingest))
        .route("/hooks/{source}", post(ingest::hook))
        .layer(DefaultBodyLimit::max(core.config.body_limit_bytes))
        .route("/healthz", get(admin::healthz))
        .merge(admin)
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .with_state(core)
}

async fn require_token(
    State(token): State<Arc<Option<String>>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(expected) = token.as_deref() {
        let given = request
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return Err(ApiError::Unauthorized(
                "missing or wrong admin token".into(),
            ));
        }
    }
    Ok(next.run(request).await)
}

/// Compares without an early exit, so timing does not reveal how much of a
/// guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison_is_exact() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret1"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
