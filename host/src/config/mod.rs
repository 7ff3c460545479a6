//! The host's configuration: one [`Config`], read from `hookhost.toml` and
//! overridden by command-line flags, then passed down explicitly.
//!
//! Every key is documented in `docs/configuration.md`. Unknown keys are an error, so a typo
//! never silently falls back to a default.

use crate::model::{PluginLimits, RetryPolicy, Secret};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod defaults;
mod store;
#[cfg(test)]
mod tests;

use store::parse_duration;
pub use store::{Postgres, Retention, StoreKind};

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// Everything the host needs to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file this configuration was read from: re-read on `SIGHUP` or
    /// `POST /config/reload` to apply changed plugin settings.
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// Address the HTTP server listens on.
    #[serde(default = "defaults::listen")]
    pub listen: SocketAddr,
    /// Directory of the embedded sled store.
    #[serde(default = "defaults::data")]
    pub data: PathBuf,
    /// Directory holding `<name>.wasm` plugin components.
    #[serde(default = "defaults::plugins_dir")]
    pub plugins_dir: PathBuf,
    /// Name of the environment variable holding the admin bearer token.
    #[serde(default)]
    pub admin_token_env: Option<String>,
    /// Allow a non-loopback `listen` without an admin token (admin routes
    /// then answer anyone who can reach the port).
    #[serde(default)]
    pub allow_public_admin: bool,
    /// Name of the environment variable holding the ingest token: when set,
    /// `POST /events/{topic}` requires `Authorization: Bearer <token>` (the
    /// admin token is accepted too). Required on a non-loopback `listen`.
    #[serde(default)]
    pub ingest_token_env: Option<String>,
    /// Allow a non-loopback `listen` without an ingest token (anyone who
    /// reaches the port can then post events to `/events/{topic}`).
    #[serde(default)]
    pub allow_public_ingest: bool,
    /// Host names the admin API answers to, besides IP addresses and
    /// `localhost` (e.g. `["hookhost.example.com"]` behind a proxy). A
    /// request naming any other host is refused: a web page on a name that
    /// resolves to this host (DNS rebinding) cannot read the admin API.
    #[serde(default)]
    pub admin_hosts: Vec<String>,
    /// Request headers never stored with an event (so never shown to a
    /// handler, nor kept in exports and backups), besides `authorization`,
    /// `cookie` and framing, which are always dropped. Names are matched
    /// without regard to case.
    #[serde(default = "defaults::strip_headers")]
    pub strip_headers: Vec<String>,
    /// Largest accepted request body, in bytes.
    #[serde(default = "defaults::body_limit")]
    pub body_limit_bytes: usize,
    /// Longest a request may take, body upload included; slower ones get 408.
    /// For candidate uploads and shadow runs it bounds the upload only: the
    /// compile or the runs behind it are the host's work, not the client's.
    #[serde(default = "defaults::request_timeout")]
    pub request_timeout_ms: u64,
    /// Longest a client may take to send a request's headers, and longest a
    /// kept-alive connection may sit idle; then the connection is closed.
    #[serde(default = "defaults::header_timeout")]
    pub header_timeout_ms: u64,
    /// Requests handled at once; more get 503 at once instead of queueing.
    #[serde(default = "defaults::max_concurrent_requests")]
    pub max_concurrent_requests: usize,
    /// Largest total size of a request's headers; larger get 431.
    #[serde(default = "defaults::max_header_bytes")]
    pub max_header_bytes: usize,
    /// Deliveries waiting or running at most; above it ingest answers 503
    /// with `Retry-After` instead of queueing without bound.
    #[serde(default = "defaults::max_queue_depth")]
    pub max_queue_depth: u64,
    /// Handlers that may run at once, across all plugins (an attempt's
    /// record is written after its handler has given its worker back).
    #[serde(default = "defaults::workers")]
    pub workers: usize,
    /// The embedded store's page cache in MB: the bound on how much of the
    /// store stays in memory.
    #[serde(default = "defaults::store_cache_mb")]
    pub store_cache_mb: u64,
    /// Where events live: `sled` (embedded in `data`, one host) or
    /// `postgres` (a database several hosts share, see `[postgres]`).
    #[serde(default)]
    pub store: StoreKind,
    /// The PostgreSQL store, when `store = "postgres"`.
    #[serde(default)]
    pub postgres: Postgres,
    /// Limits for plugins that have no `[plugins.<name>]` table of their own.
    #[serde(default)]
    pub defaults: PluginSettings,
    /// Per-plugin grants and limits, by plugin name.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginSettings>,
    /// JSON Schema files that bodies must meet, by topic pattern.
    #[serde(default)]
    pub contracts: BTreeMap<String, PathBuf>,
    /// Webhook senders for `POST /hooks/{source}`, by source name.
    #[serde(default)]
    pub sources: BTreeMap<String, crate::sources::SourceConfig>,
    /// How long finished events are kept.
    #[serde(default)]
    pub retention: Retention,
}

