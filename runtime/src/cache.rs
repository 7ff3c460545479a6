//! The on-disk cache of compiled components, keyed by sha256.
//!
//! For each version it keeps the component's bytes (`<sha>.wasm`, for
//! rollback and pinned replay) and the compiled artifact
//! (`<sha>-<engine tag>.cwasm`, from `Component::serialize`). The engine tag
//! hashes every engine setting that affects compiled code, so an artifact is
//! only ever loaded by an engine that could have produced it.
//!
//! # Invariants
//! - A file is written under a temporary name unique to its writer, synced,
//!   renamed into place, and the directory synced: two compiles of the same
//!   bytes never write one temporary file, and a power cut leaves either the
//!   whole file or none.
//! - An artifact is mapped as code only after its bytes match the sha256 in
//!   its sidecar (`<artifact>.sha256`, written after the artifact): a torn or
//!   altered artifact, or one without a sidecar, is removed and recompiled.

use sha2::Digest as _;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

pub struct ArtifactCache {
    dir: PathBuf,
    engine_tag: String,
}

impl ArtifactCache {
    pub fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // `DefaultHasher::new()` uses fixed keys: the tag is stable across
        // runs of one build, and changes (safely) with a new compiler.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_owned(),
            engine_tag: format!("{:016x}", hasher.finish()),
        })
    }

    fn artifact_path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_tag))
    }

    fn component_path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.wasm"))
    }

    /// The component bytes of version `sha256`, if kept.
    pub fn component_bytes(&self, sha256: &str) -> Option<Vec<u8>> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        std::fs::read(self.component_path(sha256)).ok()
    }

    /// The compiled component of version `sha256`, if cached and loadable.
    pub fn load(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.artifact_path(sha256);
        if !path.exists() {
            return None;
        }
        if let Err(why) = verify(&path) {
            tracing::warn!(file = %path.display(), %why, "damaged cached artifact; recompiling");
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(sum_path(&path));
            return None;
        }
        // SAFETY: `deserialize_file` trusts the file to be an artifact that
        // `Component::serialize` wrote for a compatible engine. This one is:
        // only `save` writes this directory, the bytes match the checksum
        // `save` wrote after them, and the name carries the engine's
        // compatibility tag. Anyone able to write the host's data directory
        // can already change what it runs.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "unusable cached artifact; recompiling");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Keeps the bytes and the compiled artifact of version `sha256`.
    pub fn save(&self, sha256: &str, bytes: &[u8], component: &Component) -> std::io::Result<()> {
        let component_path = self.component_path(sha256);
        if !component_path.exists() {
            write_atomically(&component_path, bytes)?;
        }
        let artifact = component
            .serialize()
            .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
        let path = self.artifact_path(sha256);
        write_atomically(&path, &artifact)?;
        let sum = hex::encode(sha2::Sha256::digest(&artifact));
        write_atomically(&sum_path(&path), sum.as_bytes())
    }
}

/// Where the checksum of the artifact at `path` is kept.
fn sum_path(artifact: &Path) -> PathBuf {
    let mut name = artifact.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// Checks the artifact at `path` against its sidecar checksum.
fn verify(path: &Path) -> Result<(), String> {
    let expected = std::fs::read_to_string(sum_path(path))
        .map_err(|e| format!("no readable checksum: {e}"))?;
    let bytes = std::fs::read(path).map_err(|e| format!("unreadable: {e}"))?;
    let actual = hex::encode(sha2::Sha256::digest(&bytes));
    if actual != expected.trim() {
        return Err(format!("sha256 is {actual}, the checksum says {expected}"));
    }
    Ok(())
}

/// Writes `bytes` to a temporary file of this writer's own in `path`'s
/// directory, syncs it, renames it to `path` and syncs the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".partial-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::ArtifactCache;

    const COMPONENT: &str = r#"(component
        (core module $m (func (export "f") (result i32) i32.const 42))
        (core instance $i (instantiate $m))
        (func (export "f") (result u32) (canon lift (core func $i "f"))))"#;

    fn cached() -> (tempfile::TempDir, wasmtime::Engine, ArtifactCache) {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = wasmtime::Engine::default();
        let cache = ArtifactCache::open(dir.path(), &engine).expect("cache");
        let bytes = wat::parse_str(COMPONENT).expect("wat");
        let component = wasmtime::component::Component::new(&engine, &bytes).expect("compile");
        cache.save("ab", &bytes, &component).expect("save");
        (dir, engine, cache)
    }

    #[test]
    fn an_intact_artifact_loads_from_the_cache() {
        let (_dir, engine, cache) = cached();
        assert!(cache.load(&engine, "ab").is_some());
    }

    #[test]
    fn a_damaged_artifact_is_never_mapped_and_is_removed() {
        let (_dir, engine, cache) = cached();
        let path = cache.artifact_path("ab");
        let mut bytes = std::fs::read(&path).expect("artifact");
        // One flipped bit in the middle, the length unchanged: what a torn
        // page after a power cut looks like.
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        std::fs::write(&path, &bytes).expect("damage");
        assert!(cache.load(&engine, "ab").is_none());
        assert!(!path.exists(), "the damaged artifact is removed");
    }

    #[test]
    fn an_artifact_without_its_checksum_is_not_trusted() {
        let (_dir, engine, cache) = cached();
        std::fs::remove_file(super::sum_path(&cache.artifact_path("ab"))).expect("remove sum");
        assert!(cache.load(&engine, "ab").is_none());
    }

    #[test]
    fn no_temporary_file_is_left_behind() {
        let (dir, _engine, _cache) = cached();
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
        assert_eq!(names.len(), 3, "{names:?}");
    }
}
