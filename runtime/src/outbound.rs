//! Outbound HTTP through `wasi:http/outgoing-handler`, only to the hosts a
//! plugin is allowed, within per-attempt budgets, every call recorded.
//!
//! # Rules
//! - An allowed host is `[scheme://]host[:port]`; `host` may start with `*.`
//!   (any subdomain, not the bare domain). Without a scheme only `https` is
//!   allowed; without a port, the scheme's default port.
//! - Per attempt: at most `max_http_requests` requests, all within
//!   `http_time_ms` (and never past the attempt's deadline), each response
//!   body at most `max_response_bytes`.
//! - Each call is recorded as method, origin (`scheme://host:port`), status,
//!   duration and error: never the path, query, headers or bodies, which may
//!   hold secrets.
//! - A name may lead only to a public address, checked on the address
//!   connected to (see [`send`](super::send)): a name resolving to loopback,
//!   a private range or cloud metadata is refused unless the allow-list
//!   names that IP address itself.
//! - A shadow run never reaches the network: each call it makes is refused
//!   and recorded as refused (a candidate replayed on a thousand events must
//!   not post to a payment API a thousand times).
//! - `hookhost test` never reaches it either: its calls are answered from
//!   the answers its case declares ([`answers`](super::answers)).

use super::answers::{Answers, SeenCall, body_value};
use super::send::SendError;
use crate::model::{HttpCall, OutboundLimits};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The `wasi:http` hooks of one attempt.
pub struct Outbound {
    limits: OutboundLimits,
    /// When the attempt's time for HTTP runs out.
    deadline: Instant,
    sent: u32,
    /// Set for runs that must not reach the network.
    offline: Option<Offline>,
    pub calls: Arc<Mutex<Recorded>>,
}

/// How a run that must not reach the network treats its calls.
#[derive(Debug, Clone)]
pub enum Offline {
    /// Each call is refused (shadow runs).
    Refuse,
    /// Each call is answered from declared answers (`hookhost test`).
    Answer(Arc<Answers>),
}

/// The calls an attempt made, as recorded.
#[derive(Debug, Default)]
pub struct Recorded {
    /// The first [`MAX_RECORDED`] calls.
    pub kept: Vec<HttpCall>,
    /// Whether the latest call is the last of `kept`.
    latest_kept: bool,
    /// Why the latest call failed, if it did (kept or not).
    pub latest_error: Option<String>,
}

impl Recorded {
    /// Marks the latest call failed after its response head arrived (its
    /// body was too large or too slow).
    pub fn fail_latest(&mut self, error: String) {
        if self.latest_kept
            && let Some(call) = self.kept.last_mut()
        {
            call.error = Some(error.clone());
        }
        self.latest_error = Some(error);
    }
}

impl Outbound {
    pub fn new(limits: OutboundLimits, attempt_deadline: Duration) -> Self {
        let deadline = Instant::now() + limits.time.min(attempt_deadline);
        Self {
            limits,
            deadline,
            sent: 0,
            offline: None,
            calls: Arc::new(Mutex::new(Recorded::default())),
        }
    }

    /// Never reaches the network from now on.
    pub fn go_offline(&mut self, offline: Offline) {
        self.offline = Some(offline);
    }

    /// What is left of the attempt's time for HTTP.
    pub fn time_left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Records a call answered from the delivery's journal: it did not go
    /// out, and used none of the attempt's budgets.
    pub fn record_journaled(&self, request: &http::Request<WasiBody>, status: u16) {
        let (scheme, host, port) = target(request.uri());
        let call = HttpCall {
            method: request.method().to_string(),
            origin: format!("{scheme}://{host}:{port}"),
            status: Some(status),
            duration_ms: 0,
            error: None,
            journaled: true,
        };
        Self::record(&self.calls, call);
    }

    /// Whether the plugin's `allowed_hosts` admit `uri`'s origin.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let (scheme, host, port) = target(uri);
        self.limits
            .allowed
            .iter()
            .any(|r| r.allows(&scheme, &host, port))
    }

    fn record(calls: &Mutex<Recorded>, call: HttpCall) {
        if let Ok(mut calls) = calls.lock() {
            calls.latest_error = call.error.clone();
            calls.latest_kept = calls.kept.len() < MAX_RECORDED;
            if calls.latest_kept {
                calls.kept.push(call);
            }
        }
    }
}

/// A request's scheme, host (both lowercase) and port.
fn target(uri: &http::Uri) -> (String, String, u16) {
    let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
    let host = uri.host().unwrap_or("").to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "http" { 80 } else { 443 });
    (scheme, host, port)
}

