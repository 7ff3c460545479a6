//! What the benches share: a host core in a temp dir with test plugins
//! loaded through the real loader.

use hookhost::Config;
use hookhost::core::Core;
use hookhost::runtime::Runtime;
use hookhost::store::Store;
use std::path::Path;
use std::sync::Arc;

/// A core over sled in `dir` with each `(name, crate)` test plugin built
/// and loaded; `configure` adjusts the configuration first.
pub fn core(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    plugins: &[(&str, &str)],
    configure: impl FnOnce(&mut Config),
) -> Arc<Core> {
    let crates: Vec<&str> = plugins.iter().map(|(_, krate)| *krate).collect();
    let built = match xtask::build_plugins(&crates) {
        Ok(paths) => paths,
        Err(e) => panic!("cannot build the benchmark plugins: {e}"),
    };
    let mut config = Config {
        data: dir.join("data"),
        plugins_dir: dir.join("plugins"),
        ..Config::default()
    };
    configure(&mut config);
    std::fs::create_dir_all(&config.plugins_dir).expect("plugins dir");
    for ((name, _), path) in plugins.iter().zip(built) {
        std::fs::copy(path, config.plugins_dir.join(format!("{name}.wasm"))).expect("install");
    }
    rt.block_on(async {
        let store = Store::open(&config.data).expect("store");
        let runtime =
            Runtime::new(config.workers, config.max_memory_bytes(), None).expect("runtime");
        let core = Arc::new(Core::new(
            config,
            store,
            runtime,
            Default::default(),
            Default::default(),
            Default::default(),
        ));
        hookhost::reload::load_all(&core).await;
        for (name, _) in plugins {
            assert!(core.registry.get(name).is_some(), "{name} loaded");
        }
        core
    })
}

/// `n` claimed deliveries to `plugin` of fresh events of `topic` and `body`,
/// ingested 256 at a time (concurrent ingests share group-commit flushes).
#[allow(dead_code)] // each bench compiles this module; the store bench claims nothing
pub async fn claimed(
    core: &Core,
    plugin: &str,
    topic: &str,
    body: &[u8],
    n: usize,
) -> Vec<hookhost::store::Claimed> {
    let mut claimed = Vec::with_capacity(n);
    let routes = [hookhost::store::Route::new(plugin)];
    while claimed.len() < n {
        let chunk = (n - claimed.len()).min(256);
        let ingests = (0..chunk).map(|_| {
            let event = hookhost::model::NewEvent {
                topic: topic.into(),
                idempotency_key: None,
                headers: Vec::new(),
                content_type: Some("application/json".into()),
                body: body.to_vec(),
                provenance: hookhost::model::Provenance::Api,
            };
            core.store.ingest(event, &routes)
        });
        for ingested in futures::future::join_all(ingests).await {
            ingested.expect("ingest");
        }
        for due in core.store.due(u64::MAX, None, chunk).await.expect("due") {
            let one = core.store.claim(&due).await.expect("claim");
            claimed.push(one.expect("claimed"));
        }
    }
    claimed
}
