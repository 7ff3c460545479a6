//! A small synchronous HTTP client for calling the APIs your automation
//! talks to (Slack, an accounting API, an email API), over the host's
//! `http` interface.
//!
//! The host lets a plugin call only the hosts its operator lists in
//! `allowed_hosts`, within per-attempt budgets (number of requests, total
//! time, response size); anything else is an [`HttpError`] here and is
//! recorded in the attempt (method, origin, status, duration: never paths,
//! headers or bodies).
//!
//! Every call carries an `Idempotency-Key`: by default
//! `<event id>:<plugin>:<n>`, `n` counting this attempt's calls from 0, so a
//! retried attempt that makes the same calls sends the same keys and an API
//! that honours them does not act twice. Set your own with
//! [`Request::idempotency_key`], or none with an empty key.
//!
//! A request that needs no answer (a receipt email, a partner's webhook)
//! can wait for the attempt to commit instead:
//! [`Request::send_after_commit`] queues it in the outbox, and the host
//! delivers it, with retries, only if the attempt succeeds.
//!
//! ```no_run
//! use hookhost_sdk::{HandlerError, http};
//!
//! fn notify(url: &str) -> Result<(), HandlerError> {
//!     let response = http::post_json(url, &serde_json::json!({ "text": "paid" }))?;
//!     if !response.is_success() {
//!         return Err(HandlerError::retry(format!("notify failed: {}", response.status)));
//!     }
//!     Ok(())
//! }
//! ```

use crate::HandlerError;
use crate::wit::hookhost::plugin::http as wit;

/// Why a request did not produce a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Not allowed: not in `allowed_hosts`, a non-public address, the
    /// attempt's request budget spent, or a shadow run.
    Denied(String),
    /// The call or the attempt's time for HTTP ran out.
    Timeout(String),
    /// The response (or the request) was larger than the host takes.
    TooLarge(String),
    /// The request could not be built: a bad URL, method or header.
    Invalid(String),
    /// Anything else: DNS, connection, TLS, protocol.
    Failed(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Denied(m) => write!(f, "http request denied: {m}"),
            HttpError::Timeout(m) => write!(f, "http request timed out: {m}"),
            HttpError::TooLarge(m) => write!(f, "http request too large: {m}"),
            HttpError::Invalid(m) => write!(f, "invalid http request: {m}"),
            HttpError::Failed(m) => write!(f, "http request failed: {m}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// An HTTP failure is worth retrying, unless the request itself is wrong:
/// the other end may be back, the operator may allow the host.
impl From<HttpError> for HandlerError {
    fn from(err: HttpError) -> Self {
        match err {
            HttpError::Invalid(_) => HandlerError::Reject(err.to_string()),
            _ => HandlerError::Retry(err.to_string()),
        }
    }
}

impl From<wit::Error> for HttpError {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::Denied(m) => HttpError::Denied(m),
            wit::Error::Timeout(m) => HttpError::Timeout(m),
            wit::Error::TooLarge(m) => HttpError::TooLarge(m),
            wit::Error::Invalid(m) => HttpError::Invalid(m),
            wit::Error::Failed(m) => HttpError::Failed(m),
        }
    }
}

/// A response, its body read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Response headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HandlerError> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// The body as UTF-8 text, if it is valid UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request to build and [`send`](Request::send).
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    idempotency_key: Option<String>,
    timeout_ms: Option<u32>,
}

impl Request {
    /// A request with `method` (`GET`, `POST`, …) to `url`
    /// (`http(s)://host[:port][/path][?query]`).
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: None,
            idempotency_key: None,
            timeout_ms: None,
        }
    }

    /// A `GET` request.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` request.
    pub fn post(url: &str) -> Self {
        Self::new("POST", url)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Sets `Idempotency-Key` in place of the default
    /// (`<event id>:<plugin>:<n>`); an empty key sends none.
    pub fn idempotency_key(mut self, key: &str) -> Self {
        self.idempotency_key = Some(key.to_owned());
        self
    }

    /// Bounds this call, within the attempt's time for HTTP.
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// A raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// A JSON body, with its content type.
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Result<Self, HandlerError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| HandlerError::reject(format!("cannot encode json: {e}")))?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    fn into_wit(self) -> wit::Request {
        wit::Request {
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: self.body,
            idempotency_key: self.idempotency_key,
            timeout_ms: self.timeout_ms,
        }
    }

    /// Sends the request and reads the whole response.
    pub fn send(self) -> Result<Response, HttpError> {
        let response = wit::fetch(&self.into_wit())?;
        Ok(Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }

    /// Queues the request in the outbox: the host sends it after this
    /// attempt commits, and not at all if the attempt fails. It is retried
    /// with backoff under the plugin's retry policy while the answer is a
    /// 408, 425, 429 or 5xx, or no answer, always with the same
    /// `Idempotency-Key` (by default `<event id>:<plugin>:outbox:<n>`), and
    /// becomes a dead letter after its last try or at any other status
    /// (redirects are not followed). An error here means the request was not queued: a bad URL or header, a
    /// host not in `allowed_hosts`, too many or too large.
    pub fn send_after_commit(self) -> Result<(), HttpError> {
        crate::wit::hookhost::plugin::outbox::send_after_commit(&self.into_wit())?;
        Ok(())
    }
}

/// `POST`s `value` as JSON to `url` after this attempt commits: see
/// [`Request::send_after_commit`].
pub fn post_json_after_commit<T: serde::Serialize + ?Sized>(
    url: &str,
    value: &T,
) -> Result<(), HandlerError> {
    Ok(Request::post(url).json(value)?.send_after_commit()?)
}

/// `POST`s `value` as JSON to `url`.
pub fn post_json<T: serde::Serialize + ?Sized>(
    url: &str,
    value: &T,
) -> Result<Response, HandlerError> {
    Ok(Request::post(url).json(value)?.send()?)
}

/// `GET`s `url`.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::get(url).send()
}

/// `GET`s `url` and parses its body as JSON; a non-2xx status is an error
/// worth retrying.
pub fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, HandlerError> {
    let response = get(url)?;
    if !response.is_success() {
        return Err(HandlerError::retry(format!(
            "GET {url}: status {}",
            response.status
        )));
    }
    response.json()
}
