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

/// The configured value for `key`; unset, the attempt is retried (the
/// operator can set it, and the event is not lost).
///
/// ```no_run
/// # fn handle() -> Result<(), hookhost_sdk::HandlerError> {
/// let url = hookhost_sdk::config::require("notify_url")?;
/// # Ok(()) }
/// ```
pub fn require(key: &str) -> Result<String, crate::HandlerError> {
    get(key).ok_or_else(|| {
        crate::HandlerError::retry(format!("config {key:?} is not set for this plugin"))
    })
}
