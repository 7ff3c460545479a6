//! The HTTP API (axum): ingest, admin reads, health.
//!
//! # Invariant
//! The ingest handler never awaits a plugin: it validates, persists (flushed)
//! and answers 202; attempts run later in `dispatch/`.

mod admin;
mod error;
mod guard;
mod ingest;
mod redrive;
mod serve;
mod shadow;

pub use error::ApiError;
pub use serve::serve;

use crate::core::Core;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// The bearer tokens the API asks for; `None`: not required.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// For admin routes.
    pub admin: Option<String>,
    /// For `POST /events/{topic}` (the admin token is accepted there too).
    pub ingest: Option<String>,
}

/// The host's routes over `core`. Admin routes require the admin token when
/// one is set, and refuse what a web page could send them (see [`guard`]);
/// `POST /events/{topic}` requires the ingest token when one is set.
pub fn router(core: Arc<Core>, tokens: Tokens) -> Router {
    let tokens = Arc::new(tokens);
    let admin = Router::new()
        .route("/events", get(admin::list_events))
        .route("/export", get(admin::export_events))
        .route("/backup", get(admin::backup))
        .route("/events/{id}", get(admin::show_event))
        .route("/plugins", get(admin::list_plugins))
        .route("/plugins/{name}", get(admin::show_plugin))
        .route("/plugins/{name}/rollback", post(admin::rollback))
        .route("/config/reload", post(admin::reload_config))
        .route("/metrics", get(admin::metrics))
        .route("/events/{id}/replay", post(redrive::replay_event))
        .route("/replay", post(redrive::replay_many))
        .route("/dead-letters", get(redrive::list_dead))
        .route("/dead-letters/retry", post(redrive::retry_all_dead))
        .route("/dead-letters/{delivery}/retry", post(redrive::retry_dead))
        .route("/quarantine", get(redrive::list_quarantine))
        .route("/quarantine/{id}/reingest", post(redrive::reingest));
    let admin = admin_only(admin, &core, &tokens);
    let config = &core.config;
    let timeout = Duration::from_millis(config.request_timeout_ms);
    // Compiling a candidate (a cold Python component takes tens of seconds)
    // and shadow runs over many events are work the host does, not a slow
    // client: these routes bound the body's upload by the request timeout
    // and let the work itself take what it takes.
    let long = Router::new()
        .route(
            "/plugins/{name}/candidates",
            post(shadow::upload).layer(DefaultBodyLimit::max(shadow::MAX_COMPONENT_BYTES)),
        )
        .route("/plugins/{name}/shadow", post(shadow::run))
        .route("/events/{id}/replay-exact", post(shadow::replay_exact))
        .route_layer(middleware::from_fn(move |request: Request, next: Next| {
            read_body_within(timeout, shadow::MAX_COMPONENT_BYTES, request, next)
        }));
    let long = admin_only(long, &core, &tokens);
    // Hooks may carry a larger body than the host default when a source
    // says so; the handler enforces each source's own limit.
    let hook_limit = config
        .sources
        .values()
        .filter_map(|s| s.body_limit_bytes)
        .chain(std::iter::once(config.body_limit_bytes))
        .max()
        .unwrap_or(config.body_limit_bytes);
    let hooks = Router::new()
        .route("/hooks/{source}", post(ingest::hook))
        .layer(DefaultBodyLimit::max(hook_limit));
    let overloaded = HandleErrorLayer::new(|_: tower::BoxError| async {
        ApiError::Overloaded("too many requests at once; retry shortly".into())
    });
    let max_header_bytes = config.max_header_bytes;
    let max_requests = config.max_concurrent_requests;
    Router::new()
        // `POST /events/{topic}`: the segment is named like the GET's because
        // the router requires one name per position.
        .route(
            "/events/{id}",
            post(ingest::ingest)
                .route_layer(middleware::from_fn_with_state(tokens, require_ingest_token)),
        )
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .merge(hooks)
        .route("/healthz", get(admin::healthz))
        // The page holds no data: everything it shows it fetches from the
        // admin API with the token its user gives it.
        .route("/ui", get(ui))
        .merge(admin)
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .merge(long)
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            limit_headers(max_header_bytes, request, next)
        }))
        .layer(
            ServiceBuilder::new()
                .layer(overloaded)
                .load_shed()
                // One semaphore for the whole router: `Router::layer` applies
                // a layer per route, and a plain concurrency limit would
                // then count each route on its own.
                .layer(GlobalConcurrencyLimitLayer::new(max_requests)),
        )
        .with_state(core)
}

