//! Webhook sources: signature verification and topic / idempotency-key
//! derivation for `POST /hooks/{source}`.
//!
//! Pure functions over the request's headers and raw body, with the clock
//! passed in, so every scheme is tested against vectors. Signatures are
//! compared in constant time (`Mac::verify_slice`); secrets are read from
//! environment variables named in the config, kept only in memory, and never
//! printed (their `Debug` is redacted).
//!
//! | kind                | signature                                   | topic                         | idempotency key      |
//! |---------------------|---------------------------------------------|-------------------------------|----------------------|
//! | `github`            | `X-Hub-Signature-256: sha256=<hex>` of body | `github.<event>[.<action>]`   | `X-GitHub-Delivery`  |
//! | `stripe`            | `Stripe-Signature: t=…,v1=…` of `t.body`    | `stripe.<type>`               | the event's `id`     |
//! | `standard-webhooks` | `webhook-signature: v1,<b64> …` of `id.ts.body` | fixed or JSON pointer     | `webhook-id`         |
//! | `generic`           | optional HMAC hex in a configured header    | fixed or JSON pointer         | `Idempotency-Key`    |

use crate::model::{Reserved, validate_topic};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// The topics each configured source produces, and the scheduler's. A
/// source that takes its topic from the body with no `topic_prefix` could
/// produce any topic, so it reserves none.
pub fn reserved_topics(sources: &BTreeMap<String, SourceConfig>) -> Vec<Reserved> {
    let mut reserved = vec![Reserved {
        pattern: "schedule.*".into(),
        source: None,
    }];
    for (name, config) in sources {
        let pattern = match config.kind {
            SourceKind::Github => Some("github.*".to_owned()),
            SourceKind::Stripe => Some("stripe.*".to_owned()),
            SourceKind::StandardWebhooks | SourceKind::Generic => match &config.topic {
                Some(topic) => Some(topic.clone()),
                None => (!config.topic_prefix.is_empty())
                    .then(|| format!("{}*", config.topic_prefix.replace('*', ""))),
            },
        };
        reserved.extend(pattern.map(|pattern| Reserved {
            pattern,
            source: Some(name.clone()),
        }));
    }
    reserved
}

/// Default tolerance between a signed timestamp and now, both ways.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// The kinds of source the host understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    Github,
    Stripe,
    StandardWebhooks,
    Generic,
}

/// `[sources.<name>]` in `hookhost.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub kind: SourceKind,
    /// Environment variable holding the signing secret.
    pub secret_env: Option<String>,
    /// A fixed topic (standard-webhooks, generic).
    pub topic: Option<String>,
    /// A JSON pointer to the topic in the body, e.g. `/type`.
    pub topic_pointer: Option<String>,
    /// Put before a topic taken from the body, e.g. `billing.`.
    #[serde(default)]
    pub topic_prefix: String,
    /// generic: the header holding the hex HMAC-SHA256 of the body.
    pub signature_header: Option<String>,
    /// stripe, standard-webhooks: accepted clock difference in seconds.
    pub tolerance_secs: Option<u64>,
    /// Largest body from this source (default: the host's `body_limit_bytes`).
    pub body_limit_bytes: Option<usize>,
}

impl SourceConfig {
    /// A source of `kind` with nothing else set.
    pub fn new(kind: SourceKind) -> Self {
        Self {
            kind,
            secret_env: None,
            topic: None,
            topic_pointer: None,
            topic_prefix: String::new(),
            signature_header: None,
            tolerance_secs: None,
            body_limit_bytes: None,
        }
    }
}

/// A secret that never shows up in logs or debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// A configured source, its secret resolved.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub config: SourceConfig,
    secret: Option<Secret>,
}

impl Source {
    /// Whether `verify` checks a signature (a generic source without a
    /// secret checks none).
    pub fn verifies(&self) -> bool {
        self.config.kind != SourceKind::Generic || self.secret.is_some()
    }
}

/// Why a request from a source was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// 401: the request is not provably from the sender.
    #[error("{0}")]
    Signature(String),
    /// 400: it is signed but lacks what the topic or key come from.
    #[error("{0}")]
    Malformed(String),
}

/// What a verified request becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub topic: String,
    pub idempotency_key: Option<String>,
}

