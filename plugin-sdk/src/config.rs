//! Operator configuration from `[plugins.<name>.config]` in `hookhost.toml`.
//!
//! ```no_run
//! let threshold: i64 = hookhost_sdk::config::get("large_payment_cents")
//!     .and_then(|v| v.parse().ok())
//!     .unwrap_or(100_000);
//! ```

use crate::wit::hookhost::plugin::config as wit_config;

/// The configured value for `key`, if any.
pub fn get(key: &str) -> Option<String> {
    wit_config::get(key)
}
