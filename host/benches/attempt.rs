//! Per-attempt host overhead against raw wasmtime, measured in one run.
//!
//! - `raw`: what wasmtime alone costs for the same component: a fresh `Store`
//!   (same engine settings: pooling allocator, fuel, epoch deadline, NaN
//!   canonicalisation),
//!   instantiate from an `InstancePre`, call `handle`. Host imports are no-ops.
//! - `host_attempt_record_built`: what the host's runtime does per attempt:
//!   the sandbox (WASI context with captured output, memory cap, fuel,
//!   deadline), instantiate, call, and the attempt record built in memory.
//! - `host_attempt_record_committed`: the same plus the durable part: the
//!   record and the delivery's new state committed in one sled transaction.
//!
//! Run: `cargo bench -p hookhost --bench attempt`. Criterion prints each
//! case's estimates; a closing `summary:` line gives medians of interleaved
//! samples and the ratios against raw.

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use hookhost::model::Outcome;
use hookhost::store::{Finish, Next};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, InstanceAllocationStrategy};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod raw {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "handler",
        imports: { default: trappable },
        exports: { default: async },
    });
}

use raw::hookhost::plugin::{config, emit, http, kv, log, outbox, types};

struct RawState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for RawState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for RawState {}
impl log::Host for RawState {
    fn log(
        &mut self,
        _: types::Level,
        _: String,
        _: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        Ok(())
    }
}
impl kv::Host for RawState {
    fn get(&mut self, _: String) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn set(&mut self, _: String, _: Vec<u8>) -> wasmtime::Result<()> {
        Ok(())
    }
    fn delete(&mut self, _: String) -> wasmtime::Result<()> {
        Ok(())
    }
}
impl emit::Host for RawState {
    fn emit(&mut self, _: String, _: Vec<u8>, _: Option<String>) -> wasmtime::Result<()> {
        Ok(())
    }
}
impl config::Host for RawState {
    fn get(&mut self, _: String) -> wasmtime::Result<Option<String>> {
        Ok(None)
    }
}
impl http::Host for RawState {
    fn fetch(&mut self, _: http::Request) -> wasmtime::Result<Result<http::Response, http::Error>> {
        Ok(Err(http::Error::Denied(
            "no network in the benchmark".into(),
        )))
    }
}

impl outbox::Host for RawState {
    fn send_after_commit(&mut self, _: http::Request) -> wasmtime::Result<Result<(), http::Error>> {
        Ok(Err(http::Error::Denied(
            "no network in the benchmark".into(),
        )))
    }
}

fn noop_component() -> PathBuf {
    match xtask::build_plugins(&["test-noop"]) {
        Ok(paths) => paths[0].clone(),
        Err(e) => panic!("cannot build the benchmark plugin: {e}"),
    }
}

fn raw_event() -> types::Event {
    types::Event {
        id: "01JBENCH".into(),
        topic: "test.noop".into(),
        idempotency_key: None,
        received_at_ms: 0,
        attempt: 1,
        headers: Vec::new(),
        content_type: Some("application/json".into()),
        body: b"{\"amount\": 100}".to_vec(),
        provenance: Some(types::Provenance::Api),
    }
}

fn raw_engine() -> Engine {
    // The host's pool, for the host's worker count (64).
    let pool = hookhost::runtime::pooling(64, 64 << 20);
    let mut config = wasmtime::Config::new();
    config
        .wasm_component_model(true)
        .cranelift_nan_canonicalization(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).expect("engine")
}

