//! The API's one error type: 4xx tell the caller what was wrong; 5xx say
//! little to the caller and log everything.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// What a full queue's 503 asks the sender to wait, in seconds.
const RETRY_AFTER_SECS: &str = "1";
/// What a failed store's 503 asks the sender to wait, in seconds.
const STORE_RETRY_AFTER_SECS: &str = "5";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    /// Refused whoever asks (a foreign page, an unknown host name).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Conflict(String),
    /// Well-formed, but unusable (a component that does not load).
    #[error("{0}")]
    Unprocessable(String),
    #[error("body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The client did not send the whole body in time.
    #[error("{0}")]
    Timeout(String),
    #[error("request headers are larger than the limit of {limit} bytes")]
    HeadersTooLarge { limit: usize },
    /// Too many requests at once.
    #[error("{0}")]
    Overloaded(String),
    /// The delivery queue is at its configured depth: the sender should come
    /// back later.
    #[error("the queue is full ({depth} deliveries waiting, limit {limit}); retry later")]
    QueueFull { depth: u64, limit: u64 },
    /// The store cannot take the write: nothing was acknowledged.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({ "error": m })),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, json!({ "error": m })),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, json!({ "error": m })),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, json!({ "error": m })),
            ApiError::UnsupportedMediaType(m) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, json!({ "error": m }))
            }
            ApiError::Conflict(m) => (StatusCode::CONFLICT, json!({ "error": m })),
            ApiError::Unprocessable(m) => (StatusCode::UNPROCESSABLE_ENTITY, json!({ "error": m })),
            ApiError::PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "error": self.to_string(), "limit_bytes": limit }),
            ),
            ApiError::Timeout(m) => (StatusCode::REQUEST_TIMEOUT, json!({ "error": m })),
            ApiError::HeadersTooLarge { limit } => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                json!({ "error": self.to_string(), "limit_bytes": limit }),
            ),
            ApiError::Overloaded(m) => (StatusCode::SERVICE_UNAVAILABLE, json!({ "error": m })),
            ApiError::QueueFull { depth, limit } => {
                let body =
                    json!({ "error": self.to_string(), "queue_depth": depth, "limit": limit });
                let headers = [(axum::http::header::RETRY_AFTER, RETRY_AFTER_SECS)];
                return (StatusCode::SERVICE_UNAVAILABLE, headers, Json(body)).into_response();
            }
            ApiError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "store unavailable; request not acknowledged");
                let body = json!({
                    "error": "store unavailable: nothing was stored, retry later",
                    "reason": detail,
                });
                let headers = [(axum::http::header::RETRY_AFTER, STORE_RETRY_AFTER_SECS)];
                return (StatusCode::SERVICE_UNAVAILABLE, headers, Json(body)).into_response();
            }
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "error": "internal error" }),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}
