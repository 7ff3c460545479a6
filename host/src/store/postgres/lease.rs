//! The lease a claim holds its delivery for.

use super::PgStore;
use std::time::Duration;

impl PgStore {
    /// How long a claim holds its delivery.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }
}
