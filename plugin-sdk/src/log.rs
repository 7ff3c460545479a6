//! Structured logs, captured into the attempt record and the host's log.
//!
//! ```no_run
//! hookhost_sdk::log::info("charge recorded");
//! hookhost_sdk::log::with_fields(hookhost_sdk::log::Level::Warn, "large charge", &[("cents", "250000")]);
//! ```

use crate::wit::hookhost::plugin::log as wit_log;

pub use crate::wit::hookhost::plugin::types::Level;

/// Logs `message` at `level` with key/value `fields`.
pub fn with_fields(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    wit_log::log(level, message, &fields);
}

/// Logs at `debug` level.
pub fn debug(message: &str) {
    wit_log::log(Level::Debug, message, &[]);
}

/// Logs at `info` level.
pub fn info(message: &str) {
    wit_log::log(Level::Info, message, &[]);
}

/// Logs at `warn` level.
pub fn warn(message: &str) {
    wit_log::log(Level::Warn, message, &[]);
}

/// Logs at `error` level.
pub fn error(message: &str) {
    wit_log::log(Level::Error, message, &[]);
}
