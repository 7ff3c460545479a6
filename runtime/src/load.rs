//! Turning bytes into a loaded plugin: compile, link-check, `describe()`.
//!
//! Compilation is CPU-heavy (tens of ms for a small Rust guest, seconds for
//! a Python one), so [`read_and_compile`] is blocking and callers run it off
//! the async threads. Every failure is a [`LoadError`] naming the step.

use super::world::Pre;
use super::{HostState, Plugin, Runtime};
use crate::model::PluginLimits;
use crate::model::{Manifest, now_ms};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::Component;

/// Why a file could not become a plugin.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LoadError {
    #[error("cannot read file: {0}")]
    Read(String),
    #[error("not a webassembly component: {0}")]
    NotAComponent(String),
    #[error("invalid component: {0}")]
    Compile(String),
    #[error("component does not fit the hookhost:plugin/handler world: {0}")]
    World(String),
    #[error("describe() failed: {0}")]
    Describe(String),
    #[error("invalid manifest: {0}")]
    Manifest(String),
}

/// A compiled, link-checked component awaiting `describe()`.
pub struct Compiled {
    pub(super) pre: Pre,
    pub sha256: String,
    pub size_bytes: u64,
    /// True when the compiled code came from the artifact cache.
    pub from_cache: bool,
}

/// Fuel and time for `describe()`, which must be quick.
const DESCRIBE_FUEL: u64 = 100_000_000;
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads and compiles a component file. Blocking: run it off the async
/// threads.
pub fn read_and_compile(runtime: &Runtime, path: &Path) -> Result<Compiled, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::Read(e.to_string()))?;
    compile(runtime, &bytes)
}

/// Compiles component bytes and checks them against the host's imports and
/// the world's exports. Blocking.
pub fn compile(runtime: &Runtime, bytes: &[u8]) -> Result<Compiled, LoadError> {
    check_header(bytes)?;
    let sha256 = sha256_hex(bytes);
    let cached = runtime
        .cache
        .as_ref()
        .and_then(|c| c.load(&runtime.engine, &sha256));
    let from_cache = cached.is_some();
    let component = match cached {
        Some(component) => component,
        None => {
            let compiled = Component::new(&runtime.engine, bytes)
                .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
            // Served from the cached file once saved: its code is then a
            // file mapping the kernel can share and page out, not heap.
            match &runtime.cache {
                Some(cache) => match cache.save(&sha256, bytes, &compiled) {
                    Ok(()) => cache.load(&runtime.engine, &sha256).unwrap_or(compiled),
                    Err(e) => {
                        tracing::warn!(version = %sha256, error = %e, "cannot cache the compiled component");
                        compiled
                    }
                },
                None => compiled,
            }
        }
    };
    let instance_pre = runtime
        .linker
        .instantiate_pre(&component)
        .map_err(|e| LoadError::World(format!("{e:#}")))?;
    let pre = Pre::new(instance_pre).map_err(|e| LoadError::World(format!("{e:#}")))?;
    Ok(Compiled {
        pre,
        sha256,
        size_bytes: bytes.len() as u64,
        from_cache,
    })
}

/// A version id: the sha256 of a component's bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Tells a core module or random bytes from a component before compiling.
fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8; 4] = b"\0asm";
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(LoadError::NotAComponent(format!(
            "{} bytes without the wasm magic number (truncated or not wasm)",
            bytes.len()
        )));
    }
    // Bytes 4..8: version and layer; layer 1 is a component, 0 a core module.
    if bytes[6..8] == [0, 0] {
        return Err(LoadError::NotAComponent(
            "this is a core wasm module; build for wasm32-wasip2 or wrap it with `wasm-tools component new`"
                .into(),
        ));
    }
    Ok(())
}

