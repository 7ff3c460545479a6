//! What a handler tells the host about itself.

use crate::wit;

/// A handler's subscriptions, retry policy and schedules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    subscriptions: Vec<String>,
    retry: Option<RetryPolicy>,
    schedules: Vec<Schedule>,
}

/// Exponential backoff with full jitter: the wait before attempt `n + 1` is
/// random in `0 ..= min(initial_backoff_ms * 2^(n-1), max_backoff_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Backoff bound before the second attempt.
    pub initial_backoff_ms: u64,
    /// Upper bound on any one backoff.
    pub max_backoff_ms: u64,
}

impl RetryPolicy {
    /// One attempt and no retry: a failure goes straight to the dead letters.
    pub const fn never() -> Self {
        Self {
            max_attempts: 1,
            initial_backoff_ms: 0,
            max_backoff_ms: 0,
        }
    }
}

/// A clock-driven event with topic `schedule.<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Name of the schedule; the event topic is `schedule.<name>`.
    pub name: String,
    /// A cron expression.
    pub cron: String,
}

impl Manifest {
    /// A manifest with no subscriptions and the host's default retry policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Subscribes to a topic pattern: `*` matches any run of characters, dots
    /// included; a pattern without `*` matches exactly.
    pub fn subscribe(mut self, pattern: impl Into<String>) -> Self {
        self.subscriptions.push(pattern.into());
        self
    }

    /// Sets the handler's retry policy (the operator may override it).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Asks for an event `schedule.<name>` at each tick of `cron`.
    pub fn schedule(mut self, name: impl Into<String>, cron: impl Into<String>) -> Self {
        self.schedules.push(Schedule {
            name: name.into(),
            cron: cron.into(),
        });
        self
    }

    pub(crate) fn into_wit(self) -> wit::Manifest {
        wit::Manifest {
            subscriptions: self.subscriptions,
            retry: self
                .retry
                .map(|r| wit::hookhost::plugin::types::RetryPolicy {
                    max_attempts: r.max_attempts,
                    initial_backoff_ms: r.initial_backoff_ms,
                    max_backoff_ms: r.max_backoff_ms,
                }),
            schedules: self
                .schedules
                .into_iter()
                .map(|s| wit::hookhost::plugin::types::Schedule {
                    name: s.name,
                    cron: s.cron,
                })
                .collect(),
        }
    }
}
