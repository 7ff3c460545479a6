//! A handler built against the first contract, `hookhost:plugin@0.1.0`,
//! without the SDK: the host must keep loading such components unchanged.
//! It calls out through `wasi:http` directly, the path Rust guests had
//! before the `http` interface.
//!
//! On `test.legacy`: counts the event in kv key `seen`, and when the body is
//! `{"get": "<url>"}`, `GET`s the URL and stores its status in kv key
//! `status` (or the error in `error`).
#![allow(unsafe_code)]

/// The 0.1.0 world's bindings.
#[allow(clippy::all)]
mod wit {
    wit_bindgen::generate!({
        path: "../../../wit/v0.1.0",
        world: "handler",
        pub_export_macro: true,
        default_bindings_module: "crate::wit",
    });
}

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wit::Guest;
use wit::hookhost::plugin::{kv, log, types};

struct Legacy;

impl Guest for Legacy {
    fn describe() -> types::Manifest {
        types::Manifest {
            subscriptions: vec!["test.legacy".into()],
            retry: Some(types::RetryPolicy {
                max_attempts: 1,
                initial_backoff_ms: 0,
                max_backoff_ms: 0,
            }),
            schedules: Vec::new(),
        }
    }

    fn handle(event: types::Event) -> Result<(), types::HandlerError> {
        let seen = kv::get("seen")
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        kv::set("seen", (seen + 1).to_string().as_bytes());
        log::log(types::Level::Info, &format!("legacy saw {}", event.id), &[]);
        let body: serde_json::Value = serde_json::from_slice(&event.body)
            .map_err(|e| types::HandlerError::Reject(e.to_string()))?;
        if let Some(url) = body.get("get").and_then(|u| u.as_str()) {
            match get(url) {
                Ok(status) => kv::set("status", status.to_string().as_bytes()),
                Err(e) => kv::set("error", e.as_bytes()),
            }
        }
        Ok(())
    }
}

/// `GET`s `http://host:port/path` through `wasi:http`; the status.
fn get(url: &str) -> Result<u16, String> {
    let rest = url.strip_prefix("http://").ok_or("http:// only")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let request = OutgoingRequest::new(Fields::new());
    let bad = |what: &str| format!("bad {what}");
    request
        .set_method(&Method::Get)
        .map_err(|()| bad("method"))?;
    request
        .set_scheme(Some(&Scheme::Http))
        .map_err(|()| bad("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| bad("authority"))?;
    let path = if path.is_empty() { "/" } else { path };
    request
        .set_path_with_query(Some(path))
        .map_err(|()| bad("path"))?;
    let body = request.body().map_err(|()| bad("body"))?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    OutgoingBody::finish(body, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    match pending.get() {
        Some(Ok(Ok(response))) => Ok(response.status()),
        Some(Ok(Err(e))) => Err(format!("{e:?}")),
        _ => Err("no response".into()),
    }
}

wit::export!(Legacy);
