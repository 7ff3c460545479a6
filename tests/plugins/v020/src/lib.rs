//! A handler built against `hookhost:plugin@0.2.0`, before the outbox, and
//! without the SDK: the host must keep loading such components unchanged.
//!
//! On `test.v020`: counts the event in kv key `seen`, and when the body is
//! `{"post": "<url>"}`, posts to the URL through `http.fetch` and stores
//! its status in kv key `status`.
#![allow(unsafe_code)]

/// The 0.2.0 world's bindings.
#[allow(clippy::all)]
mod wit {
    wit_bindgen::generate!({
        path: "../../../wit/v0.2.0",
        world: "handler",
        pub_export_macro: true,
        default_bindings_module: "crate::wit",
    });
}

use wit::Guest;
use wit::hookhost::plugin::{http, kv, types};

struct V020;

impl Guest for V020 {
    fn describe() -> types::Manifest {
        types::Manifest {
            subscriptions: vec!["test.v020".into()],
            retry: None,
            schedules: Vec::new(),
        }
    }

    fn handle(event: types::Event) -> Result<(), types::HandlerError> {
        let seen = kv::get("seen")
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        kv::set("seen", (seen + 1).to_string().as_bytes());
        let body: serde_json::Value = serde_json::from_slice(&event.body)
            .map_err(|e| types::HandlerError::Reject(e.to_string()))?;
        if let Some(url) = body.get("post").and_then(|u| u.as_str()) {
            let answer = http::fetch(&http::Request {
                method: "POST".into(),
                url: url.into(),
                headers: Vec::new(),
                body: Some(b"{}".to_vec()),
                idempotency_key: None,
                timeout_ms: None,
            })
            .map_err(|e| types::HandlerError::Reject(format!("{e:?}")))?;
            kv::set("status", answer.status.to_string().as_bytes());
        }
        Ok(())
    }
}

wit::export!(V020);
