//! The WebAssembly runtime: the only crate that names wasmtime; the host
//! sees it as `hookhost::runtime`. It reads a plugin's kv through
//! [`KvRead`](crate::model::KvRead) and names nothing else of the store.
//!
//! One [`Runtime`] holds the engine (cranelift, pooling allocator, fuel, epoch
//! interruption driven by a ticker thread) and the linker with every host
//! import. A loaded plugin version is a [`Plugin`] holding an `InstancePre`;
//! each attempt instantiates it in a fresh `Store` bounded by fuel, an epoch
//! deadline and a memory cap (see [`attempt`]).
//!
//! # Invariants
//! - A guest failure (trap, fuel, deadline, memory, an error it returns) is an
//!   [`Outcome`](crate::model::Outcome), never an `Err` of the host.
//! - The sandbox grants nothing: all of WASI p2 is linked so that guests from
//!   any toolchain link, but there are no preopens, no environment, no
//!   network addresses; stdout and stderr are captured, capped.

use hookhost_model as model;

pub mod answers;
mod attempt;
mod cache;
mod fetch;
mod functions;
mod imports;
mod inputs;
pub mod load;
mod outbound;
pub mod outbox;
mod output;
pub mod record;
mod registry;
mod send;
mod world;

pub use attempt::AttemptRun;
pub use load::LoadError;
pub use outbound::Offline;
pub use registry::{LoadFailure, Plugin, Registry};

use crate::model::KvRead;
use crate::model::PluginLimits;
use crate::model::{LogLine, NewEvent};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How often the epoch advances: the granularity of attempt deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Fuel between cooperative yields to the async executor, so a busy guest
/// never holds a tokio worker thread for long (≈ 1–2 ms of tight loop).
const FUEL_YIELD_INTERVAL: u64 = 10_000_000;

/// What `hookhost check` reports about a component.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckReport {
    pub file: String,
    pub sha256: String,
    pub size_bytes: u64,
    /// The contract version the component targets, e.g. `0.2.0`.
    pub contract: &'static str,
    pub manifest: crate::model::Manifest,
}

/// Validates a component file offline: compiles it, checks it against the
/// world, calls `describe()`, and reports its manifest.
pub async fn check_file(
    path: &std::path::Path,
    limits: PluginLimits,
) -> Result<CheckReport, LoadError> {
    let runtime = Runtime::new(1, limits.memory_bytes, None)
        .map_err(|e| LoadError::Compile(format!("cannot build the engine: {e:#}")))?;
    let compiled = load::read_and_compile(&runtime, path)?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let plugin = load::describe(&runtime, &name, compiled, limits).await?;
    Ok(CheckReport {
        file: path.display().to_string(),
        sha256: plugin.version.clone(),
        size_bytes: plugin.size_bytes,
        contract: plugin.contract,
        manifest: plugin.manifest.clone(),
    })
}

impl Runtime {
    /// The largest memory cap a plugin can be given without a restart.
    pub fn max_memory_bytes(&self) -> u64 {
        self.max_memory_bytes
    }

    /// Instance slots no attempt uses that keep memory resident, and the
    /// bytes of linear memory they keep (see [`pooling`]).
    pub fn warm_memory(&self) -> (u32, usize) {
        self.engine
            .pooling_allocator_metrics()
            .map(|m| (m.unused_warm_memories(), m.unused_memory_bytes_resident()))
            .unwrap_or_default()
    }

    /// The component bytes of version `sha256`, if the cache kept them.
    pub fn component_bytes(&self, sha256: &str) -> Option<Vec<u8>> {
        self.cache.as_ref().and_then(|c| c.component_bytes(sha256))
    }
}

