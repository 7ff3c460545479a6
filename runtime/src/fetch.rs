//! The `http` import of `hookhost:plugin@0.2.0`: a plain request record
//! in, a whole response out, for guests of every language.
//!
//! A call goes the way a `wasi:http` call goes ([`outbound`](super::outbound)
//! and [`send`](super::send)): the plugin's allow-list, the attempt's
//! request and time budgets, the check of the address connected to, the
//! refusal in shadow runs, and one entry in the attempt's record. This
//! module only turns the record into a request and the response into a
//! record, and adds a default `Idempotency-Key`.
//!
//! # Bounds
//! A request body of at most [`MAX_REQUEST_BODY`] bytes, at most
//! [`MAX_REQUEST_HEADERS`] headers of [`MAX_HEADER_BYTES`] in all; a
//! response body of at most the plugin's `max_response_bytes`, read within
//! the attempt's time for HTTP.

use super::HostState;
use super::world::v0_2::hookhost::plugin::http as wit;
use crate::model::{JournalEntry, MAX_JOURNALED_CALLS, request_digest};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use std::time::Duration;
use wasmtime_wasi_http::{Error, RequestOptions, WasiHttpHooks as _};

/// Largest request body a handler may send.
pub const MAX_REQUEST_BODY: usize = 8 << 20;
/// Most request headers a handler may send.
pub const MAX_REQUEST_HEADERS: usize = 100;
/// Request header names and values, all together.
pub const MAX_HEADER_BYTES: usize = 64 << 10;

/// Headers the host sets itself.
const HOST_SET: [&str; 7] = [
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "keep-alive",
    "upgrade",
    "te",
];

pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";

impl wit::Host for HostState {
    async fn fetch(
        &mut self,
        request: wit::Request,
    ) -> wasmtime::Result<Result<wit::Response, wit::Error>> {
        let Some(event_id) = self.call.event_id.clone() else {
            return Ok(Err(wit::Error::Denied(
                "http is not allowed in describe()".into(),
            )));
        };
        let index = self.call.fetches;
        self.call.fetches += 1;
        let default_key = format!("{event_id}:{}:{index}", self.call.plugin);
        let timeout = request
            .timeout_ms
            .map(|ms| Duration::from_millis(ms.into()));
        let digest = request_digest(
            &request.method,
            &request.url,
            key_of(&request, &default_key).as_deref(),
            request.body.as_deref().unwrap_or_default(),
        );
        let request = match build(request, default_key) {
            Ok(request) => request,
            Err(e) => return Ok(Err(e)),
        };
        let journaled = match self.call.journal.as_mut() {
            Some(journal) => journal.answer(index, &digest).await,
            None => None,
        };
        if let Some(entry) = journaled {
            let answer = wit::Response {
                status: entry.status,
                headers: entry.headers.clone(),
                body: entry.body.clone(),
            };
            self.outbound.record_journaled(&request, answer.status);
            return Ok(Ok(answer));
        }
        let method = request.method().to_string();
        let left = self.outbound.time_left();
        let left = timeout.map_or(left, |t| t.min(left));
        let options = RequestOptions {
            connect_timeout: Some(left),
            first_byte_timeout: Some(left),
            between_bytes_timeout: Some(left),
        };
        let recorded = self.outbound.calls.clone();
        let latest_error = || recorded.lock().ok().and_then(|r| r.latest_error.clone());
        let sent = self
            .outbound
            .send_request(request, Some(options), Box::new(async { Ok(()) }));
        let (response, io) = match Box::into_pin(sent).await {
            Ok(sent) => sent,
            Err(e) => return Ok(Err(classify(&e, latest_error()))),
        };
        // The connection's I/O runs beside the body's read, and ends with it.
        let io = AbortOnDrop(tokio::spawn(Box::into_pin(io)));
        let (parts, body) = response.into_parts();
        let body = match tokio::time::timeout(left, body.collect()).await {
            Ok(Ok(body)) => body.to_bytes(),
            failed => {
                let error = match failed {
                    Ok(Err(e)) => classify(&e, None),
                    _ => wit::Error::Timeout(format!(
                        "timed out reading the response body after {} ms",
                        left.as_millis()
                    )),
                };
                if let Ok(mut r) = recorded.lock() {
                    r.fail_latest(message(&error).to_owned());
                }
                return Ok(Err(error));
            }
        };
        drop(io);
        let answer = wit::Response {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        };
        if let Some(journal) = &self.call.journal
            && let Some(store) = &journal.store
            && index < MAX_JOURNALED_CALLS
        {
            let entry = JournalEntry {
                index,
                request: digest,
                status: answer.status,
                headers: answer.headers.clone(),
                body: answer.body.clone(),
            };
            // The answer is durable before the guest sees it. If it cannot
            // be, the attempt stops: its retry calls again with the same
            // idempotency key.
            if let Err(e) = store.journal(journal.delivery, &entry).await {
                wasmtime::bail!("cannot journal the answer to {method} call {index}: {e}");
            }
        }
        Ok(Ok(answer))
    }
}