/// Grants and limits for one plugin; unset fields take `[defaults]`' value.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    /// Fuel per attempt (≈ 6 M per ms of tight loop).
    pub fuel: Option<u64>,
    /// Wall-clock deadline per attempt.
    pub timeout_ms: Option<u64>,
    /// Linear memory cap per instance.
    pub memory_mb: Option<u64>,
    /// Handlers of this plugin that may run at once.
    pub max_concurrency: Option<usize>,
    /// Overrides the retry policy the plugin declares.
    pub retry: Option<RetryPolicy>,
    /// `parallel` (default) or `per-key`.
    pub ordering: Option<crate::model::Ordering>,
    /// With `per-key`: a JSON pointer into the body giving the key; unset,
    /// the idempotency key is the key.
    pub order_key: Option<String>,
    /// Values the plugin reads through the `config` import.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Secret values the plugin reads through the `config` import, by key:
    /// each names the environment variable that holds it. Never logged or
    /// recorded; a plugin that writes one into a record gets it redacted.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Overrides of the plugin's schedules by name: another cron, or `"off"`.
    #[serde(default)]
    pub schedules: BTreeMap<String, String>,
    /// Hosts the plugin may call (the `http` interface or `wasi:http`): `[scheme://]host[:port]`,
    /// `*.example.com` for subdomains; without a scheme, https only.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Outbound requests per attempt.
    pub max_http_requests: Option<u32>,
    /// Time for all outbound requests of one attempt (never past its deadline).
    pub http_time_ms: Option<u64>,
    /// Largest response body per outbound request.
    pub max_response_bytes: Option<u64>,
}

/// Every plugin's secrets, resolved from the environment, by plugin name
/// (`""` for `[defaults]`).
pub type ResolvedSecrets = BTreeMap<String, BTreeMap<String, Secret>>;

impl Default for Config {
    fn default() -> Self {
        Self {
            source: None,
            listen: defaults::listen(),
            data: defaults::data(),
            plugins_dir: defaults::plugins_dir(),
            admin_token_env: None,
            allow_public_admin: false,
            ingest_token_env: None,
            allow_public_ingest: false,
            admin_hosts: Vec::new(),
            strip_headers: defaults::strip_headers(),
            body_limit_bytes: defaults::body_limit(),
            request_timeout_ms: defaults::request_timeout(),
            header_timeout_ms: defaults::header_timeout(),
            max_concurrent_requests: defaults::max_concurrent_requests(),
            max_header_bytes: defaults::max_header_bytes(),
            max_queue_depth: defaults::max_queue_depth(),
            workers: defaults::workers(),
            store_cache_mb: defaults::store_cache_mb(),
            store: StoreKind::default(),
            postgres: Postgres::default(),
            defaults: PluginSettings::default(),
            plugins: BTreeMap::new(),
            sources: BTreeMap::new(),
            contracts: BTreeMap::new(),
            retention: Retention::default(),
        }
    }
}

