//! The sandbox's bounds that are not wasmtime settings: captured stdout and
//! stderr (capped, never failing the guest) and the memory cap.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// A guest output stream kept in memory, up to a cap. Writes past the cap
/// are dropped and the stream marked truncated; the guest never sees an
/// error (a failing `println!` would panic it).
#[derive(Clone)]
pub struct Captured {
    inner: Arc<Mutex<Buffer>>,
}

struct Buffer {
    bytes: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Captured {
    pub fn new(cap: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Buffer {
                bytes: Vec::new(),
                cap,
                truncated: false,
            })),
        }
    }

    /// The text captured so far (lossy UTF-8) and whether it was cut.
    pub fn take(&self) -> (String, bool) {
        match self.inner.lock() {
            Ok(mut b) => {
                let bytes = std::mem::take(&mut b.bytes);
                (String::from_utf8_lossy(&bytes).into_owned(), b.truncated)
            }
            Err(_) => (String::new(), true),
        }
    }

    fn append(&self, data: &[u8]) {
        if let Ok(mut b) = self.inner.lock() {
            let room = b.cap.saturating_sub(b.bytes.len());
            if data.len() > room {
                b.truncated = true;
            }
            let n = data.len().min(room);
            b.bytes.extend_from_slice(&data[..n]);
        }
    }
}

impl IsTerminal for Captured {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Captured {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for Captured {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Caps what one attempt's instance holds, all its core instances
/// together: the bytes of every linear memory, the elements of every table,
/// and how many memories, tables and core instances it creates. A component
/// that instantiates a module with a memory many times gets one cap in all,
/// not one per copy. Remembers whether the guest hit the byte cap (so its
/// resulting trap is reported as `memory`).
pub struct MemoryCap {
    limit: usize,
    /// Bytes of all linear memories now.
    total: usize,
    /// Elements of all tables now.
    elements: usize,
    pub peak: usize,
    pub exceeded: bool,
}

impl MemoryCap {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            total: 0,
            elements: 0,
            peak: 0,
            exceeded: false,
        }
    }
}

/// Table elements per instance, all tables together: tables hold function
/// references, and no honest handler needs more.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;
/// Linear memories per instance. Every guest we build has one (Rust,
/// Python and JavaScript alike); the pool holds this many per instance slot,
/// so a component at the limit cannot take a neighbour's memories.
pub const MAX_MEMORIES: usize = 4;
/// Tables per instance (our guests have two); the pool holds this many per
/// instance slot.
pub const MAX_TABLES: usize = 8;
/// Core instances per component instance (a Python guest links fourteen:
/// its interpreter, libc, shims and adapters); the pool holds this many per
/// instance slot.
pub const MAX_CORE_INSTANCES: usize = 32;

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Each memory reports its own growth: the cap is on their sum.
        let total = self.total.saturating_sub(current).saturating_add(desired);
        if total > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        self.total = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let elements = self
            .elements
            .saturating_sub(current)
            .saturating_add(desired);
        if elements > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.elements = elements;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_MEMORIES, MemoryCap};
    use wasmtime::component::{Component, Linker};
    use wasmtime::{Config, Engine, InstanceAllocationStrategy, Store};

    const MIB: usize = 1 << 20;

    /// The host's engine settings: the pooling allocator with its limits.
    fn engine() -> Engine {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(super::super::pooling(
                2,
                64 * MIB as u64,
            )));
        Engine::new(&config).expect("engine")
    }

    /// A component that instantiates a module with a memory of `pages`
    /// 64 KiB pages `copies` times.
    fn copies_of_a_memory(copies: usize, pages: u32) -> Vec<u8> {
        let instances: String = (0..copies)
            .map(|i| format!("(core instance $i{i} (instantiate $m))\n"))
            .collect();
        wat::parse_str(format!(
            "(component (core module $m (memory (export \"mem\") {pages})) {instances})"
        ))
        .expect("wat")
    }

    fn instantiate(engine: &Engine, bytes: &[u8], cap: usize) -> (bool, MemoryCap) {
        let mut store = Store::new(engine, MemoryCap::new(cap));
        store.limiter(|cap| cap);
        let ok = Component::new(engine, bytes)
            .and_then(|c| Linker::new(engine).instantiate(&mut store, &c))
            .is_ok();
        (ok, store.into_data())
    }

    #[test]
    fn copies_of_a_memory_share_one_cap() {
        let engine = engine();
        // Four copies of 2 MiB under a 4 MiB cap: 8 MiB in all.
        let (ok, cap) = instantiate(&engine, &copies_of_a_memory(4, 32), 4 * MIB);
        assert!(!ok, "four 2 MiB memories passed a 4 MiB cap");
        assert!(cap.exceeded, "reported as the memory cap");
        assert!(cap.peak <= 4 * MIB, "{}", cap.peak);
        // Within the cap, the same shape runs.
        let (ok, cap) = instantiate(&engine, &copies_of_a_memory(4, 16), 4 * MIB);
        assert!(ok);
        assert_eq!(cap.peak, 4 * MIB);
    }

    #[test]
    fn more_memories_than_the_limit_fail_to_instantiate() {
        let engine = engine();
        let (ok, _) = instantiate(&engine, &copies_of_a_memory(MAX_MEMORIES + 1, 1), 64 * MIB);
        assert!(!ok, "{} memories in one instance", MAX_MEMORIES + 1);
        let (ok, _) = instantiate(&engine, &copies_of_a_memory(MAX_MEMORIES, 1), 64 * MIB);
        assert!(ok);
    }

    #[test]
    fn a_hostile_component_cannot_drain_the_pool_for_a_neighbour() {
        let engine = engine();
        // pooling(2, …) has 20 instance slots and 4 memories per slot.
        let slots = 20;
        let neighbour = copies_of_a_memory(1, 1);
        // One component asking for every memory of the pool is refused.
        let greedy = copies_of_a_memory(slots * MAX_MEMORIES, 1);
        let mut held = Vec::new();
        let mut store = Store::new(&engine, MemoryCap::new(64 * MIB));
        store.limiter(|cap| cap);
        let attempt = Component::new(&engine, &greedy)
            .and_then(|c| Linker::new(&engine).instantiate(&mut store, &c));
        assert!(attempt.is_err(), "one instance took the whole pool");
        held.push(store);
        // Components at the limit, alive in every slot but one, leave the
        // last slot its memory.
        let at_limit = copies_of_a_memory(MAX_MEMORIES, 1);
        for _ in 0..slots - 1 {
            let mut store = Store::new(&engine, MemoryCap::new(64 * MIB));
            store.limiter(|cap| cap);
            let component = Component::new(&engine, &at_limit).expect("compile");
            Linker::new(&engine)
                .instantiate(&mut store, &component)
                .expect("an instance at the limit runs");
            held.push(store);
        }
        let (ok, _) = instantiate(&engine, &neighbour, 64 * MIB);
        assert!(ok, "the neighbour was refused");
    }
}