/// The idempotency key a request goes out with: its own, its
/// `Idempotency-Key` header, or `default_key`; `None` when it asks for none.
pub(crate) fn key_of(request: &wit::Request, default_key: &str) -> Option<String> {
    match &request.idempotency_key {
        Some(key) if key.is_empty() => None,
        Some(key) => Some(key.clone()),
        None => Some(
            request
                .headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(IDEMPOTENCY_KEY))
                .map_or_else(|| default_key.to_owned(), |(_, value)| value.clone()),
        ),
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<Result<(), Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(crate) fn message(error: &wit::Error) -> &str {
    match error {
        wit::Error::Denied(m)
        | wit::Error::Timeout(m)
        | wit::Error::TooLarge(m)
        | wit::Error::Invalid(m)
        | wit::Error::Failed(m) => m,
    }
}

/// A guest's request record as an HTTP request, or why it cannot be one.
pub(crate) fn build(
    request: wit::Request,
    default_key: String,
) -> Result<http::Request<wasmtime_wasi_http::WasiBody>, wit::Error> {
    let invalid = |m: String| Err(wit::Error::Invalid(m));
    let method = match http::Method::from_bytes(request.method.as_bytes()) {
        Ok(method) => method,
        Err(_) => return invalid(format!("method {:?} is not an HTTP method", request.method)),
    };
    let uri: http::Uri = match request.url.parse() {
        Ok(uri) => uri,
        Err(e) => return invalid(format!("url {:?}: {e}", request.url)),
    };
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => {}
        _ => {
            return invalid(format!(
                "url {:?} is not an absolute http or https URL",
                request.url
            ));
        }
    }
    if request.headers.len() > MAX_REQUEST_HEADERS {
        return invalid(format!(
            "{} headers, over the limit of {MAX_REQUEST_HEADERS}",
            request.headers.len()
        ));
    }
    let header_bytes: usize = request.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return invalid(format!(
            "headers of {header_bytes} bytes, over the limit of {MAX_HEADER_BYTES}"
        ));
    }
    let body = request.body.unwrap_or_default();
    if body.len() > MAX_REQUEST_BODY {
        return Err(wit::Error::TooLarge(format!(
            "request body of {} bytes, over the limit of {MAX_REQUEST_BODY}",
            body.len()
        )));
    }
    let mut builder = http::Request::builder().method(method).uri(uri);
    let mut keyed = false;
    for (name, value) in &request.headers {
        let name = match http::HeaderName::from_bytes(name.as_bytes()) {
            Ok(name) => name,
            Err(_) => return invalid(format!("header name {name:?} is not valid")),
        };
        if HOST_SET.contains(&name.as_str()) {
            return invalid(format!("header {name:?} is set by the host"));
        }
        let value = match http::HeaderValue::from_str(value) {
            Ok(value) => value,
            Err(_) => return invalid(format!("the value of header {name:?} is not valid")),
        };
        keyed |= name.as_str() == IDEMPOTENCY_KEY;
        builder = builder.header(name, value);
    }
    let key = match request.idempotency_key {
        Some(key) if key.is_empty() => None,
        Some(key) => Some(key),
        None if keyed => None,
        None => Some(default_key),
    };
    if let Some(key) = key {
        if keyed {
            return invalid("both an idempotency-key and an Idempotency-Key header".into());
        }
        match http::HeaderValue::from_str(&key) {
            Ok(value) => builder = builder.header(IDEMPOTENCY_KEY, value),
            Err(_) => return invalid(format!("idempotency key {key:?} is not a header value")),
        }
    }
    let body = Full::new(Bytes::from(body))
        .map_err(|never| match never {})
        .boxed_unsync();
    builder
        .body(body)
        .map_err(|e| wit::Error::Invalid(e.to_string()))
}