/// The engine and linker shared by every plugin.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    /// Compiled artifacts on disk; `None` for offline checks.
    cache: Option<cache::ArtifactCache>,
    /// The pool's memory slot size: no plugin's cap may exceed it.
    max_memory_bytes: u64,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Builds the engine for `config`: its pool has room for `workers`
    /// concurrent attempts plus loads, each memory up to the largest cap.
    /// With `cache_dir`, compiled components are cached there by sha256,
    /// and compiled functions in `functions/` under it, so that a changed
    /// component compiles only the functions that changed.
    pub fn new(
        workers: usize,
        max_memory_bytes: u64,
        cache_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let pool = pooling(workers as u32, max_memory_bytes);
        let mut wasm = wasmtime::Config::new();
        // Determinism where it matters for an exact replay: NaNs have one bit
        // pattern whatever the CPU. No guest runs threads: wasmtime is built
        // without its `threads` feature.
        wasm.wasm_component_model(true)
            .cranelift_nan_canonicalization(true)
            .consume_fuel(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        if let Some(dir) = cache_dir {
            let functions = functions::FunctionCache::open(&dir.join("functions"))?;
            wasm.enable_incremental_compilation(Arc::new(functions))?;
        }
        let engine = Engine::new(&wasm)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        world::add_to_linker(&mut linker)?;
        let cache = cache_dir
            .map(|dir| cache::ArtifactCache::open(dir, &engine))
            .transpose()?;
        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            engine,
            linker,
            cache,
            max_memory_bytes,
            _ticker: ticker,
        })
    }
}

/// The instance pool for `workers` concurrent attempts plus loads (twice
/// the workers, and 16 more), each memory up to `max_memory_bytes`.
///
/// Each instance may hold at most [`output::MAX_MEMORIES`] memories,
/// [`output::MAX_TABLES`] tables and [`output::MAX_CORE_INSTANCES`] core
/// instances, and the pool holds that many per instance slot: however a
/// component is built, it cannot take what another instance's slot needs.
///
/// A slot's first [`KEEP_RESIDENT`] bytes of linear memory are zeroed with
/// `memset` when an instance ends, not returned to the kernel with
/// `madvise`: a small guest (a Rust handler touches about 1 MB) then reuses
/// warm pages. With `madvise`, every attempt paid for the call, the TLB
/// shootdown it sends to the other cores and a page fault per page touched
/// again; under load that was a tenth of the host's CPU (`perf`, see the
/// `docs/performance.md`).
///
/// Where Linux has the `PAGEMAP_SCAN` ioctl (6.7 and later), wasmtime asks
/// it which of those pages the instance wrote and resets only them
/// ([`resets_written_pages_only`]), however scattered (up to 512 runs of
/// pages, `vendor/wasmtime/HOOKHOST.md`): an interpreter's attempt writes a
/// few hundred runs across its heap, and a Python attempt that wrote them
/// back from the image each time paid a third of its time in page faults. Without it, every reset rewrote the
/// first 2 MiB, or the whole memory if smaller: a Rust guest's memory is
/// about 1.1 MB (its 1 MiB stack and its data), so each attempt of a no-op
/// handler zeroed 1.1 MB, and kept it resident, where it writes 16 KB.
///
/// A slot keeps those pages after its instance ends, and its affinity to its
/// plugin: wasmtime gives a plugin its own most recently used slot again.
/// By default wasmtime would also prefer a never-used slot to another
/// plugin's unused one until 100 slots sit unused, so each plugin kept about
/// as many slots as its busiest moment needed, and the resident memory grew
/// with every new peak, up to plugins × workers × 2 MiB. With at most
/// `workers` slots unused (then an unused slot is taken over before a fresh
/// one is touched), the slots ever used, and the memory they keep, stay
/// within about twice the workers: the peak of attempts running at once,
/// plus `workers` unused.
pub fn pooling(workers: u32, max_memory_bytes: u64) -> PoolingAllocationConfig {
    let slots = workers.saturating_mul(2).saturating_add(16);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(slots)
        .max_core_instances_per_component(output::MAX_CORE_INSTANCES as u32)
        .max_memories_per_component(output::MAX_MEMORIES as u32)
        .max_tables_per_component(output::MAX_TABLES as u32)
        .total_core_instances(slots.saturating_mul(output::MAX_CORE_INSTANCES as u32))
        .total_memories(slots.saturating_mul(output::MAX_MEMORIES as u32))
        .total_tables(slots.saturating_mul(output::MAX_TABLES as u32))
        .max_memory_size(max_memory_bytes as usize)
        .max_unused_warm_slots(workers.max(1))
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT_TABLE)
        .pagemap_scan(wasmtime::Enabled::Auto);
    pool
}

/// Whether an ended instance's memory is reset page by page, only the pages
/// it wrote (see [`pooling`]).
pub fn resets_written_pages_only() -> bool {
    PoolingAllocationConfig::is_pagemap_scan_available()
}

