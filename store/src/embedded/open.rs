//! Opening sled, and its errors in words.

use super::StoreError;
use std::path::Path;

/// How long [`SledStore::open`] waits for a previous holder of the store's
/// lock to let go: sled releases it from background threads shortly after
/// the last handle is dropped, so a quick restart in the same process (or
/// right after the old process exits) may find it still held.
pub(super) const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub(super) fn open_db(dir: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let give_up = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new()
            .path(dir)
            .flush_every_ms(Some(200))
            .cache_capacity(cache_bytes)
            .open()
        {
            Ok(db) => return Ok(db),
            // sled reports a held lock only as text in an I/O error.
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < give_up =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A sled error in words: an I/O error as the OS says it ("No space left
/// on device (os error 28)"), not sled's nested debug form.
pub(crate) fn describe(e: &sled::Error) -> String {
    fn io(e: &std::io::Error) -> String {
        if let Some(code) = e.raw_os_error() {
            return std::io::Error::from_raw_os_error(code).to_string();
        }
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<std::io::Error>())
        {
            Some(inner) => io(inner),
            None => e.to_string(),
        }
    }
    match e {
        sled::Error::Io(e) => io(e),
        other => other.to_string(),
    }
}