/// Why the sources in the config cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceSetupError {
    #[error("[sources.{0}]: secret_env is required for kind {1:?}")]
    MissingSecretEnv(String, SourceKind),
    #[error("[sources.{0}]: environment variable {1} is not set or empty")]
    SecretUnset(String, String),
    #[error("[sources.{0}]: the secret must be `whsec_` followed by base64")]
    BadStandardSecret(String),
    #[error("[sources.{0}]: set exactly one of topic and topic_pointer")]
    Topic(String),
    #[error("[sources.{0}]: invalid name; use lowercase letters, digits and '-'")]
    Name(String),
}

impl Source {
    /// Resolves a configured source, reading its secret with `env`.
    pub fn resolve(
        name: &str,
        config: &SourceConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SourceSetupError> {
        let err_name = || name.to_owned();
        if !crate::model::valid_plugin_name(name) {
            return Err(SourceSetupError::Name(err_name()));
        }
        let needs_secret = config.kind != SourceKind::Generic;
        let secret = match &config.secret_env {
            None if needs_secret => {
                return Err(SourceSetupError::MissingSecretEnv(err_name(), config.kind));
            }
            None => None,
            Some(var) => {
                let value = env(var)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| SourceSetupError::SecretUnset(err_name(), var.clone()))?;
                Some(Secret(match config.kind {
                    SourceKind::StandardWebhooks => standard_secret(&value)
                        .ok_or_else(|| SourceSetupError::BadStandardSecret(err_name()))?,
                    _ => value.into_bytes(),
                }))
            }
        };
        let topic_from_config = matches!(
            config.kind,
            SourceKind::StandardWebhooks | SourceKind::Generic
        );
        if topic_from_config && config.topic.is_some() == config.topic_pointer.is_some() {
            return Err(SourceSetupError::Topic(err_name()));
        }
        Ok(Self {
            name: name.to_owned(),
            config: config.clone(),
            secret,
        })
    }

    /// Verifies a request and derives its topic and idempotency key.
    /// `header` looks a header up by lowercase name; `now_secs` is the
    /// current Unix time.
    pub fn verify<'a>(
        &self,
        header: impl Fn(&str) -> Option<&'a str>,
        body: &[u8],
        now_secs: u64,
    ) -> Result<Derived, SourceError> {
        let tolerance = self.config.tolerance_secs.unwrap_or(DEFAULT_TOLERANCE_SECS);
        let secret = self.secret.as_ref().map(|s| s.0.as_slice());
        let derived = match self.config.kind {
            SourceKind::Github => {
                verify_github(
                    secret.unwrap_or_default(),
                    header("x-hub-signature-256"),
                    body,
                )?;
                github_topic(header("x-github-event"), body, header("x-github-delivery"))?
            }
            SourceKind::Stripe => {
                verify_stripe(
                    secret.unwrap_or_default(),
                    header("stripe-signature"),
                    body,
                    now_secs,
                    tolerance,
                )?;
                stripe_topic(body)?
            }
            SourceKind::StandardWebhooks => {
                let id = header("webhook-id").ok_or_else(|| missing("webhook-id"))?;
                let timestamp =
                    header("webhook-timestamp").ok_or_else(|| missing("webhook-timestamp"))?;
                let signatures =
                    header("webhook-signature").ok_or_else(|| missing("webhook-signature"))?;
                verify_standard(
                    secret.unwrap_or_default(),
                    id,
                    timestamp,
                    signatures,
                    body,
                    now_secs,
                    tolerance,
                )?;
                Derived {
                    topic: self.configured_topic(body)?,
                    idempotency_key: Some(id.to_owned()),
                }
            }
            SourceKind::Generic => {
                if let Some(secret) = secret {
                    let name = self
                        .config
                        .signature_header
                        .as_deref()
                        .unwrap_or("x-signature");
                    let given = header(&name.to_ascii_lowercase()).ok_or_else(|| missing(name))?;
                    verify_hex_hmac(secret, given.strip_prefix("sha256=").unwrap_or(given), body)?;
                }
                Derived {
                    topic: self.configured_topic(body)?,
                    idempotency_key: header("idempotency-key").map(str::to_owned),
                }
            }
        };
        validate_topic(&derived.topic).map_err(SourceError::Malformed)?;
        Ok(derived)
    }

    fn configured_topic(&self, body: &[u8]) -> Result<String, SourceError> {
        if let Some(topic) = &self.config.topic {
            return Ok(topic.clone());
        }
        let pointer = self.config.topic_pointer.as_deref().unwrap_or("");
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| SourceError::Malformed(format!("body is not valid json: {e}")))?;
        let topic = value
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                SourceError::Malformed(format!(
                    "body has no string at {pointer} to take the topic from"
                ))
            })?;
        Ok(format!("{}{topic}", self.config.topic_prefix))
    }
}

