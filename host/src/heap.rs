//! The heap: jemalloc, set up for a long-running server.
//!
//! A binary that runs a host calls [`use_jemalloc!`](crate::use_jemalloc) once
//! at its top level; it makes jemalloc the global allocator with the
//! settings in [`CONF`]. (Only a binary can choose the global allocator, so
//! the library's own tests run on the system's malloc.)
//!
//! Why not glibc's malloc: under ingest it was a fifth of the process's CPU
//! (splitting, freeing and merging chunks, and threads waking each other on
//! its arena locks). With jemalloc, ingest alone acked about a third more
//! events, and handling beside ingest ran about 70 % faster (`docs/performance.md`).

pub use tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when the process first allocates.
///
/// - `background_thread:true` with `dirty_decay_ms:1000` and
///   `muzzy_decay_ms:0`: a background thread hands freed pages back to the
///   system about a second after they were last used, even while the host is
///   idle. Without it, a host that compiled ten plugins at start kept the
///   compiler's freed memory resident: 99.6 MB idle instead of 63.6.
/// - `narenas:2`: threads share two arenas, so memory one thread frees can
///   serve the others (the runtime's workers, the blocking pool and sled's
///   threads), as the cap on glibc's arenas did. Not measured apart: idle,
///   eight arenas kept about the same (53.1 MB against 53.3).
/// - `tcache_max:8192`: each thread caches freed blocks of up to 8 KiB
///   (hyper's read buffer is one), not up to 32 KiB: idle with ten plugins,
///   the threads that compiled them kept 61.5 MB resident with 32 KiB and
///   57.0-58.3 MB with 8 KiB. 1 KiB (51.6-53.3 MB) made axum's own ceiling,
///   measured in the same process, about a fifth slower.
pub const CONF: &[u8] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:2,tcache_max:8192\0";

/// Makes jemalloc, with [`heap::CONF`](crate::heap::CONF), the global
/// allocator. Call it once, at a binary's top level.
#[macro_export]
macro_rules! use_jemalloc {
    () => {
        #[global_allocator]
        static ALLOCATOR: $crate::heap::Jemalloc = $crate::heap::Jemalloc;

        /// jemalloc reads its options from this symbol when it starts.
        #[allow(unsafe_code, non_upper_case_globals)]
        #[unsafe(export_name = "_rjem_malloc_conf")]
        static malloc_conf: &u8 = &$crate::heap::CONF[0];
    };
}