/// Calls `describe()` in a fresh sandbox and builds the plugin.
pub async fn describe(
    runtime: &Runtime,
    name: &str,
    compiled: Compiled,
    limits: PluginLimits,
) -> Result<Plugin, LoadError> {
    let (state, _stdout, _stderr) = HostState::new(name, &limits, None, &Default::default(), 0);
    let mut store = wasmtime::Store::new(&runtime.engine, state);
    store.limiter(|s| &mut s.limiter);
    let fail = |e: wasmtime::Error| LoadError::Describe(format!("{e:#}"));
    store
        .set_fuel(DESCRIBE_FUEL.min(limits.fuel))
        .map_err(fail)?;
    store
        .fuel_async_yield_interval(Some(super::FUEL_YIELD_INTERVAL))
        .map_err(fail)?;
    store.set_epoch_deadline(super::attempt::deadline_ticks(
        DESCRIBE_TIMEOUT.as_millis() as u64
    ));
    store.epoch_deadline_trap();
    let manifest = compiled.pre.describe(&mut store).await.map_err(fail)?;
    let manifest = validate_manifest(manifest)?;
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_concurrency));
    Ok(Plugin {
        name: name.to_owned(),
        version: compiled.sha256,
        size_bytes: compiled.size_bytes,
        from_cache: compiled.from_cache,
        manifest,
        limits,
        loaded_at_ms: now_ms(),
        contract: compiled.pre.contract(),
        pre: compiled.pre,
        permits,
    })
}

/// Subscriptions one manifest may declare.
const MAX_SUBSCRIPTIONS: usize = 64;
/// Schedules one manifest may declare.
const MAX_SCHEDULES: usize = 16;

/// Checks a manifest as `describe()` returned it.
fn validate_manifest(m: Manifest) -> Result<Manifest, LoadError> {
    if m.subscriptions.len() > MAX_SUBSCRIPTIONS {
        return Err(LoadError::Manifest(format!(
            "{} subscriptions, over the limit of {MAX_SUBSCRIPTIONS}",
            m.subscriptions.len()
        )));
    }
    if m.schedules.len() > MAX_SCHEDULES {
        return Err(LoadError::Manifest(format!(
            "{} schedules, over the limit of {MAX_SCHEDULES}",
            m.schedules.len()
        )));
    }
    for pattern in &m.subscriptions {
        let literal = pattern.replace('*', "x");
        crate::model::validate_topic(&literal)
            .map_err(|e| LoadError::Manifest(format!("subscription {pattern:?}: {e}")))?;
    }
    for s in &m.schedules {
        crate::model::validate_topic(&format!("schedule.{}", s.name))
            .map_err(|e| LoadError::Manifest(format!("schedule name {:?}: {e}", s.name)))?;
        crate::model::Cron::parse(&s.cron)
            .map_err(|e| LoadError::Manifest(format!("schedule {:?}: {e}", s.name)))?;
    }
    if let Some(r) = &m.retry
        && r.max_attempts == 0
    {
        return Err(LoadError::Manifest(
            "retry.max-attempts must be at least 1".into(),
        ));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_tell_modules_and_garbage_from_components() {
        assert!(matches!(
            check_header(b"hello world"),
            Err(LoadError::NotAComponent(_))
        ));
        let core_module = b"\0asm\x01\x00\x00\x00";
        assert!(
            matches!(check_header(core_module), Err(LoadError::NotAComponent(m)) if m.contains("core wasm module"))
        );
        let component = b"\0asm\x0d\x00\x01\x00";
        assert_eq!(check_header(component), Ok(()));
    }

    #[test]
    fn a_manifest_declares_a_bounded_number_of_schedules_and_subscriptions() {
        use crate::model::Schedule;
        let manifest = |subscriptions: usize, schedules: usize| Manifest {
            subscriptions: (0..subscriptions).map(|i| format!("t.{i}")).collect(),
            retry: None,
            schedules: (0..schedules)
                .map(|i| Schedule {
                    name: format!("s{i}"),
                    cron: "0 * * * *".into(),
                })
                .collect(),
        };
        assert!(validate_manifest(manifest(MAX_SUBSCRIPTIONS, MAX_SCHEDULES)).is_ok());
        let err = validate_manifest(manifest(1, MAX_SCHEDULES + 1)).expect_err("refused");
        assert!(err.to_string().contains("17 schedules"), "{err}");
        let err = validate_manifest(manifest(MAX_SUBSCRIPTIONS + 1, 0)).expect_err("refused");
        assert!(err.to_string().contains("65 subscriptions"), "{err}");
    }
}
