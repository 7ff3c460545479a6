//! Shadow runs: a candidate version beside the live one, on recorded events.

use hookhost_model::{EffectsRecord, Outcome};
use serde::{Deserialize, Serialize};

/// `POST /plugins/{name}/shadow`: run version `version` (a sha256 the
/// plugin had, or a candidate's) on the recorded events the plugin handled
/// that match the filter, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowRequest {
    pub version: String,
    /// Topic pattern (`shop.order.*`); unset: every topic the plugin handled.
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub since_ms: Option<u64>,
    #[serde(default)]
    pub until_ms: Option<u64>,
    /// At most this many events (≤ 1000, default 100).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowReport {
    pub plugin: String,
    pub candidate: String,
    /// Events run.
    pub events: usize,
    /// Runs whose outcome and effects matched the live attempt's.
    pub same: usize,
    pub different: usize,
    /// True when more events matched than the limit allowed.
    pub capped: bool,
    pub results: Vec<ShadowResult>,
}

/// One event: the live attempt beside the candidate's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowResult {
    pub event: String,
    pub topic: String,
    pub delivery: String,
    pub live: ShadowSide,
    pub candidate: ShadowSide,
    /// What differs: `outcome`, `kv_writes`, `emitted`. Empty: the same.
    pub differences: Vec<String>,
    /// False when the live attempt was recorded without its effects (by an
    /// older host): only outcomes were compared.
    pub effects_compared: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowSide {
    pub version: String,
    pub outcome: Outcome,
    pub effects: Option<EffectsRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_consumed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<hookhost_model::LogLine>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stdout: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr: String,
    /// Outbound calls: the live attempt's as made; the candidate's all
    /// refused, as a shadow run never reaches the network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<hookhost_model::HttpCall>,
}