fn bench(c: &mut Criterion) {
    let component_path = noop_component();
    let rt = tokio::runtime::Runtime::new().expect("tokio");

    // Raw wasmtime.
    let engine = raw_engine();
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi");
    raw::Handler::add_to_linker::<RawState, HasSelf<RawState>>(&mut linker, |s| s)
        .expect("imports");
    let component =
        wasmtime::component::Component::from_file(&engine, &component_path).expect("compile");
    let pre =
        raw::HandlerPre::new(linker.instantiate_pre(&component).expect("link")).expect("world");
    let event = raw_event();
    let raw_once = || async {
        let state = RawState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        };
        let mut store = wasmtime::Store::new(&engine, state);
        store.set_fuel(1_000_000_000).expect("fuel");
        store.set_epoch_deadline(500);
        store.epoch_deadline_trap();
        let handler = pre
            .instantiate_async(&mut store)
            .await
            .expect("instantiate");
        handler
            .call_handle(&mut store, &event)
            .await
            .expect("call")
            .expect("ok");
    };

    // The host.
    let dir = tempfile::tempdir().expect("tempdir");
    let core = common::core(&rt, dir.path(), &[("noop", "test-noop")], |_| {});
    let plugin = core.registry.get("noop").expect("noop loaded");

    // Claimed deliveries for the host to run, prepared untimed and in bulk
    // (concurrent ingests share group-commit flushes), so that nothing but
    // the attempts themselves runs between timed samples.
    let (core, plugin) = (&core, &plugin);
    let prepare =
        |n: usize| common::claimed(core, &plugin.name, "test.noop", b"{\"amount\": 100}", n);
    // One timed host attempt: sandbox, instantiate, call, record, commit.
    let host_once = |claimed: hookhost::store::Claimed| async move {
        let start = Instant::now();
        let run = core
            .runtime
            .run_attempt(
                plugin,
                core.store.clone(),
                claimed.delivery.id,
                1,
                &claimed.event,
                &claimed.body,
            )
            .await;
        let ran = start.elapsed();
        let done = core
            .store
            .finish_attempt(&run.attempt, Next::Succeeded, Some(&run.effects))
            .await;
        let elapsed = start.elapsed();
        assert_eq!(run.attempt.outcome, Outcome::Ok);
        assert_eq!(done.expect("finish"), Finish::Committed);
        (elapsed, ran)
    };
    let raw_timed = || async {
        let start = Instant::now();
        raw_once().await;
        start.elapsed()
    };

    let mut group = c.benchmark_group("attempt");
    // `HOOKHOST_BENCH_MEASURE_SECONDS` shortens it for the scoreboard's
    // `--quick` (`hookhost-bench --bin targets`).
    let measure = std::env::var("HOOKHOST_BENCH_MEASURE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    group.measurement_time(Duration::from_secs(measure));
    group.bench_function("raw_wasmtime_instantiate_call", |b| {
        b.iter_custom(|iters| rt.block_on(async { sum(iters, raw_timed).await }))
    });
    group.bench_function("host_attempt_record_built", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let claimed = prepare(1).await.remove(0);
                let start = Instant::now();
                for _ in 0..iters {
                    let run = core
                        .runtime
                        .run_attempt(
                            plugin,
                            core.store.clone(),
                            claimed.delivery.id,
                            1,
                            &claimed.event,
                            &claimed.body,
                        )
                        .await;
                    assert_eq!(run.attempt.outcome, Outcome::Ok);
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("host_attempt_record_committed", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for claimed in prepare(iters as usize).await {
                    total += host_once(claimed).await.0;
                }
                total
            })
        })
    });
    group.finish();

    // Medians from interleaved samples, so drift hits both sides alike.
    let (mut raw_samples, mut host_samples, mut run_samples) = (Vec::new(), Vec::new(), Vec::new());
    rt.block_on(async {
        for claimed in prepare(SUMMARY_SAMPLES).await {
            raw_samples.push(raw_timed().await);
            let (total, run) = host_once(claimed).await;
            host_samples.push(total);
            run_samples.push(run);
        }
    });
    let raw_median = median(&mut raw_samples);
    let host_median = median(&mut host_samples);
    let run_median = median(&mut run_samples);
    #[allow(clippy::print_stdout)]
    {
        println!(
            "summary: {SUMMARY_SAMPLES} interleaved samples each: raw median {:.1} µs (p99 {:.1}), host committed median {:.1} µs (p99 {:.1}), committed/raw = {:.2}",
            micros(raw_median),
            micros(percentile(&raw_samples, 0.99)),
            micros(host_median),
            micros(percentile(&host_samples, 0.99)),
            micros(host_median) / micros(raw_median),
        );
        println!(
            "summary: host attempt with record built {:.1} µs ({:.2} × raw), commit adds {:.1} µs",
            micros(run_median),
            micros(run_median) / micros(raw_median),
            micros(host_median) - micros(run_median),
        );
    }
}

const SUMMARY_SAMPLES: usize = 2000;

async fn sum<F, Fut>(iters: u64, once: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        total += once().await;
    }
    total
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

criterion_group!(benches, bench);
criterion_main!(benches);
