//! Makes the outbound HTTP requests its event lists, in order, each with the
//! host's default idempotency key unless it names one (`"key"`, `""` for
//! none); logs each result and rejects with the first failure. With
//! `"retry_first": true`, its first attempt asks for a retry after making
//! its calls. With `"count": "<key>"`, it reads that kv counter before its
//! calls and writes it increased by one after them, so that a write by
//! another attempt in between is a kv conflict.
//!
//! A request with `"outbox": true` is queued with `send_after_commit`
//! instead of sent.
//!
//! Body: `{"requests": [{"method": "POST", "url": "http://…", "body": {…},
//! "key": "…", "outbox": false}], "retry_first": false, "count": null}`.
use hookhost_sdk::{Event, Handler, HandlerError, Manifest, RetryPolicy, http, kv, log};
use serde::Deserialize;

#[derive(Deserialize)]
struct Body {
    requests: Vec<Call>,
    #[serde(default)]
    retry_first: bool,
    #[serde(default)]
    trap_first: bool,
    #[serde(default)]
    attempt_in_body: bool,
    #[serde(default)]
    count: Option<String>,
}

#[derive(Deserialize)]
struct Call {
    #[serde(default = "post")]
    method: String,
    url: String,
    #[serde(default)]
    body: Option<serde_json::Value>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    outbox: bool,
}

fn post() -> String {
    "POST".into()
}

struct Caller;

impl Handler for Caller {
    fn describe() -> Manifest {
        Manifest::new()
            .subscribe("test.call")
            .retry(RetryPolicy::never())
    }

    fn handle(event: Event) -> Result<(), HandlerError> {
        let body: Body = event.json()?;
        let counted = match &body.count {
            Some(key) => Some((key, kv::get_json::<i64>(key)?.unwrap_or(0))),
            None => None,
        };
        let mut first_error = None;
        for call in body.requests {
            let mut request = http::Request::new(&call.method, &call.url);
            if let Some(key) = &call.key {
                request = request.idempotency_key(key);
            }
            match (&call.body, body.attempt_in_body) {
                (Some(json), true) => {
                    let mut wrapped = serde_json::json!({ "body": json, "attempt": event.attempt });
                    if let Some((_, before)) = &counted {
                        wrapped["count"] = serde_json::json!(before);
                    }
                    request = request.json(&wrapped)?;
                }
                (Some(json), false) => request = request.json(json)?,
                (None, _) => {}
            }
            if call.outbox {
                match request.send_after_commit() {
                    Ok(()) => log::info(&format!("{} {} queued", call.method, call.url)),
                    Err(e) => {
                        log::warn(&format!("{} {} not queued: {e}", call.method, call.url));
                        first_error.get_or_insert(e);
                    }
                }
                continue;
            }
            match request.send() {
                Ok(response) => log::info(&format!(
                    "{} {} -> {} ({} bytes)",
                    call.method,
                    call.url,
                    response.status,
                    response.body.len()
                )),
                Err(e) => {
                    log::warn(&format!("{} {} -> {e}", call.method, call.url));
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some((key, before)) = counted {
            kv::set_json(key, &(before + 1))?;
        }
        if body.trap_first && event.attempt == 1 {
            panic!("first attempt: trapping after its calls");
        }
        match first_error {
            Some(e) => Err(HandlerError::reject(e.to_string())),
            None if body.retry_first && event.attempt == 1 => {
                Err(HandlerError::retry("first attempt: try again"))
            }
            None => Ok(()),
        }
    }
}

hookhost_sdk::export!(Caller);
