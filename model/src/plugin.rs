//! Plugins as they describe themselves, and the versions loaded.

use serde::{Deserialize, Serialize};

use crate::delivery::RetryPolicy;
use crate::topics::topic_matches;

/// What a plugin says about itself in `describe()`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Topic patterns (`*` = any run of characters, dots included).
    pub subscriptions: Vec<String>,
    pub retry: Option<RetryPolicy>,
    pub schedules: Vec<Schedule>,
}

impl Manifest {
    /// Whether any subscription matches `topic`.
    pub fn subscribes_to(&self, topic: &str) -> bool {
        self.subscriptions.iter().any(|p| topic_matches(p, topic))
    }
}

/// One version of a plugin that was loaded, for history and rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginVersion {
    pub sha256: String,
    pub loaded_at_ms: u64,
    pub size_bytes: u64,
    pub manifest: Manifest,
    /// What installed it: `file` (the plugins directory) or `rollback`.
    pub source: String,
}

/// A clock-driven event a plugin asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub name: String,
    pub cron: String,
}
