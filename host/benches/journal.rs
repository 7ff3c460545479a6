//! What the journal costs: attempts of the `caller` test plugin making one
//! `http.fetch` to a 127.0.0.1 server, with the journal (each answer
//! durable in sled before the handler sees it) and without it (the answer
//! goes straight to the handler, as before the journal), in one run.
//!
//! - latency: one attempt at a time, the two kinds interleaved; medians.
//! - throughput: `CONCURRENCY` attempts at a time, each recorded and
//!   committed as the dispatcher does, for `EVENTS` events of each kind, one
//!   kind after the other; attempts handled per second.
//!
//! `cargo bench -p hookhost --bench journal`

#![allow(clippy::print_stdout)]

mod common;

use hookhost::core::Core;
use hookhost::model::{AttemptStore, DeliveryId, Journal, JournalEntry, KvRead, Outcome};
use hookhost::runtime::Plugin;
use hookhost::store::{Claimed, Next, Store};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SAMPLES: usize = 400;
const EVENTS: usize = 4000;
const CONCURRENCY: usize = 64;

/// The store with its journal switched off: kv reads go to the store, no
/// answer is journaled, none is ever found.
struct Unjournaled(Arc<Store>);

type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

impl KvRead for Unjournaled {
    fn kv_read<'a>(&'a self, plugin: &'a str, key: &'a str) -> Answer<'a, Option<(u64, Vec<u8>)>> {
        self.0.kv_read(plugin, key)
    }
}

impl Journal for Unjournaled {
    fn journaled(&self, _: DeliveryId) -> Answer<'_, Vec<JournalEntry>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn journal<'a>(&'a self, _: DeliveryId, _: &'a JournalEntry) -> Answer<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let (url, _server) = rt.block_on(async {
        let app = axum::Router::new().fallback(|| async { "ok" });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (url, server)
    });

    let dir = tempfile::tempdir().expect("tempdir");
    let core = common::core(&rt, dir.path(), &[("caller", "test-caller")], |config| {
        config
            .plugins
            .entry("caller".into())
            .or_default()
            .allowed_hosts = vec![url.clone()];
    });
    let body = serde_json::to_vec(&serde_json::json!({
        "requests": [{ "url": format!("{url}/charge"), "body": { "amount": 100 } }]
    }))
    .expect("body");

    // Fresh claimed deliveries: a journaled attempt of a delivery that ran
    // before would be answered from its journal.
    let prepare = |n: usize| common::claimed(&core, "caller", "test.call", &body, n);
    let unjournaled = Arc::new(Unjournaled(core.store.clone()));
    let plugin = core.registry.get("caller").expect("caller loaded");
    let store = |journaled: bool| -> Arc<dyn AttemptStore> {
        if journaled {
            core.store.clone()
        } else {
            unjournaled.clone()
        }
    };
    let once = |claimed: Claimed, journaled: bool| {
        attempt(core.clone(), plugin.clone(), store(journaled), claimed)
    };

    let (mut plain, mut journaled) = (Vec::new(), Vec::new());
    rt.block_on(async {
        let mut claimed = prepare(2 * SAMPLES).await.into_iter();
        while let (Some(a), Some(b)) = (claimed.next(), claimed.next()) {
            plain.push(once(a, false).await);
            journaled.push(once(b, true).await);
        }
    });
    let (plain_ms, journaled_ms) = (median_ms(&mut plain), median_ms(&mut journaled));
    println!(
        "latency: one call per attempt, recorded and committed, {SAMPLES} interleaved samples each: \
         without the journal median {plain_ms:.3} ms, journaled {journaled_ms:.3} ms ({:.2}x, +{:.3} ms)",
        journaled_ms / plain_ms,
        journaled_ms - plain_ms
    );

    let rate = |journaled: bool| {
        rt.block_on(async {
            let claimed = prepare(EVENTS).await;
            let queue = Arc::new(std::sync::Mutex::new(claimed));
            let start = Instant::now();
            let workers: Vec<_> = (0..CONCURRENCY)
                .map(|_| {
                    let (queue, core, plugin) = (queue.clone(), core.clone(), plugin.clone());
                    let store = store(journaled);
                    tokio::spawn(async move {
                        loop {
                            let next = queue.lock().expect("queue").pop();
                            let Some(claimed) = next else { return };
                            attempt(core.clone(), plugin.clone(), store.clone(), claimed).await;
                        }
                    })
                })
                .collect();
            for worker in workers {
                worker.await.expect("worker");
            }
            EVENTS as f64 / start.elapsed().as_secs_f64()
        })
    };
    let (plain_rate, journaled_rate) = (rate(false), rate(true));
    println!(
        "throughput: {EVENTS} events, {CONCURRENCY} attempts at a time, one call each: without the \
         journal {plain_rate:.0} handled/s, journaled {journaled_rate:.0} handled/s ({:.2}x)",
        journaled_rate / plain_rate
    );
}

/// One attempt through `store`, recorded and committed; its duration.
async fn attempt(
    core: Arc<Core>,
    plugin: Arc<Plugin>,
    store: Arc<dyn AttemptStore>,
    claimed: Claimed,
) -> Duration {
    let start = Instant::now();
    let run = core
        .runtime
        .run_attempt(
            &plugin,
            store,
            claimed.delivery.id,
            1,
            &claimed.event,
            &claimed.body,
        )
        .await;
    assert_eq!(run.attempt.outcome, Outcome::Ok, "{:?}", run.attempt);
    assert_eq!(run.attempt.http.len(), 1);
    core.store
        .finish_attempt(&run.attempt, Next::Succeeded, Some(&run.effects))
        .await
        .expect("finish");
    start.elapsed()
}

fn median_ms(samples: &mut [Duration]) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e3
}