/// Bytes of each linear memory kept resident between instances.
pub const KEEP_RESIDENT: usize = 2 << 20;
/// Bytes of each table kept resident between instances.
const KEEP_RESIDENT_TABLE: usize = 64 << 10;

/// Everything a guest call can reach: the WASI context, the memory cap and
/// the attempt's buffered effects.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: output::MemoryCap,
    call: CallState,
    http: wasmtime_wasi_http::WasiHttpCtx,
    outbound: outbound::Outbound,
}

impl wasmtime_wasi_http::WasiHttpView for HostState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl CallState {
    /// `text` with every secret value replaced by `[redacted secret <key>]`.
    fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (key, secret) in &self.secrets {
            let value = secret.expose();
            if !value.is_empty() && text.contains(value) {
                text = text.replace(value, &crate::model::secret_placeholder(key));
            }
        }
        text
    }

    /// The key of the first secret whose value occurs in `bytes`.
    fn secret_in(&self, bytes: &[u8]) -> Option<&str> {
        self.secrets.iter().find_map(|(key, secret)| {
            let value = secret.expose().as_bytes();
            (!value.is_empty() && bytes.windows(value.len()).any(|w| w == value))
                .then_some(key.as_str())
        })
    }
}

/// kv values a shadow run reads in place of the store's; `None` is absent.
pub type KvSnapshot = BTreeMap<String, Option<Vec<u8>>>;

/// A live attempt's view of its delivery's journal.
struct Journaled {
    /// Where this attempt's answers are journaled; `None` for a shadow run,
    /// which only reads the live attempt's.
    store: Option<Arc<dyn crate::model::Journal>>,
    delivery: crate::model::DeliveryId,
    /// What earlier attempts journaled, in call order; read at the
    /// attempt's first call, so a handler that calls nothing reads nothing.
    entries: Option<Vec<crate::model::JournalEntry>>,
    /// Set at the first call that did not match its entry: from then on
    /// every call goes out.
    diverged: bool,
}

impl Journaled {
    /// The journaled entry for call `index` with `digest`, while this
    /// attempt's calls have matched the journal so far.
    async fn answer(&mut self, index: u32, digest: &str) -> Option<&crate::model::JournalEntry> {
        if self.diverged {
            return None;
        }
        if self.entries.is_none() {
            let read = match &self.store {
                Some(store) => store.journaled(self.delivery).await,
                None => Ok(Vec::new()),
            };
            self.entries = Some(read.unwrap_or_else(|e| {
                // Its calls then go out again, with the same keys.
                tracing::warn!(delivery = %self.delivery, error = %e, "cannot read the delivery's journal");
                Vec::new()
            }));
        }
        let entries = self.entries.as_deref().unwrap_or_default();
        match entries
            .iter()
            .position(|e| e.index == index && e.request == digest)
        {
            Some(at) => entries.get(at),
            None => {
                self.diverged = true;
                None
            }
        }
    }
}

/// The per-call state behind the host imports.
struct CallState {
    plugin: String,
    /// The event of the attempt; `None` while loading.
    event_id: Option<String>,
    /// `http.fetch` calls so far: the next call's index.
    fetches: u32,
    /// `outbox.send-after-commit` requests so far: the next one's index.
    queued: u32,
    /// `None` while loading (`describe`): kv reads see nothing, writes and
    /// emits are refused.
    store: Option<Arc<dyn KvRead>>,
    config: BTreeMap<String, String>,
    /// Secret values by key: readable through `config`, redacted from every
    /// record, refused in kv writes and emitted events.
    secrets: Vec<(String, crate::model::Secret)>,
    logs: Vec<LogLine>,
    log_bytes: usize,
    truncated: bool,
    /// Keys read from the store, with the version seen (0 = absent).
    reads: BTreeMap<String, u64>,
    /// The same first reads, with the values seen, for the attempt record.
    read_records: Vec<crate::model::KvRecord>,
    /// For a shadow run: kv values to read instead of the store's (the live
    /// attempt's reads); keys not in it are read from the store.
    snapshot: Option<KvSnapshot>,
    /// Buffered writes; `None` is a delete.
    writes: BTreeMap<String, Option<Vec<u8>>>,
    write_bytes: usize,
    emitted: Vec<NewEvent>,
    /// Emitted bodies' and topics' bytes.
    emit_bytes: usize,
    /// Topics the plugin may not emit (shared with its limits: an attempt
    /// copies no list).
    reserved: Arc<[crate::model::Reserved]>,
    /// A live attempt's delivery journal; `None` offline and while loading.
    journal: Option<Journaled>,
    /// The record's share for effects: what it keeps, and what it leaves out.
    budget: record::Budget,
}