/// The guest's error for a failed call; `reason` is what the record says
/// of it, when it says something.
fn classify(e: &Error, reason: Option<String>) -> wit::Error {
    let said = reason.unwrap_or_else(|| e.to_string());
    match e {
        Error::HttpRequestDenied | Error::DestinationIpProhibited => {
            let said = said.strip_prefix("denied: ").unwrap_or(&said);
            wit::Error::Denied(said.to_owned())
        }
        Error::DnsTimeout
        | Error::ConnectionTimeout
        | Error::ConnectionReadTimeout
        | Error::ConnectionWriteTimeout
        | Error::HttpResponseTimeout => wit::Error::Timeout(said),
        Error::HttpResponseBodySize(limit) => wit::Error::TooLarge(match limit {
            Some(limit) => format!("response body over max_response_bytes ({limit} bytes)"),
            None => said,
        }),
        Error::HttpRequestUriInvalid | Error::HttpRequestMethodInvalid => wit::Error::Invalid(said),
        _ => wit::Error::Failed(said),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)], key: Option<&str>) -> wit::Request {
        wit::Request {
            method: "POST".into(),
            url: "https://api.example.com/v1/charges".into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Some(b"{}".to_vec()),
            idempotency_key: key.map(str::to_owned),
            timeout_ms: None,
        }
    }

    fn key_of(r: &http::Request<wasmtime_wasi_http::WasiBody>) -> Option<&str> {
        r.headers()
            .get(IDEMPOTENCY_KEY)
            .and_then(|v| v.to_str().ok())
    }

    #[test]
    fn a_call_carries_the_default_key_unless_it_gives_its_own_or_none() {
        let default = "01J:shop:0".to_owned();
        let r = build(request(&[], None), default.clone()).expect("built");
        assert_eq!(key_of(&r), Some("01J:shop:0"));
        let r = build(request(&[], Some("mine")), default.clone()).expect("built");
        assert_eq!(key_of(&r), Some("mine"));
        let r = build(request(&[], Some("")), default.clone()).expect("built");
        assert_eq!(key_of(&r), None);
        let r = build(
            request(&[("Idempotency-Key", "hdr")], None),
            default.clone(),
        )
        .expect("built");
        assert_eq!(key_of(&r), Some("hdr"));
        let both = build(request(&[("Idempotency-Key", "hdr")], Some("k")), default);
        assert!(matches!(both, Err(wit::Error::Invalid(_))));
    }

    #[test]
    fn bad_requests_get_a_clear_error() {
        let default = String::new();
        let mut r = request(&[], None);
        r.url = "/relative".into();
        let err = build(r, default.clone()).expect_err("relative url");
        assert!(message(&err).contains("absolute"), "{err:?}");

        let mut r = request(&[], None);
        r.url = "ftp://x.example/".into();
        assert!(matches!(
            build(r, default.clone()),
            Err(wit::Error::Invalid(_))
        ));

        let mut r = request(&[], None);
        r.method = "GET POST".into();
        assert!(matches!(
            build(r, default.clone()),
            Err(wit::Error::Invalid(_))
        ));

        let err = build(request(&[("Host", "evil")], None), default.clone()).expect_err("host");
        assert!(message(&err).contains("set by the host"), "{err:?}");

        let many: Vec<(String, String)> = (0..=MAX_REQUEST_HEADERS)
            .map(|i| (format!("x-{i}"), "v".into()))
            .collect();
        let mut r = request(&[], None);
        r.headers = many;
        assert!(matches!(
            build(r, default.clone()),
            Err(wit::Error::Invalid(_))
        ));

        let mut r = request(&[], None);
        r.body = Some(vec![0; MAX_REQUEST_BODY + 1]);
        assert!(matches!(build(r, default), Err(wit::Error::TooLarge(_))));
    }
}
