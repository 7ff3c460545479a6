//! `store`, `[postgres]` and `[retention]`: where the host keeps its data
//! and for how long.

use super::{ConfigError, defaults};
use serde::Deserialize;

/// Which store holds the host's data.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    #[default]
    Sled,
    Postgres,
}

/// `[postgres]`: how to reach the shared database.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Postgres {
    /// The environment variable holding the connection URL
    /// (`postgres://user:password@host:5432/database`): a password stays
    /// out of the configuration file.
    #[serde(default = "defaults::postgres_url_env")]
    pub url_env: String,
    /// Connections per host for each of its two pools: ingest and reads,
    /// and the dispatcher's claims and results.
    #[serde(default = "defaults::postgres_pool")]
    pub pool_size: usize,
    /// How long a host holds a delivery it claimed. When a host dies
    /// mid-attempt, another runs the delivery once the lease runs out; it
    /// must outlast every plugin's `timeout_ms`.
    #[serde(default = "defaults::postgres_lease")]
    pub lease: String,
}

impl Default for Postgres {
    fn default() -> Self {
        Self {
            url_env: defaults::postgres_url_env(),
            pool_size: defaults::postgres_pool(),
            lease: defaults::postgres_lease(),
        }
    }
}

impl Postgres {
    /// The connection settings, the URL read with `env`.
    pub fn options(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<crate::store::PgOptions, ConfigError> {
        let url = env(&self.url_env).filter(|u| !u.is_empty()).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "store = \"postgres\" needs the database URL in ${} (postgres://user:password@host:5432/database)",
                self.url_env
            ))
        })?;
        Ok(crate::store::PgOptions {
            url,
            pool_size: self.pool_size,
            lease: parse_duration(&self.lease)
                .map_err(|e| ConfigError::Invalid(format!("[postgres] lease: {e}")))?,
        })
    }
}

/// `[retention]`: finished events (every delivery succeeded) older than
/// `max_age` are purged in the background with their deliveries, attempts,
/// logs and idempotency keys. Dead letters stay until handled; quarantined
/// bodies stay until released, `quarantine_max_age` or `quarantine_max_bytes`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// `"30d"`, `"12h"`, `"15m"`, `"90s"`, `"500ms"`, or `"off"` to keep
    /// everything.
    #[serde(default = "defaults::max_age")]
    pub max_age: String,
    /// How often the purge looks for old events.
    #[serde(default = "defaults::purge_every")]
    pub check_every: String,
    /// Events examined per batch; after each batch the purge rests as long
    /// as the batch took, so it never takes more than half of one core.
    /// `None`: the store's own ([`crate::store::Store::purge_batch`]).
    #[serde(default)]
    pub batch: Option<usize>,
    /// Quarantined bodies older than this are removed (`"off"`: never).
    #[serde(default = "defaults::quarantine_max_age")]
    pub quarantine_max_age: String,
    /// The newest quarantined bodies are kept up to this many bytes (as
    /// stored); older ones past it are removed, checked every `check_every`.
    #[serde(default = "defaults::quarantine_max_bytes")]
    pub quarantine_max_bytes: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: defaults::max_age(),
            check_every: defaults::purge_every(),
            batch: None,
            quarantine_max_age: defaults::quarantine_max_age(),
            quarantine_max_bytes: defaults::quarantine_max_bytes(),
        }
    }
}

impl Retention {
    /// `max_age` as a duration; `None` when retention is off.
    pub fn max_age(&self) -> Option<std::time::Duration> {
        if self.max_age == "off" {
            return None;
        }
        parse_duration(&self.max_age).ok()
    }

    /// `quarantine_max_age` as a duration; `None` when it is off.
    pub fn quarantine_max_age(&self) -> Option<std::time::Duration> {
        if self.quarantine_max_age == "off" {
            return None;
        }
        parse_duration(&self.quarantine_max_age).ok()
    }

    pub fn check_every(&self) -> std::time::Duration {
        parse_duration(&self.check_every).unwrap_or(std::time::Duration::from_secs(60))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad =
            |field: &str, e: String| ConfigError::Invalid(format!("[retention] {field}: {e}"));
        if self.max_age != "off" {
            parse_duration(&self.max_age).map_err(|e| bad("max_age", e))?;
        }
        parse_duration(&self.check_every).map_err(|e| bad("check_every", e))?;
        if self.quarantine_max_age != "off" {
            parse_duration(&self.quarantine_max_age).map_err(|e| bad("quarantine_max_age", e))?;
        }
        if self.batch == Some(0) {
            return Err(bad("batch", "must be positive".into()));
        }
        Ok(())
    }
}

/// Parses `"30d"`, `"12h"`, `"15m"`, `"90s"` or `"500ms"` (a positive whole
/// number and a unit).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit (ms, s, m, h or d)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a whole number"))?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?}; use ms, s, m, h or d"
            ));
        }
    };
    if n == 0 {
        return Err(format!("{text:?} must be positive"));
    }
    n.checked_mul(ms)
        .map(std::time::Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}
