//! Declared answers for outbound calls, for attempts that must not reach
//! the network but should see responses: `hookhost test` runs a component
//! against fixture events with the answers its case declares, and records
//! every request in full (a local run, so URLs and bodies may be shown).

use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// One declared answer: the first whose method (when given) and URL equal a
/// request's answers it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// Any method when absent.
    #[serde(default)]
    pub method: Option<String>,
    pub url: String,
    #[serde(default = "ok")]
    pub status: u16,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// A JSON body (sent with `content-type: application/json` unless
    /// `headers` names one).
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// A text body.
    #[serde(default)]
    pub text: Option<String>,
    /// No response at all: the call fails this way.
    #[serde(default)]
    pub error: Option<AnswerError>,
}

fn ok() -> u16 {
    200
}

/// How a declared call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerError {
    Timeout,
    Failed,
}

/// A request an offline attempt made, in full, and what answered it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeenCall {
    pub method: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The body as JSON when it is JSON, else as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answers of one offline attempt and the calls it made.
#[derive(Debug, Default)]
pub struct Answers {
    declared: Vec<Answer>,
    seen: Mutex<Vec<SeenCall>>,
}

impl Answers {
    pub fn new(declared: Vec<Answer>) -> Self {
        Self {
            declared,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// The declared answer for `method` `url`, if any.
    pub fn find(&self, method: &str, url: &str) -> Option<&Answer> {
        self.declared.iter().find(|a| {
            a.method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && same_url(&a.url, url)
        })
    }

    pub fn record(&self, call: SeenCall) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(call);
        }
    }

    /// The calls made so far, in order.
    pub fn seen(&self) -> Vec<SeenCall> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Each declared URL's origin as an `allowed_hosts` entry.
    pub fn origins(&self) -> Vec<String> {
        self.declared
            .iter()
            .filter_map(|a| a.url.parse::<http::Uri>().ok())
            .filter_map(|u| {
                let scheme = u.scheme_str()?;
                let host = u.host()?;
                Some(match u.port_u16() {
                    Some(port) => format!("{scheme}://{host}:{port}"),
                    None => format!("{scheme}://{host}"),
                })
            })
            .collect()
    }
}

/// Whether two URLs are the same, a root path and none being equal.
fn same_url(declared: &str, sent: &str) -> bool {
    let norm = |u: &str| u.parse::<http::Uri>().map(|u| u.to_string()).ok();
    declared == sent || (norm(declared).is_some() && norm(declared) == norm(sent))
}

/// `body` as JSON when it parses, else as text; `None` when empty.
pub fn body_value(body: &[u8]) -> Option<serde_json::Value> {
    if body.is_empty() {
        return None;
    }
    Some(
        serde_json::from_slice(body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_answer_with_the_method_and_url_answers() {
        let answers = Answers::new(vec![
            Answer {
                method: Some("POST".into()),
                url: "https://api.example.com/a".into(),
                status: 201,
                headers: vec![],
                json: None,
                text: None,
                error: None,
            },
            Answer {
                method: None,
                url: "https://api.example.com/a".into(),
                status: 200,
                headers: vec![],
                json: None,
                text: None,
                error: None,
            },
        ]);
        assert_eq!(
            answers
                .find("post", "https://api.example.com/a")
                .map(|a| a.status),
            Some(201)
        );
        assert_eq!(
            answers
                .find("GET", "https://api.example.com/a")
                .map(|a| a.status),
            Some(200)
        );
        assert!(answers.find("GET", "https://api.example.com/b").is_none());
        assert_eq!(answers.origins()[0], "https://api.example.com");
    }
}