impl HostState {
    /// The state of one call into `plugin`; `reads` are its clocks and
    /// random, `seed` seeds its insecure random.
    fn new(
        plugin: &str,
        limits: &PluginLimits,
        store: Option<Arc<dyn KvRead>>,
        reads: &inputs::Reads,
        seed: u128,
    ) -> (Self, output::Captured, output::Captured) {
        let stdout = output::Captured::new(record::STDIO_SHARE);
        let stderr = output::Captured::new(record::STDIO_SHARE);
        let mut wasi = WasiCtx::builder();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        reads.install(&mut wasi, seed);
        let state = Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: output::MemoryCap::new(limits.memory_bytes as usize),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            outbound: outbound::Outbound::new(
                limits.outbound.clone(),
                std::time::Duration::from_millis(limits.timeout_ms),
            ),
            call: CallState {
                plugin: plugin.to_owned(),
                event_id: None,
                fetches: 0,
                queued: 0,
                store,
                config: limits.config.clone(),
                secrets: limits
                    .secrets
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                logs: Vec::new(),
                log_bytes: 0,
                truncated: false,
                reads: BTreeMap::new(),
                read_records: Vec::new(),
                snapshot: None,
                writes: BTreeMap::new(),
                write_bytes: 0,
                emitted: Vec::new(),
                emit_bytes: 0,
                reserved: limits.reserved.clone(),
                journal: None,
                budget: record::Budget::new(),
            },
        };
        (state, stdout, stderr)
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("hookhost-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{KEEP_RESIDENT, pooling, resets_written_pages_only};
    use wasmtime::component::{Component, Linker};
    use wasmtime::{Config, Engine, InstanceAllocationStrategy, Store};

    /// Pages written by [`scatter`], one in every two.
    const SCATTERED: u32 = 300;

    /// A component whose module, as it starts, writes one byte to every
    /// other page of its memory, `SCATTERED` pages apart from each other,
    /// and traps if one of them already holds that byte: what an earlier
    /// instance wrote is visible to the next.
    fn scatter() -> Vec<u8> {
        let pages = (SCATTERED * 8192 + 4096) / 65536 + 1;
        wat::parse_str(format!(
            r#"(component
                 (core module $m
                   (memory {pages})
                   (data (i32.const 0) "image")
                   (func $start (local $at i32)
                     (local.set $at (i32.const 4096))
                     (loop $next
                       (if (i32.load8_u (local.get $at)) (then unreachable))
                       (i32.store8 (local.get $at) (i32.const 1))
                       (local.set $at (i32.add (local.get $at) (i32.const 8192)))
                       (br_if $next (i32.lt_u (local.get $at) (i32.const {end})))))
                   (start $start))
                 (core instance (instantiate $m)))"#,
            end = SCATTERED * 8192 + 4096,
        ))
        .expect("wat")
    }

    #[test]
    fn an_ended_instance_s_scattered_pages_are_reset_in_place_and_stay_resident() {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(1, 64 << 20)));
        let engine = Engine::new(&config).expect("engine");
        let component = Component::new(&engine, scatter()).expect("compile");
        for round in 0..3 {
            let mut store = Store::new(&engine, ());
            Linker::new(&engine)
                .instantiate(&mut store, &component)
                .unwrap_or_else(|e| {
                    panic!("round {round}: the last instance's writes showed: {e:?}")
                });
        }
        if resets_written_pages_only() {
            // Every written page is reset with a copy and kept, not only the
            // first few dozen regions the kernel reports; the rest would be
            // returned to the kernel and faulted in again by the next attempt.
            let kept = engine
                .pooling_allocator_metrics()
                .expect("pooling")
                .unused_memory_bytes_resident();
            assert!(SCATTERED as usize * 4096 <= KEEP_RESIDENT);
            assert!(
                kept >= SCATTERED as usize * 4096,
                "{kept} bytes kept of {} written",
                SCATTERED * 4096
            );
        }
    }
}
