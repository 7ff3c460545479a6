//! The ingest write path and the plugin registry, measured in one run.
//!
//! - `ingest/one_at_a_time`: one `Store::ingest` after another, so each waits
//!   for a flush of its own: the write path without group commit.
//! - `ingest/256_concurrent`: 256 ingests in flight at once, as under load:
//!   they share transactions (batched ingest) and flushes (group commit).
//!   Reported per event.
//! - `registry/get`, `registry/routes`: the lookups every ingest and every
//!   dispatch make.
//! - `registry/swap`: replacing a loaded plugin (what a hot reload or a
//!   config reload does), readers never blocked.
//!
//! Run: `cargo bench -p hookhost --bench store`. A closing `summary:` line
//! gives the medians and the ratio of the two ingest paths.

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use hookhost::model::NewEvent;
use hookhost::store::{Route, Store};
use std::time::{Duration, Instant};

fn event() -> NewEvent {
    NewEvent {
        topic: "bench.ingest".into(),
        idempotency_key: None,
        headers: Vec::new(),
        content_type: Some("application/json".into()),
        body: vec![b'x'; 1024],
        provenance: hookhost::model::Provenance::Api,
    }
}

/// Ingests `n` events, `concurrent` at a time; returns the time taken.
async fn ingest(store: &Store, routes: &[Route], n: u64, concurrent: usize) -> Duration {
    let start = Instant::now();
    let mut left = n as usize;
    while left > 0 {
        let wave = left.min(concurrent);
        let ingests = (0..wave).map(|_| store.ingest(event(), routes));
        for done in futures::future::join_all(ingests).await {
            done.expect("ingest");
        }
        left -= wave;
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rt.block_on(async { Store::open(&dir.path().join("ingest")).expect("store") });
    let routes = [Route::new("noop")];

    let mut group = c.benchmark_group("ingest");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("one_at_a_time", |b| {
        b.iter_custom(|iters| rt.block_on(ingest(&store, &routes, iters, 1)))
    });
    group.bench_function("256_concurrent", |b| {
        b.iter_custom(|iters| rt.block_on(ingest(&store, &routes, iters.max(1), 256)))
    });
    group.finish();

    // The registry, with the no-op plugin loaded through the real loader.
    let core = common::core(&rt, dir.path(), &[("noop", "test-noop")], |_| {});
    let mut group = c.benchmark_group("registry");
    group.bench_function("get", |b| b.iter(|| core.registry.get("noop")));
    group.bench_function("routes", |b| {
        b.iter(|| core.registry.routes("test.noop", Some("key"), b"{}"))
    });
    group.bench_function("swap", |b| {
        b.iter(|| core.registry.relimit(|name| core.config.limits_for(name)))
    });
    group.finish();

    // Interleaved medians for the summary: 30 rounds of each ingest path.
    let (mut single, mut batched) = (Vec::new(), Vec::new());
    for _ in 0..30 {
        single.push(rt.block_on(ingest(&store, &routes, 64, 1)) / 64);
        batched.push(rt.block_on(ingest(&store, &routes, 2048, 256)) / 2048);
    }
    single.sort();
    batched.sort();
    let (single, batched) = (single[single.len() / 2], batched[batched.len() / 2]);
    #[allow(clippy::print_stdout)]
    {
        println!(
            "summary: ingest one at a time {:.1} µs/event ({:.0}/s), 256 concurrent {:.1} µs/event ({:.0}/s): {:.1}× faster with batching and group commit",
            single.as_secs_f64() * 1e6,
            1.0 / single.as_secs_f64(),
            batched.as_secs_f64() * 1e6,
            1.0 / batched.as_secs_f64(),
            single.as_secs_f64() / batched.as_secs_f64(),
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
