//! Cranelift's incremental compilation cache, on disk: each compiled
//! function kept under a hash of what it was compiled from, so a new
//! version of a plugin compiles only the functions that changed.
//!
//! A Python or JavaScript component carries its interpreter: thousands of
//! functions that are the same from one build of a handler to the next,
//! with the handler's own code in data. Without this cache every save
//! compiled them all again (11.5 to 12.7 s for the examples).
//!
//! # Invariants
//! - An entry is `sha256(value) ‖ value`, written under a name unique to its
//!   writer and renamed into place; an entry whose checksum does not match
//!   (torn by a power cut, altered) is a miss, and compiling again replaces
//!   it. Cranelift itself refuses an entry from another cranelift version.
//! - The cache stays within [`MAX_BYTES`]: when it opens past that, the
//!   entries least recently written go first, down to half of it (in the
//!   background; a removed entry is a miss). It removes only temporary
//!   files older than an hour: a younger one may be an insert under way.

use sha2::Digest as _;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The most the cache keeps on disk, about ten interpreters' worth.
pub const MAX_BYTES: u64 = 512 << 20;

#[derive(Debug)]
pub struct FunctionCache {
    dir: PathBuf,
    /// Makes temporary names unique within the process.
    writes: AtomicU64,
}

impl FunctionCache {
    /// Opens (creating) the cache in `dir`, and trims it to [`MAX_BYTES`]
    /// on a thread of its own: a cache of tens of thousands of entries takes
    /// a while to list, and start-up does not wait for it.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let trimmed = dir.to_owned();
        std::thread::Builder::new()
            .name("hookhost-fn-trim".into())
            .spawn(move || {
                if let Err(e) = trim(&trimmed, MAX_BYTES) {
                    tracing::warn!(error = %e, "cannot trim the function cache");
                }
            })?;
        Ok(Self {
            dir: dir.to_owned(),
            writes: AtomicU64::new(0),
        })
    }

    fn path(&self, key: &[u8]) -> PathBuf {
        self.dir.join(hex::encode(sha2::Sha256::digest(key)))
    }
}

impl wasmtime::CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let mut entry = std::fs::read(self.path(key)).ok()?;
        if entry.len() < 32 {
            return None;
        }
        let value = entry.split_off(32);
        (sha2::Sha256::digest(&value).as_slice() == entry.as_slice()).then_some(Cow::Owned(value))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let path = self.path(key);
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_extension(format!("{}-{n}.tmp", std::process::id()));
        let mut entry = sha2::Sha256::digest(&value).to_vec();
        entry.extend_from_slice(&value);
        let written = std::fs::write(&tmp, &entry).and_then(|()| std::fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.is_ok()
    }
}

