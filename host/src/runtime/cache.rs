//! The on-disk cache of compiled components, keyed by sha256.
//!
//! For each version it keeps the component's bytes (`<sha>.wasm`, for
//! rollback and pinned replay) and the compiled artifact
//! (`<sha>-<engine tag>.cwasm`, from `Component::serialize`). The engine tag
//! hashes every engine setting that affects compiled code, so an artifact is
//! only ever loaded by an engine that could have produced it. Files are
//! written to a temporary name and renamed, so a present file is complete.

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
        // SAFETY: `deserialize_file` trusts the file to be an artifact that
        // `Component::serialize` wrote for a compatible engine. This one is:
        // only `save` writes this directory (complete files, renamed into
        // place) and the name carries the engine's compatibility tag. Anyone
        // able to write the host's data directory can already change what it
        // runs.
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
        write_atomically(&self.artifact_path(sha256), &artifact)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
