//! A small synchronous HTTP client over `wasi:http`, for calling the APIs
//! your automation talks to (Slack, an accounting API, an email API).
//!
//! The host lets a plugin call only the hosts its operator lists in
//! `allowed_hosts`, within per-attempt budgets (number of requests, total
//! time, response size); anything else is an [`HttpError`] here and is
//! recorded in the attempt (method, origin, status, duration: never paths,
//! headers or bodies).
//!
//! Forward the attempt's idempotency key so a retried attempt does not
//! repeat a side effect at the other end:
//!
//! ```no_run
//! use hookhost_sdk::{Event, HandlerError, http};
//!
//! fn notify(event: &Event, url: &str) -> Result<(), HandlerError> {
//!     let response = http::Request::post(url)
//!         .json(&serde_json::json!({ "text": "paid" }))?
//!         .idempotency_key(&event.id)
//!         .send()?;
//!     if !response.is_success() {
//!         return Err(HandlerError::retry(format!("notify failed: {}", response.status)));
//!     }
//!     Ok(())
//! }
//! ```

use crate::HandlerError;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use wasip2::io::streams::StreamError;

/// Why a request did not produce a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL could not be used.
    InvalidUrl(String),
    /// The host refused or failed the request: not allowed, over budget,
    /// timed out, unreachable, response too large…
    Failed(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::InvalidUrl(m) => write!(f, "invalid url: {m}"),
            HttpError::Failed(m) => write!(f, "http request failed: {m}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// An HTTP failure is worth retrying by default: the other end may be back.
impl From<HttpError> for HandlerError {
    fn from(e: HttpError) -> Self {
        HandlerError::retry(e.to_string())
    }
}

/// A response, its body read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Response headers, names lowercase.
    pub headers: Vec<(String, Vec<u8>)>,
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
}

/// A request to build and [`send`](Request::send).
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Request {
    /// A request with `method` (`GET`, `POST`, …) to `url`
    /// (`http(s)://host[:port][/path][?query]`).
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
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
            .push((name.to_ascii_lowercase(), value.as_bytes().to_vec()));
        self
    }

    /// Sets `Idempotency-Key`: pass the event's [`id`](crate::Event::id),
    /// stable across retries and replays, so the other end recognises a
    /// repeated call.
    pub fn idempotency_key(self, key: &str) -> Self {
        self.header("idempotency-key", key)
    }

    /// A raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// A JSON body, with its content type.
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Result<Self, HandlerError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| HandlerError::reject(format!("cannot encode json: {e}")))?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// Sends the request and reads the whole response.
    pub fn send(self) -> Result<Response, HttpError> {
        let url = Url::parse(&self.url)?;
        let headers = Fields::from_list(&self.headers)
            .map_err(|e| HttpError::InvalidUrl(format!("bad header: {e:?}")))?;
        let request = OutgoingRequest::new(headers);
        let method = match self.method.as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "HEAD" => Method::Head,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_owned()),
        };
        let invalid = |what: &str| HttpError::InvalidUrl(format!("{what} of {:?}", self.url));
        request
            .set_method(&method)
            .map_err(|()| invalid("method"))?;
        request
            .set_scheme(Some(&url.scheme))
            .map_err(|()| invalid("scheme"))?;
        request
            .set_authority(Some(&url.authority))
            .map_err(|()| invalid("host"))?;
        request
            .set_path_with_query(Some(&url.path))
            .map_err(|()| invalid("path"))?;
        let body = request.body().map_err(|()| invalid("body"))?;
        let pending = outgoing_handler::handle(request, None).map_err(failed)?;
        let written = write_body(&body, &self.body)
            .and_then(|()| OutgoingBody::finish(body, None).map_err(failed));
        pending.subscribe().block();
        // A refused request closes the body stream: its own error says why.
        let response = match (pending.get(), written) {
            (Some(Ok(Err(e))), _) => return Err(failed(e)),
            (_, Err(e)) => return Err(e),
            (Some(Ok(Ok(response))), Ok(())) => response,
            _ => return Err(HttpError::Failed("no response".into())),
        };
        let status = response.status();
        let headers = response.headers().entries();
        let incoming = response
            .consume()
            .map_err(|()| HttpError::Failed("response body unavailable".into()))?;
        let body = read_body(&incoming)?;
        drop(response);
        Ok(Response {
            status,
            headers,
            body,
        })
    }
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

fn failed(e: ErrorCode) -> HttpError {
    HttpError::Failed(format!("{e:?}"))
}

fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    let stream = body
        .write()
        .map_err(|()| HttpError::Failed("request body unavailable".into()))?;
    // `blocking-write-and-flush` takes at most 4096 bytes at a time.
    for chunk in bytes.chunks(4096) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|e| HttpError::Failed(format!("writing the body: {e:?}")))?;
    }
    Ok(())
}

fn read_body(incoming: &IncomingBody) -> Result<Vec<u8>, HttpError> {
    let stream = incoming
        .stream()
        .map_err(|()| HttpError::Failed("response body unavailable".into()))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(body),
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(HttpError::Failed(format!(
                    "reading the response: {}",
                    e.to_debug_string()
                )));
            }
        }
    }
}

/// The parts of an `http(s)://host[:port][/path][?query]` URL a request needs.
struct Url {
    scheme: Scheme,
    authority: String,
    path: String,
}

impl Url {
    fn parse(url: &str) -> Result<Self, HttpError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| HttpError::InvalidUrl(format!("{url:?} has no scheme")))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            other => {
                return Err(HttpError::InvalidUrl(format!(
                    "scheme {other:?} in {url:?}"
                )));
            }
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() || authority.contains('@') {
            return Err(HttpError::InvalidUrl(format!("host of {url:?}")));
        }
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(Self {
            scheme,
            authority: authority.to_owned(),
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Url;

    #[test]
    fn urls_split_into_scheme_host_and_path() {
        let u = Url::parse("https://hooks.slack.com/services/T/B/X?x=1").expect("url");
        assert_eq!(u.authority, "hooks.slack.com");
        assert_eq!(u.path, "/services/T/B/X?x=1");
        let u = Url::parse("http://127.0.0.1:8080").expect("url");
        assert_eq!(u.authority, "127.0.0.1:8080");
        assert_eq!(u.path, "/");
        assert_eq!(Url::parse("http://h?q=1").expect("url").path, "/?q=1");
        assert!(Url::parse("ftp://x").is_err());
        assert!(Url::parse("no-scheme").is_err());
        assert!(Url::parse("https://user@host/").is_err());
    }
}
