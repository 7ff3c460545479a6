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