/// Resolves every configured source.
pub fn resolve_all(
    configs: &BTreeMap<String, SourceConfig>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, Source>, SourceSetupError> {
    configs
        .iter()
        .map(|(name, config)| Ok((name.clone(), Source::resolve(name, config, &env)?)))
        .collect()
}

fn missing(header: &str) -> SourceError {
    SourceError::Signature(format!("missing {header} header"))
}

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length: this cannot fail.
    match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("hmac accepts any key length"),
    }
}

fn verify_hex_hmac(secret: &[u8], hex_signature: &str, body: &[u8]) -> Result<(), SourceError> {
    let given = hex::decode(hex_signature.trim())
        .map_err(|_| SourceError::Signature("signature is not hex".into()))?;
    let mut m = mac(secret);
    m.update(body);
    m.verify_slice(&given)
        .map_err(|_| SourceError::Signature("signature does not match the body".into()))
}

fn verify_github(secret: &[u8], signature: Option<&str>, body: &[u8]) -> Result<(), SourceError> {
    let signature = signature.ok_or_else(|| missing("x-hub-signature-256"))?;
    let hex = signature.strip_prefix("sha256=").ok_or_else(|| {
        SourceError::Signature("x-hub-signature-256 must start with sha256=".into())
    })?;
    verify_hex_hmac(secret, hex, body)
}

fn github_topic(
    event: Option<&str>,
    body: &[u8],
    delivery: Option<&str>,
) -> Result<Derived, SourceError> {
    let event =
        event.ok_or_else(|| SourceError::Malformed("missing x-github-event header".into()))?;
    let action = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("action").and_then(|a| a.as_str()).map(str::to_owned));
    let topic = match action {
        Some(action) => format!("github.{event}.{action}"),
        None => format!("github.{event}"),
    };
    Ok(Derived {
        topic,
        idempotency_key: delivery.map(str::to_owned),
    })
}

fn verify_stripe(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now_secs: u64,
    tolerance: u64,
) -> Result<(), SourceError> {
    let header = header.ok_or_else(|| missing("stripe-signature"))?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<u64>().ok(),
            Some(("v1", sig)) => candidates.push(sig),
            _ => {}
        }
    }
    let timestamp = timestamp
        .ok_or_else(|| SourceError::Signature("stripe-signature has no valid t=".into()))?;
    check_tolerance(timestamp, now_secs, tolerance)?;
    let mut m = mac(secret);
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    let matched = candidates
        .iter()
        .filter_map(|c| hex::decode(c).ok())
        .any(|c| m.clone().verify_slice(&c).is_ok());
    if matched {
        Ok(())
    } else {
        Err(SourceError::Signature(
            "no v1 signature in stripe-signature matches the body".into(),
        ))
    }
}

fn stripe_topic(body: &[u8]) -> Result<Derived, SourceError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| SourceError::Malformed(format!("body is not valid json: {e}")))?;
    let kind = value
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or_else(|| SourceError::Malformed("stripe event has no string type".into()))?;
    let id = value
        .get("id")
        .and_then(|t| t.as_str())
        .ok_or_else(|| SourceError::Malformed("stripe event has no string id".into()))?;
    Ok(Derived {
        topic: format!("stripe.{kind}"),
        idempotency_key: Some(id.to_owned()),
    })
}

/// The key bytes of a Standard Webhooks secret `whsec_<base64>`.
fn standard_secret(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix("whsec_")?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
}

fn verify_standard(
    secret: &[u8],
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now_secs: u64,
    tolerance: u64,
) -> Result<(), SourceError> {
    let ts: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SourceError::Signature("webhook-timestamp is not an integer".into()))?;
    check_tolerance(ts, now_secs, tolerance)?;
    let mut m = mac(secret);
    m.update(id.as_bytes());
    m.update(b".");
    m.update(timestamp.trim().as_bytes());
    m.update(b".");
    m.update(body);
    let matched = signatures
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .any(|sig| m.clone().verify_slice(&sig).is_ok());
    if matched {
        Ok(())
    } else {
        Err(SourceError::Signature(
            "no v1 signature in webhook-signature matches the body".into(),
        ))
    }
}

fn check_tolerance(timestamp: u64, now_secs: u64, tolerance: u64) -> Result<(), SourceError> {
    if timestamp.abs_diff(now_secs) > tolerance {
        return Err(SourceError::Signature(format!(
            "signed timestamp {timestamp} is more than {tolerance} s from now ({now_secs})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
