//! Plugins: what is loaded, what failed, versions, candidates.

use hookhost_model::{PluginVersion, RetryPolicy};
use serde::{Deserialize, Serialize};

/// `GET /plugins`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginList {
    pub plugins: Vec<PluginInfo>,
    /// The last failed load per plugin name.
    pub errors: Vec<NamedLoadFailure>,
    /// Known plugins still loading after a start; events reach them already.
    pub loading: Vec<String>,
}

/// A plugin: loaded (with its version, limits and schedules), or known only
/// by its history or a failed load (`loaded: false`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub loaded: bool,
    /// Set for a plugin not loaded: whether it is loading now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loading: Option<bool>,
    #[serde(flatten)]
    pub serving: Option<Serving>,
    pub last_error: Option<LoadFailure>,
    /// `GET /plugins/{name}` only: every version loaded, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<PluginVersion>>,
}

/// What a loaded plugin runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Serving {
    /// The component's sha256.
    pub version: String,
    /// The contract version it targets, e.g. `0.2.0`.
    pub contract: String,
    pub size_bytes: u64,
    pub from_cache: bool,
    pub loaded_at_ms: u64,
    pub subscriptions: Vec<String>,
    pub schedules: Vec<ScheduleInfo>,
    pub retry: RetryPolicy,
    pub limits: LimitsInfo,
    /// Attempts running now.
    pub running: usize,
}

/// A schedule in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleInfo {
    pub name: String,
    pub cron: String,
    /// `plugin` (its manifest) or `config` (the operator's override).
    pub from: String,
    pub next_at_ms: Option<u64>,
}

/// A plugin's limits per attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsInfo {
    pub fuel: u64,
    pub timeout_ms: u64,
    pub memory_bytes: u64,
    pub max_concurrency: usize,
}

/// A file that failed to load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadFailure {
    pub file: String,
    pub error: String,
    pub at_ms: u64,
}

/// A failed load with the plugin's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedLoadFailure {
    pub name: String,
    pub file: String,
    pub error: String,
    pub at_ms: u64,
}

/// `POST /plugins/{name}/rollback`: to `sha256`, or unset for the version
/// before the current one. Answers the [`PluginInfo`] now serving.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    pub sha256: Option<String>,
}

/// `POST /plugins/{name}/candidates`: a version stored for shadow runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub plugin: String,
    pub version: String,
    pub size_bytes: u64,
    pub subscriptions: Vec<String>,
}

/// `POST /config/reload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigReloaded {
    pub reloaded: bool,
    /// Loaded plugins whose settings changed.
    pub plugins_changed: usize,
}
