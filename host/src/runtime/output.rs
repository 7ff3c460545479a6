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

/// Caps each linear memory of an instance and remembers whether the guest
/// hit the cap (so its resulting trap is reported as `memory`).
pub struct MemoryCap {
    limit: usize,
    pub peak: usize,
    pub exceeded: bool,
}

impl MemoryCap {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            peak: 0,
            exceeded: false,
        }
    }
}

/// Tables hold function references; no honest handler needs more.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
