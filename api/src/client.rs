//! A typed client of the admin API: one method per route, answering the
//! route's type.

use crate::{
    Candidate, ConfigReloaded, DeadLetterList, ErrorBody, EventDetail, EventList, ExactReplay,
    ExactReplayRequest, Ingested, PluginInfo, PluginList, QuarantineList, ReplayMany, ReplayOne,
    Replayed, ReplayedMany, Retried, RetriedMany, Rollback, ShadowReport, ShadowRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the URL must start with http:// or https://, got {0:?}")]
    Url(String),
    #[error("cannot reach the host at {base}: {source}")]
    Unreachable {
        base: String,
        #[source]
        source: reqwest::Error,
    },
    /// The host answered with an error: its message, and a hint for a 401.
    #[error("{method} {path}: {status}: {message}{}", if *.status == 401 { " (pass --token or set HOOKHOST_TOKEN)" } else { "" })]
    Api {
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    /// The host answered 2xx with a body this client cannot read: a host of
    /// another version, most likely.
    #[error("{method} {path}: unexpected answer ({error}): {body}")]
    Decode {
        method: String,
        path: String,
        error: String,
        body: String,
    },
    #[error("writing the answer: {0}")]
    Write(#[from] std::io::Error),
}

/// Query parameters: those set are sent, each value percent-encoded.
#[derive(Debug, Clone, Default)]
pub struct Query(Vec<(&'static str, String)>);

impl Query {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key=value` when `value` is set.
    pub fn set(mut self, key: &'static str, value: Option<impl ToString>) -> Self {
        if let Some(value) = value {
            self.0.push((key, value.to_string()));
        }
        self
    }

    /// `path` followed by the parameters.
    pub fn on(&self, path: &str) -> String {
        let mut out = path.to_owned();
        let mut sep = if path.contains('?') { '&' } else { '?' };
        for (key, value) in &self.0 {
            out.push(sep);
            out.push_str(key);
            out.push('=');
            out.push_str(&encode(value));
            sep = '&';
        }
        out
    }
}

/// Percent-encodes a path segment or query value.
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~*".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Filters of `GET /events`, `GET /export`; unset is no filter.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub topic: Option<String>,
    /// `pending`, `succeeded`, `failed`, …
    pub status: Option<String>,
    pub plugin: Option<String>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
}

impl EventFilter {
    fn query(&self) -> Query {
        Query::new()
            .set("topic", self.topic.as_ref())
            .set("status", self.status.as_ref())
            .set("plugin", self.plugin.as_ref())
            .set("since_ms", self.since_ms)
            .set("until_ms", self.until_ms)
    }
}

/// Where the host is and how to talk to it.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    headers: Vec<(String, String)>,
    http: reqwest::Client,
}

enum Body {
    Json(serde_json::Value),
    Raw(Vec<u8>, String),
}

impl Client {
    /// A client of the host at `url` (`http://127.0.0.1:8080`), sending
    /// `token` as a bearer token when set.
    pub fn new(url: &str, token: Option<String>) -> Result<Self, ClientError> {
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Url(url.to_owned()));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|source| ClientError::Unreachable {
                base: base.clone(),
                source,
            })?;
        Ok(Self {
            base,
            token: token.filter(|t| !t.is_empty()),
            headers: Vec::new(),
            http,
        })
    }

    /// Sends `name: value` with every request.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<reqwest::Response, ClientError> {
        let request = match body {
            Some(Body::Json(v)) => self.request(method.clone(), path).json(&v),
            Some(Body::Raw(bytes, content_type)) => self
                .request(method.clone(), path)
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes),
            None => self.request(method.clone(), path),
        };
        let response = request
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                base: self.base.clone(),
                source,
            })?;
        let status = response.status().as_u16();
        if status < 400 {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text).map_or(text, |b| b.error);
        Err(ClientError::Api {
            method: method.to_string(),
            path: path.to_owned(),
            status,
            message,
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<(u16, T), ClientError> {
        let response = self.send(method.clone(), path, body).await?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).map_err(|e| ClientError::Decode {
            method: method.to_string(),
            path: path.to_owned(),
            error: e.to_string(),
            body: text.chars().take(200).collect(),
        })?;
        Ok((status, value))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        Ok(self.call(reqwest::Method::GET, path, None).await?.1)
    }

    /// POSTs JSON (`{}` without a body: the admin API refuses a state change
    /// without a JSON content type).
    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let body = match body {
            Some(b) => serde_json::to_value(b).unwrap_or_default(),
            None => serde_json::json!({}),
        };
        Ok(self
            .call(reqwest::Method::POST, path, Some(Body::Json(body)))
            .await?
            .1)
    }

    /// GETs `path` and copies the body to `out` as it arrives.
    pub async fn stream_to(
        &self,
        path: &str,
        out: &mut impl std::io::Write,
    ) -> Result<(), ClientError> {
        let mut response = self.send(reqwest::Method::GET, path, None).await?;
        while let Some(chunk) =
            response
                .chunk()
                .await
                .map_err(|source| ClientError::Unreachable {
                    base: self.base.clone(),
                    source,
                })?
        {
            out.write_all(&chunk)?;
        }
        out.flush()?;
        Ok(())
    }

    /// `POST /events/{topic}`: `key` as its idempotency key.
    pub async fn send_event(
        &self,
        topic: &str,
        body: Vec<u8>,
        content_type: &str,
        key: Option<&str>,
    ) -> Result<Ingested, ClientError> {
        let this = match key {
            Some(key) => self.clone().with_header("idempotency-key", key),
            None => self.clone(),
        };
        let path = format!("/events/{}", encode(topic));
        let body = Body::Raw(body, content_type.to_owned());
        Ok(this.call(reqwest::Method::POST, &path, Some(body)).await?.1)
    }

    /// `GET /events`: a page of at most `limit`, after `cursor`.
    pub async fn events(
        &self,
        filter: &EventFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<EventList, ClientError> {
        let query = filter.query().set("cursor", cursor);
        self.get(&query.on(&format!("/events?limit={limit}"))).await
    }

    /// `GET /export`: every matching event as JSON lines, into `out`.
    pub async fn export(
        &self,
        filter: &EventFilter,
        out: &mut impl std::io::Write,
    ) -> Result<(), ClientError> {
        self.stream_to(&filter.query().on("/export"), out).await
    }

    /// `GET /events/{id}`.
    pub async fn event(&self, id: &str) -> Result<EventDetail, ClientError> {
        self.get(&format!("/events/{}", encode(id))).await
    }

    /// `POST /events/{id}/replay`.
    pub async fn replay(&self, id: &str, body: &ReplayOne) -> Result<Replayed, ClientError> {
        self.post(&format!("/events/{}/replay", encode(id)), Some(body))
            .await
    }

    /// `POST /events/{id}/replay-exact`.
    pub async fn replay_exact(
        &self,
        id: &str,
        body: &ExactReplayRequest,
    ) -> Result<ExactReplay, ClientError> {
        self.post(&format!("/events/{}/replay-exact", encode(id)), Some(body))
            .await
    }

    /// `POST /replay`.
    pub async fn replay_many(&self, body: &ReplayMany) -> Result<ReplayedMany, ClientError> {
        self.post("/replay", Some(body)).await
    }

    /// `GET /plugins`.
    pub async fn plugins(&self) -> Result<PluginList, ClientError> {
        self.get("/plugins").await
    }

    /// `GET /plugins/{name}`.
    pub async fn plugin(&self, name: &str) -> Result<PluginInfo, ClientError> {
        self.get(&format!("/plugins/{}", encode(name))).await
    }

    /// `POST /plugins/{name}/rollback`.
    pub async fn rollback(&self, name: &str, body: &Rollback) -> Result<PluginInfo, ClientError> {
        self.post(&format!("/plugins/{}/rollback", encode(name)), Some(body))
            .await
    }

    /// `POST /plugins/{name}/candidates`: `component`'s bytes.
    pub async fn upload_candidate(
        &self,
        name: &str,
        component: Vec<u8>,
    ) -> Result<Candidate, ClientError> {
        let path = format!("/plugins/{}/candidates", encode(name));
        let body = Body::Raw(component, "application/wasm".to_owned());
        Ok(self.call(reqwest::Method::POST, &path, Some(body)).await?.1)
    }

    /// `POST /plugins/{name}/shadow`.
    pub async fn shadow(
        &self,
        name: &str,
        body: &ShadowRequest,
    ) -> Result<ShadowReport, ClientError> {
        self.post(&format!("/plugins/{}/shadow", encode(name)), Some(body))
            .await
    }

    /// `GET /dead-letters`: a page of at most `limit`, after `cursor`.
    pub async fn dead_letters(
        &self,
        plugin: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<DeadLetterList, ClientError> {
        let query = Query::new().set("plugin", plugin).set("cursor", cursor);
        self.get(&query.on(&format!("/dead-letters?limit={limit}")))
            .await
    }

    /// `POST /dead-letters/{delivery}/retry`.
    pub async fn retry_dead(&self, delivery: &str) -> Result<Retried, ClientError> {
        self.post(
            &format!("/dead-letters/{}/retry", encode(delivery)),
            None::<&()>,
        )
        .await
    }

    /// `POST /dead-letters/retry`: every dead letter, or `plugin`'s.
    pub async fn retry_all_dead(&self, plugin: Option<&str>) -> Result<RetriedMany, ClientError> {
        let path = Query::new().set("plugin", plugin).on("/dead-letters/retry");
        self.post(&path, None::<&()>).await
    }

    /// `GET /quarantine`.
    pub async fn quarantine(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<QuarantineList, ClientError> {
        let query = Query::new().set("cursor", cursor);
        self.get(&query.on(&format!("/quarantine?limit={limit}")))
            .await
    }

    /// `POST /config/reload`.
    pub async fn reload_config(&self) -> Result<ConfigReloaded, ClientError> {
        self.post("/config/reload", None::<&()>).await
    }

    /// `GET /backup` into `out`.
    pub async fn backup(&self, out: &mut impl std::io::Write) -> Result<(), ClientError> {
        self.stream_to("/backup", out).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_keeps_the_parameters_that_are_set_and_encodes_them() {
        assert_eq!(
            Query::new().set("topic", None::<&str>).on("/export"),
            "/export"
        );
        assert_eq!(
            Query::new()
                .set("topic", Some("a b&c"))
                .set("status", None::<&str>)
                .set("since_ms", Some(5))
                .on("/export"),
            "/export?topic=a%20b%26c&since_ms=5"
        );
        assert_eq!(
            Query::new()
                .set("topic", Some("stripe.*"))
                .on("/events?limit=5"),
            "/events?limit=5&topic=stripe.*"
        );
    }
}
