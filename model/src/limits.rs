//! What bounds a plugin: its limits, secrets and outbound rules, as the
//! host's configuration resolves them.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::delivery::{OrderBy, RetryPolicy};
use crate::topics::Reserved;

/// A plugin's effective limits, every field resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLimits {
    pub fuel: u64,
    pub timeout_ms: u64,
    pub memory_bytes: u64,
    pub max_concurrency: usize,
    /// `None`: use the policy the plugin declares, else the host default.
    pub retry: Option<RetryPolicy>,
    /// `Some` for a plugin with `ordering = "per-key"`.
    pub order_by: Option<OrderBy>,
    pub config: BTreeMap<String, String>,
    /// Resolved secret values by key (see `Config::resolve_secrets` in the host).
    pub secrets: BTreeMap<String, Secret>,
    /// Schedule overrides by name (a cron or `"off"`).
    pub schedules: BTreeMap<String, String>,
    pub outbound: OutboundLimits,
    /// Topics the plugin may not emit: a source's or the scheduler's.
    pub reserved: std::sync::Arc<[Reserved]>,
}

/// Captured logs and output per attempt, in bytes.
pub const LOG_CAP_BYTES: usize = 64 * 1024;

/// A secret value: shown as `[redacted]` by `Debug`, read with
/// [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// One `allowed_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    scheme: String,
    host: String,
    port: u16,
}

impl HostRule {
    pub fn parse(rule: &str) -> Result<Self, String> {
        let (scheme, rest) = match rule.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("https".to_owned(), rule),
        };
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            other => return Err(format!("allowed host {rule:?}: unknown scheme {other:?}")),
        };
        if rest.contains('/') || rest.is_empty() {
            return Err(format!(
                "allowed host {rule:?}: give a host, optionally with scheme and port, no path"
            ));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse()
                    .map_err(|_| format!("allowed host {rule:?}: bad port {port:?}"))?,
            ),
            None => (rest, default_port),
        };
        let bare = host.strip_prefix("*.").unwrap_or(host);
        if bare.is_empty() || bare.contains('*') {
            return Err(format!(
                "allowed host {rule:?}: a wildcard is only allowed as a leading `*.`"
            ));
        }
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// Whether a request to `scheme://host:port` may go out under this rule.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        if self.scheme != scheme || self.port != port {
            return false;
        }
        match self.host.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => self.host == host,
        }
    }
}

/// Per-attempt outbound limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundLimits {
    pub allowed: Vec<HostRule>,
    pub max_requests: u32,
    pub time: Duration,
    pub max_response_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_hosts_match_scheme_host_and_port() {
        let slack = HostRule::parse("hooks.slack.com").expect("rule");
        assert!(slack.allows("https", "hooks.slack.com", 443));
        assert!(!slack.allows("http", "hooks.slack.com", 80), "https only");
        assert!(!slack.allows("https", "hooks.slack.com", 8443));
        assert!(!slack.allows("https", "evil.hooks.slack.com", 443));
        assert!(!slack.allows("https", "hooks.slack.com.evil.net", 443));

        let any = HostRule::parse("*.example.com").expect("rule");
        assert!(any.allows("https", "api.example.com", 443));
        assert!(any.allows("https", "a.b.example.com", 443));
        assert!(
            !any.allows("https", "example.com", 443),
            "not the bare domain"
        );
        assert!(!any.allows("https", "badexample.com", 443));

        let local = HostRule::parse("http://127.0.0.1:8081").expect("rule");
        assert!(local.allows("http", "127.0.0.1", 8081));
        assert!(!local.allows("https", "127.0.0.1", 8081));
        assert!(!local.allows("http", "127.0.0.1", 8082));

        for bad in [
            "ftp://x.com",
            "x.com/path",
            "",
            "*",
            "a.*.com",
            "x.com:port",
        ] {
            assert!(HostRule::parse(bad).is_err(), "{bad:?}");
        }
    }
}