impl Config {
    /// Reads and validates a `hookhost.toml`.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Invalid(message) => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        crate::contracts::rebase(&mut config.contracts, dir);
        config.source = Some(path.to_owned());
        Ok(config)
    }

    /// Parses and validates configuration text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Invalid(e.message().to_owned()))?;
        config.validate()?;
        Ok(config)
    }

    /// The longest `timeout_ms` any plugin may be given: a plugin's own, or
    /// else `[defaults]`' (which a plugin without a section gets too).
    pub fn longest_timeout_ms(&self) -> u64 {
        let default = self.defaults.timeout_ms.unwrap_or(defaults::TIMEOUT_MS);
        self.plugins
            .values()
            .map(|s| s.timeout_ms.unwrap_or(default))
            .fold(default, u64::max)
    }

    /// A lease shorter than an attempt may run would let a second host run
    /// a delivery while the first still is.
    fn validate_postgres(&self) -> Result<(), ConfigError> {
        let p = &self.postgres;
        let lease = parse_duration(&p.lease)
            .map_err(|e| ConfigError::Invalid(format!("[postgres] lease: {e}")))?;
        if p.pool_size == 0 || p.url_env.is_empty() {
            return Err(ConfigError::Invalid(
                "[postgres] pool_size must be positive and url_env not empty".into(),
            ));
        }
        if self.store == StoreKind::Postgres {
            let longest = self.longest_timeout_ms();
            if lease.as_millis() as u64 <= longest {
                return Err(ConfigError::Invalid(format!(
                    "[postgres] lease ({}) must be longer than the longest plugin timeout_ms ({longest} ms)",
                    p.lease
                )));
            }
        }
        Ok(())
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.body_limit_bytes == 0 {
            return Err(ConfigError::Invalid(
                "body_limit_bytes must be positive".into(),
            ));
        }
        if self.request_timeout_ms == 0
            || self.header_timeout_ms == 0
            || self.max_queue_depth == 0
            || self.max_concurrent_requests == 0
            || self.max_header_bytes == 0
        {
            return Err(ConfigError::Invalid(
                "request_timeout_ms, header_timeout_ms, max_queue_depth, max_concurrent_requests and max_header_bytes must be positive"
                    .into(),
            ));
        }
        if self.workers == 0 {
            return Err(ConfigError::Invalid("workers must be positive".into()));
        }
        if self.store_cache_mb == 0 {
            return Err(ConfigError::Invalid(
                "store_cache_mb must be positive".into(),
            ));
        }
        self.retention.validate()?;
        self.validate_postgres()?;
        for (name, settings) in std::iter::once(("defaults", &self.defaults))
            .chain(self.plugins.iter().map(|(n, s)| (n.as_str(), s)))
        {
            let bad = |what: &str| {
                ConfigError::Invalid(format!("[plugins.{name}] {what} must be positive"))
            };
            if settings.fuel == Some(0) {
                return Err(bad("fuel"));
            }
            if settings.timeout_ms == Some(0) {
                return Err(bad("timeout_ms"));
            }
            if settings.memory_mb == Some(0) || settings.memory_mb.is_some_and(|m| m > 4096) {
                return Err(ConfigError::Invalid(format!(
                    "[plugins.{name}] memory_mb must be 1 to 4096"
                )));
            }
            if settings.max_concurrency == Some(0) {
                return Err(bad("max_concurrency"));
            }
            if settings.retry.is_some_and(|r| r.max_attempts == 0) {
                return Err(bad("retry.max_attempts"));
            }
            for rule in &settings.allowed_hosts {
                crate::model::HostRule::parse(rule)
                    .map_err(|e| ConfigError::Invalid(format!("[plugins.{name}] {e}")))?;
            }
            if settings.http_time_ms == Some(0) || settings.max_response_bytes == Some(0) {
                return Err(bad("http_time_ms and max_response_bytes"));
            }
            for (schedule, cron) in &settings.schedules {
                if cron != crate::model::OFF {
                    crate::model::Cron::parse(cron).map_err(|e| {
                        ConfigError::Invalid(format!("[plugins.{name}] schedule {schedule:?}: {e}"))
                    })?;
                }
            }
            if let Some(key) = settings
                .secrets
                .keys()
                .find(|k| settings.config.contains_key(*k))
            {
                return Err(ConfigError::Invalid(format!(
                    "[plugins.{name}] {key:?} is both a config value and a secret"
                )));
            }
            if let Some(pointer) = &settings.order_key {
                if !pointer.starts_with('/') {
                    return Err(ConfigError::Invalid(format!(
                        "[plugins.{name}] order_key must be a JSON pointer such as \"/customer\", not {pointer:?}"
                    )));
                }
                if settings.ordering != Some(crate::model::Ordering::PerKey) {
                    return Err(ConfigError::Invalid(format!(
                        "[plugins.{name}] order_key needs ordering = \"per-key\""
                    )));
                }
            }
        }
        Ok(())
    }

    /// The resolved limits of plugin `name`.
    pub fn limits_for(&self, name: &str) -> PluginLimits {
        let own = self.plugins.get(name);
        let pick = |f: fn(&PluginSettings) -> Option<u64>, default: u64| {
            own.and_then(f).or(f(&self.defaults)).unwrap_or(default)
        };
        PluginLimits {
            fuel: pick(|s| s.fuel, defaults::FUEL),
            timeout_ms: pick(|s| s.timeout_ms, defaults::TIMEOUT_MS),
            memory_bytes: pick(|s| s.memory_mb, defaults::MEMORY_MB) * 1024 * 1024,
            max_concurrency: own
                .and_then(|s| s.max_concurrency)
                .or(self.defaults.max_concurrency)
                .unwrap_or(defaults::MAX_CONCURRENCY),
            retry: own.and_then(|s| s.retry).or(self.defaults.retry),
            order_by: match own.and_then(|s| s.ordering).or(self.defaults.ordering) {
                Some(crate::model::Ordering::PerKey) => Some(
                    match own
                        .and_then(|s| s.order_key.clone())
                        .or(self.defaults.order_key.clone())
                    {
                        Some(pointer) => crate::model::OrderBy::Body(pointer),
                        None => crate::model::OrderBy::IdempotencyKey,
                    },
                ),
                _ => None,
            },
            config: own.map(|s| s.config.clone()).unwrap_or_default(),
            secrets: BTreeMap::new(),
            schedules: own.map(|s| s.schedules.clone()).unwrap_or_default(),
            reserved: crate::sources::reserved_topics(&self.sources).into(),
            outbound: crate::model::OutboundLimits {
                allowed: own
                    .map_or(&self.defaults.allowed_hosts, |s| &s.allowed_hosts)
                    .iter()
                    .filter_map(|rule| crate::model::HostRule::parse(rule).ok())
                    .collect(),
                max_requests: own
                    .and_then(|s| s.max_http_requests)
                    .or(self.defaults.max_http_requests)
                    .unwrap_or(defaults::MAX_HTTP_REQUESTS),
                time: std::time::Duration::from_millis(pick(
                    |s| s.http_time_ms,
                    pick(|s| s.timeout_ms, defaults::TIMEOUT_MS),
                )),
                max_response_bytes: pick(|s| s.max_response_bytes, defaults::MAX_RESPONSE_BYTES),
            },
        }
    }

    /// The resolved limits of plugin `name`, its secrets included.
    pub fn limits_with_secrets(&self, name: &str, secrets: &ResolvedSecrets) -> PluginLimits {
        let mut limits = self.limits_for(name);
        let own = if self.plugins.contains_key(name) {
            secrets.get(name)
        } else {
            secrets.get("")
        };
        limits.secrets = own.cloned().unwrap_or_default();
        limits
    }

    /// Reads every plugin's secrets from the environment (through `env`);
    /// an unset variable is an error naming it. A plugin with a table of its
    /// own gets its own `secrets`, others get `[defaults]`'s.
    pub fn resolve_secrets(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ResolvedSecrets, ConfigError> {
        let tables = std::iter::once(("", &self.defaults))
            .chain(self.plugins.iter().map(|(n, s)| (n.as_str(), s)));
        let mut resolved = ResolvedSecrets::new();
        for (name, settings) in tables {
            let mut values = BTreeMap::new();
            for (key, var) in &settings.secrets {
                let table = if name.is_empty() { "defaults" } else { name };
                let value = env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "[plugins.{table}] secret {key:?}: the environment variable {var} is not set"
                    ))
                })?;
                values.insert(key.clone(), Secret::new(value));
            }
            resolved.insert(name.to_owned(), values);
        }
        Ok(resolved)
    }

    /// The largest memory cap any plugin may get: the size of the pooling
    /// allocator's memory slots.
    pub fn max_memory_bytes(&self) -> u64 {
        self.plugins
            .keys()
            .map(|name| self.limits_for(name).memory_bytes)
            .chain(std::iter::once(self.limits_for("").memory_bytes))
            .max()
            .unwrap_or(defaults::MEMORY_MB * 1024 * 1024)
    }
}