/// Calls recorded per attempt at most.
const MAX_RECORDED: usize = 256;

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
)>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        let (scheme, host, port) = target(request.uri());
        let mut call = HttpCall {
            method: request.method().to_string(),
            origin: format!("{scheme}://{host}:{port}"),
            status: None,
            duration_ms: 0,
            error: None,
            journaled: false,
        };
        let calls = self.calls.clone();
        let answers = match &self.offline {
            Some(Offline::Answer(answers)) => Some(answers.clone()),
            _ => None,
        };
        let denied = if matches!(self.offline, Some(Offline::Refuse)) {
            Some("denied: a shadow run never reaches the network".to_owned())
        } else if !self
            .limits
            .allowed
            .iter()
            .any(|r| r.allows(&scheme, &host, port))
        {
            Some("denied: not in the plugin's allowed_hosts".to_owned())
        } else if self.sent >= self.limits.max_requests {
            Some(format!(
                "denied: the budget of {} requests per attempt is spent",
                self.limits.max_requests
            ))
        } else {
            None
        };
        if let Some(reason) = denied {
            if let Some(answers) = &answers {
                answers.record(seen(&request, Vec::new(), None, Some(reason.clone())));
            }
            call.error = Some(reason);
            Self::record(&calls, call);
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        self.sent += 1;
        if let Some(answers) = answers {
            return Box::new(answer(request, answers, calls, call));
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        let max_body = self.limits.max_response_bytes;
        // The guest's own timeouts, never past the budget; the budget itself
        // is enforced around the whole exchange below.
        let within = |t: Option<Duration>| Some(t.map_or(left, |t| t.min(left)));
        let options = RequestOptions {
            connect_timeout: within(options.and_then(|o| o.connect_timeout)),
            first_byte_timeout: within(options.and_then(|o| o.first_byte_timeout)),
            between_bytes_timeout: within(options.and_then(|o| o.between_bytes_timeout)),
        };
        Box::new(async move {
            let started = Instant::now();
            let sent = tokio::time::timeout(left, super::send::send(request, options)).await;
            call.duration_ms = started.elapsed().as_millis() as u64;
            let (response, io) = match sent {
                Err(_) => {
                    call.error = Some(format!(
                        "timed out: the attempt's HTTP time ran out after {} ms",
                        call.duration_ms
                    ));
                    Outbound::record(&calls, call);
                    return Err(Error::ConnectionTimeout);
                }
                Ok(Err(SendError::Refused(why))) => {
                    call.error = Some(format!("denied: {why}"));
                    Outbound::record(&calls, call);
                    return Err(Error::DestinationIpProhibited);
                }
                Ok(Err(SendError::Failed(e))) => {
                    call.error = Some(e.to_string());
                    Outbound::record(&calls, call);
                    return Err(e);
                }
                Ok(Ok(sent)) => sent,
            };
            call.status = Some(response.status().as_u16());
            Outbound::record(&calls, call);
            let io = async move {
                match tokio::time::timeout(left, io).await {
                    Ok(done) => done,
                    Err(_) => Err(Error::ConnectionReadTimeout),
                }
            };
            let response = response.map(|body| {
                Capped {
                    inner: body.boxed_unsync(),
                    left: max_body,
                    limit: max_body,
                }
                .boxed_unsync()
            });
            Ok((
                response,
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}

/// Answers `request` from `answers` (`hookhost test`), recording it.
async fn answer(
    request: http::Request<WasiBody>,
    answers: Arc<Answers>,
    calls: Arc<Mutex<Recorded>>,
    mut call: HttpCall,
) -> SendResult {
    let (parts, body) = request.into_parts();
    let head = http::Request::from_parts(parts, ());
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let method = head.method().to_string();
    let url = head.uri().to_string();
    let declared = match answers.find(&method, &url).cloned() {
        Some(declared) if declared.error.is_none() => declared,
        other => {
            use super::answers::AnswerError;
            let (reason, error) = match other.and_then(|a| a.error) {
                None => (
                    format!("failed: no answer declared for {method} {url}"),
                    Error::ConnectionRefused,
                ),
                Some(AnswerError::Timeout) => (
                    "timed out: the declared answer is a timeout".to_owned(),
                    Error::ConnectionTimeout,
                ),
                Some(AnswerError::Failed) => (
                    "failed: the declared answer is a failure".to_owned(),
                    Error::ConnectionRefused,
                ),
            };
            answers.record(seen(&head, body.to_vec(), None, Some(reason.clone())));
            call.error = Some(reason);
            Outbound::record(&calls, call);
            return Err(error);
        }
    };
    let mut response = http::Response::builder().status(declared.status);
    let mut typed = false;
    for (name, value) in &declared.headers {
        typed |= name.eq_ignore_ascii_case("content-type");
        response = response.header(name.as_str(), value.as_str());
    }
    let bytes = match (&declared.json, &declared.text) {
        (Some(json), _) => {
            if !typed {
                response = response.header("content-type", "application/json");
            }
            Bytes::from(json.to_string())
        }
        (None, Some(text)) => Bytes::from(text.clone()),
        (None, None) => Bytes::new(),
    };
    let response = response
        .body(
            http_body_util::Full::new(bytes)
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .map_err(|e| Error::InternalError(Some(format!("a declared answer: {e}"))))?;
    answers.record(seen(&head, body.to_vec(), Some(declared.status), None));
    call.status = Some(declared.status);
    Outbound::record(&calls, call);
    Ok((
        response,
        Box::new(async { Ok(()) }) as Box<dyn Future<Output = Result<(), Error>> + Send>,
    ))
}

/// A request as `hookhost test` reports it.
fn seen<B>(
    request: &http::Request<B>,
    body: Vec<u8>,
    status: Option<u16>,
    error: Option<String>,
) -> SeenCall {
    SeenCall {
        method: request.method().to_string(),
        url: request.uri().to_string(),
        idempotency_key: request
            .headers()
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body_value(&body),
        status,
        error,
    }
}

/// A response body that fails once it grows past its limit.
struct Capped {
    inner: WasiBody,
    left: u64,
    limit: u64,
}

impl Body for Capped {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &frame
            && let Some(data) = frame.data_ref()
        {
            let size = data.len() as u64;
            if size > self.left {
                self.left = 0;
                return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(self.limit)))));
            }
            self.left -= size;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