/// A temporary file older than this was left by a writer that stopped.
const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes the least recently written entries (and temporary files a
/// stopped writer left) until `dir` holds at most half of `max` bytes, if it holds more
/// than `max`.
fn trim(dir: &Path, max: u64) -> std::io::Result<()> {
    let mut entries = Vec::new();
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        if entry.path().extension().is_some_and(|e| e == "tmp") {
            // A fresh one may be an insert under way in this process.
            let stale = meta.modified()?.elapsed().is_ok_and(|age| age > STALE_TMP);
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
            continue;
        }
        total += meta.len();
        entries.push((meta.modified()?, meta.len(), entry.path()));
    }
    if total <= max {
        return Ok(());
    }
    entries.sort();
    for (_, len, path) in entries {
        if total <= max / 2 {
            break;
        }
        std::fs::remove_file(&path)?;
        total -= len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::CacheStore as _;

    #[test]
    fn an_entry_is_read_back_and_a_damaged_one_is_a_miss() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = FunctionCache::open(dir.path()).expect("open");
        assert!(cache.get(b"f").is_none());
        assert!(cache.insert(b"f", b"compiled".to_vec()));
        assert_eq!(cache.get(b"f").as_deref(), Some(&b"compiled"[..]));
        let path = cache.path(b"f");
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).expect("damage");
        assert!(cache.get(b"f").is_none(), "a damaged entry is a miss");
        assert!(cache.insert(b"f", b"compiled".to_vec()));
        assert_eq!(cache.get(b"f").as_deref(), Some(&b"compiled"[..]));
    }

    /// Trimming runs beside compiles: it leaves a write under way alone and
    /// removes what a stopped writer left.
    #[test]
    fn trimming_keeps_a_write_under_way_and_removes_a_stale_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fresh = dir.path().join("a.1-0.tmp");
        let stale = dir.path().join("b.1-1.tmp");
        std::fs::write(&fresh, b"partial").expect("fresh");
        std::fs::write(&stale, b"partial").expect("stale");
        let old = std::time::SystemTime::now() - 2 * STALE_TMP;
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .and_then(|f| f.set_modified(old))
            .expect("age");
        trim(dir.path(), 0).expect("trim");
        assert!(fresh.exists(), "a write under way was removed");
        assert!(!stale.exists(), "a stale temporary file was kept");
    }

    /// A component of 200 distinct functions, the first multiplying by
    /// `factor`.
    fn component(factor: i32) -> Vec<u8> {
        let funcs: String = (0..200)
            .map(|n| {
                let k = if n == 0 { factor } else { n + 1 };
                format!(
                    "(func (export \"f{n}\") (param i32) (result i32) local.get 0 i32.const {k} i32.mul)"
                )
            })
            .collect();
        wat::parse_str(format!("(component (core module {funcs}))")).expect("wat")
    }

    #[test]
    fn a_changed_component_compiles_only_the_functions_that_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = super::super::Runtime::new(1, 64 << 20, Some(dir.path())).expect("runtime");
        let entries = || {
            std::fs::read_dir(dir.path().join("functions"))
                .expect("function cache")
                .count()
        };
        wasmtime::component::Component::new(&runtime.engine, component(1000)).expect("compile");
        let first = entries();
        assert!(first >= 200, "every function compiled and kept: {first}");
        wasmtime::component::Component::new(&runtime.engine, component(2000)).expect("compile");
        let added = entries() - first;
        assert_eq!(
            added, 1,
            "only the changed function compiled again, of {first}"
        );
    }

    /// Cranelift reuses a compiling context from one function to the next;
    /// one that kept a trampoline's exception table gave the next function
    /// another key, so identical bytes compiled again (vendored fix, see
    /// `vendor/wasmtime-internal-cranelift/HOOKHOST.md`).
    #[test]
    fn the_same_component_in_a_new_engine_compiles_nothing_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let entries = || {
            std::fs::read_dir(dir.path().join("functions"))
                .expect("function cache")
                .count()
        };
        let mut counts = Vec::new();
        for _ in 0..3 {
            let runtime =
                super::super::Runtime::new(1, 64 << 20, Some(dir.path())).expect("runtime");
            wasmtime::component::Component::new(&runtime.engine, component(1000)).expect("compile");
            counts.push(entries());
        }
        assert!(
            counts[0] >= 200,
            "every function compiled and kept: {counts:?}"
        );
        assert!(
            counts.iter().all(|&n| n == counts[0]),
            "the same bytes compiled nothing again: {counts:?}"
        );
    }

    #[test]
    fn a_cache_past_its_bound_keeps_its_newest_half() {
        let dir = tempfile::tempdir().expect("tempdir");
        for n in 0..10u8 {
            let path = dir.path().join(format!("{n:02}"));
            std::fs::write(&path, vec![n; 100]).expect("write");
            let at = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(n.into());
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(at))
                .expect("mtime");
        }
        trim(dir.path(), 1000).expect("trim");
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("dir").count(),
            10,
            "within"
        );
        trim(dir.path(), 900).expect("trim");
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["06", "07", "08", "09"], "the newest, within half");
    }
}