/// Admin routes: the admin token when one is set, and the guard against what
/// a web page could send (see [`guard`]).
fn admin_only(routes: Router<Arc<Core>>, core: &Core, tokens: &Arc<Tokens>) -> Router<Arc<Core>> {
    routes
        .route_layer(middleware::from_fn_with_state(
            tokens.clone(),
            require_admin_token,
        ))
        .route_layer(middleware::from_fn_with_state(
            Arc::new(guard::AdminHosts(
                core.config
                    .admin_hosts
                    .iter()
                    .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                    .collect(),
            )),
            guard::admin_guard,
        ))
}

/// Reads the whole body within `timeout` (408 otherwise) and at most
/// `limit` bytes (413 otherwise), then hands the request on with the body in
/// memory: what the handler then does is not bounded by the client's pace.
async fn read_body_within(
    timeout: Duration,
    limit: usize,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => {
            return Err(ApiError::Timeout(format!(
                "the body did not arrive within {} ms",
                timeout.as_millis()
            )));
        }
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return Err(if too_large {
                ApiError::PayloadTooLarge { limit }
            } else {
                ApiError::BadRequest(format!("cannot read body: {e}"))
            });
        }
        Ok(Ok(bytes)) => bytes,
    };
    Ok(next
        .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await)
}

/// `GET /ui`: the event inspector, one static page.
async fn ui() -> impl axum::response::IntoResponse {
    use axum::http::header;
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        include_str!("ui.html"),
    )
}

/// Refuses requests whose headers, all together, exceed the limit.
async fn limit_headers(
    max_bytes: usize,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if size > max_bytes {
        return Err(ApiError::HeadersTooLarge { limit: max_bytes });
    }
    Ok(next.run(request).await)
}

async fn require_admin_token(
    State(tokens): State<Arc<Tokens>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(expected) = tokens.admin.as_deref()
        && !bearer_is(&request, expected)
    {
        return Err(ApiError::Unauthorized(
            "missing or wrong admin token".into(),
        ));
    }
    Ok(next.run(request).await)
}

async fn require_ingest_token(
    State(tokens): State<Arc<Tokens>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(expected) = tokens.ingest.as_deref() {
        let admin = tokens
            .admin
            .as_deref()
            .is_some_and(|t| bearer_is(&request, t));
        if !admin && !bearer_is(&request, expected) {
            return Err(ApiError::Unauthorized(
                "missing or wrong ingest token (webhook senders post to /hooks/{source})".into(),
            ));
        }
    }
    Ok(next.run(request).await)
}

/// Whether the request's bearer token is `expected`.
fn bearer_is(request: &Request, expected: &str) -> bool {
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    constant_time_eq(given.as_bytes(), expected.as_bytes())
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

    /// The routes the router serves, as `METHOD /path` with each path
    /// parameter written `{}`, read from this file's `.route(…)` calls.
    fn served() -> std::collections::BTreeSet<String> {
        let source = include_str!("mod.rs");
        let source = source.split("#[cfg(test)]").next().unwrap_or_default();
        let mut routes = std::collections::BTreeSet::new();
        for call in source.split(".route(").skip(1) {
            let Some(path) = call.split('"').nth(1) else {
                continue;
            };
            let method = if call.find("get(").unwrap_or(usize::MAX)
                < call.find("post(").unwrap_or(usize::MAX)
            {
                "GET"
            } else {
                "POST"
            };
            routes.insert(format!("{method} {}", params(path)));
        }
        routes
    }

    fn params(path: &str) -> String {
        let mut out = String::new();
        let mut inside = false;
        for c in path.chars() {
            match c {
                '{' => {
                    inside = true;
                    out.push_str("{}");
                }
                '}' => inside = false,
                '?' if !inside => break,
                c if !inside => out.push(c),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn the_api_doc_lists_every_route() {
        let doc = include_str!("../../../docs/api.md");
        let mut documented = std::collections::BTreeSet::new();
        for line in doc.lines().filter(|l| l.starts_with("| `")) {
            let first = line.split(" | ").next().unwrap_or_default();
            for route in first
                .split('`')
                .filter(|r| r.starts_with("GET ") || r.starts_with("POST "))
            {
                documented.insert(params(route));
            }
        }
        let served = served();
        assert!(served.len() >= 20, "the route parser found {served:?}");
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let gone: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty() && gone.is_empty(),
            "docs/api.md is out of date: not documented {undocumented:?}, documented but not served {gone:?}"
        );
    }
}
