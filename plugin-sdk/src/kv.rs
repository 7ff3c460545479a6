//! A key-value store private to this plugin.
//!
//! Reads see this attempt's own writes. Writes are committed only when the
//! attempt succeeds, and the commit is serializable: if another attempt changed
//! a key this one read, the host discards this attempt's effects and runs it
//! again, so read-modify-write (a counter, a running total) never loses an
//! update.
//!
//! ```no_run
//! let seen = hookhost_sdk::kv::get_json::<u64>("seen").unwrap().unwrap_or(0);
//! hookhost_sdk::kv::set_json("seen", &(seen + 1)).unwrap();
//! ```

use crate::HandlerError;
use crate::wit::hookhost::plugin::kv;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The bytes stored under `key`, if any.
pub fn get(key: &str) -> Option<Vec<u8>> {
    kv::get(key)
}

/// Stores `value` under `key`.
pub fn set(key: &str, value: &[u8]) {
    kv::set(key, value)
}

/// Removes `key`.
pub fn delete(key: &str) {
    kv::delete(key)
}

/// The JSON value stored under `key`, if any.
///
/// A stored value that does not parse as `T` is an error that retries: the
/// data was written by another version of the handler and may be fixed by the
/// next one.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, HandlerError> {
    match kv::get(key) {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            HandlerError::retry(format!("kv value {key:?} is not the expected json: {e}"))
        }),
    }
}

/// Stores `value` as JSON under `key`.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), HandlerError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| HandlerError::reject(format!("cannot encode kv value {key:?}: {e}")))?;
    kv::set(key, &bytes);
    Ok(())
}

/// Adds `by` to the integer counter under `key` (absent counts as 0) and
/// returns the new value.
pub fn increment(key: &str, by: i64) -> Result<i64, HandlerError> {
    let next = get_json::<i64>(key)?.unwrap_or(0).saturating_add(by);
    set_json(key, &next)?;
    Ok(next)
}
