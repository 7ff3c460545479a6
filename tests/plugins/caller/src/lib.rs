//! Makes the outbound HTTP requests its event lists, in order, forwarding
//! the event id as the idempotency key; logs each result and rejects with the
//! first failure.
//!
//! Body: `{"requests": [{"method": "POST", "url": "http://…", "body": {…}}]}`.
use hookhost_sdk::{Event, Handler, HandlerError, Manifest, RetryPolicy, http, log};
use serde::Deserialize;

#[derive(Deserialize)]
struct Body {
    requests: Vec<Call>,
}

#[derive(Deserialize)]
struct Call {
    #[serde(default = "post")]
    method: String,
    url: String,
    #[serde(default)]
    body: Option<serde_json::Value>,
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
        let mut first_error = None;
        for call in body.requests {
            let mut request =
                http::Request::new(&call.method, &call.url).idempotency_key(&event.id);
            if let Some(json) = &call.body {
                request = request.json(json)?;
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
        match first_error {
            Some(e) => Err(HandlerError::reject(e.to_string())),
            None => Ok(()),
        }
    }
}

hookhost_sdk::export!(Caller);
