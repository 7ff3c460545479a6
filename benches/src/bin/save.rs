//! `cargo run --release -p hookhost-bench --bin save`
//!
//! Save to serve, for handlers in Python and JavaScript: how long a changed
//! handler's component takes from landing in `plugins/` to serving, in one
//! run, two ways:
//!
//! - cold: a host that has never compiled this handler (its artifact and
//!   function caches empty): every function of the interpreter compiles;
//! - changed: a host that served the previous build, whose function cache
//!   (`runtime/functions.rs`) answers the functions that did not change.
//!
//! It also loads the unchanged first build again in a host sharing only the
//! function cache, and counts the cache entries that load adds: functions
//! compiled again although nothing changed.
//!
//! Each handler is a fresh `hookhost new --lang <lang>` folder, built, then
//! changed (a log message) and built again; the build times are shown too.
//! A language whose toolchain is missing is reported as skipped.

#![allow(clippy::print_stdout)]

use hookhost::scaffold::{self, Lang};
use std::path::Path;
use std::time::{Duration, Instant};
use xtask::polyglot;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Loads `file` into `core`, timing it; fails unless it then serves.
async fn load(
    core: &std::sync::Arc<hookhost::core::Core>,
    file: &Path,
    name: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    hookhost::reload::load_file(core, file)
        .await
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let took = started.elapsed();
    anyhow::ensure!(core.registry.get(name).is_some(), "{name} does not serve");
    Ok(took)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    println!(
        "{:<11} {:>9} {:>13} {:>15} {:>18} {:>8} {:>22}",
        "language",
        "size MB",
        "build s",
        "cold load ms",
        "changed load ms",
        "ratio",
        "same bytes recompiled"
    );
    let languages = [
        (
            "Python",
            Lang::Python,
            polyglot::Lang::Python { module: "app" },
            "app.py",
        ),
        (
            "JavaScript",
            Lang::Js,
            polyglot::Lang::JavaScript { file: "handler.js" },
            "handler.js",
        ),
    ];
    for (label, lang, build_as, source) in languages {
        if let Err(why) = polyglot::toolchain(build_as) {
            println!("{label:<11} skipped: {why}");
            continue;
        }
        let dir = tempfile::tempdir()?;
        let folder = dir.path().join("handler");
        scaffold::create("tally", &folder, lang, None)?;
        let (before, after) = (
            dir.path().join("before.wasm"),
            dir.path().join("after.wasm"),
        );
        let started = Instant::now();
        hookhost::dev::build::build(&folder, lang, &before).map_err(anyhow::Error::msg)?;
        let build = started.elapsed();
        let path = folder.join(source);
        let text = std::fs::read_to_string(&path)?.replace("order added", "order added, again");
        std::fs::write(&path, text)?;
        hookhost::dev::build::build(&folder, lang, &after).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            std::fs::read(&before)? != std::fs::read(&after)?,
            "the change did not change the component"
        );
        let size = std::fs::metadata(&after)?.len();

        // Cold: the changed build into a host that never saw the handler.
        let plugins = dir.path().join("plugins-cold");
        std::fs::create_dir_all(&plugins)?;
        let file = plugins.join("tally.wasm");
        std::fs::copy(&after, &file)?;
        let cold_core = hookhost_bench::core(&dir.path().join("cold"), &plugins).await?;
        let cold = load(&cold_core, &file, "tally").await?;
        drop(cold_core);

        // Changed: the first build serves, then the changed one lands.
        let plugins = dir.path().join("plugins-warm");
        std::fs::create_dir_all(&plugins)?;
        let file = plugins.join("tally.wasm");
        std::fs::copy(&before, &file)?;
        let warm_core = hookhost_bench::core(&dir.path().join("warm"), &plugins).await?;
        load(&warm_core, &file, "tally").await?;
        let functions = dir.path().join("warm/artifacts/functions");
        let entries = || std::fs::read_dir(&functions).map_or(0, |d| d.count());
        let cached = entries();

        // The same first build again, in a host of its own sharing only the
        // function cache: every function should be found there.
        let plugins_again = dir.path().join("plugins-again");
        std::fs::create_dir_all(dir.path().join("again/artifacts"))?;
        std::os::unix::fs::symlink(&functions, dir.path().join("again/artifacts/functions"))?;
        std::fs::create_dir_all(&plugins_again)?;
        std::fs::copy(&before, plugins_again.join("tally.wasm"))?;
        let again_core = hookhost_bench::core(&dir.path().join("again"), &plugins_again).await?;
        load(&again_core, &plugins_again.join("tally.wasm"), "tally").await?;
        drop(again_core);
        let recompiled = entries() - cached;

        std::fs::copy(&after, &file)?;
        let changed = load(&warm_core, &file, "tally").await?;
        let serving = warm_core.registry.get("tally").map(|p| p.version.clone());
        anyhow::ensure!(
            serving.is_some_and(|v| v
                != hookhost::runtime::load::sha256_hex(
                    &std::fs::read(&before).unwrap_or_default()
                )),
            "the changed build is not the one serving"
        );

        println!(
            "{label:<11} {:>9.1} {:>13.1} {:>15.0} {:>18.0} {:>7.2}× {:>22}",
            size as f64 / 1e6,
            build.as_secs_f64(),
            ms(cold),
            ms(changed),
            ms(changed) / ms(cold),
            format!("{recompiled} of {cached}")
        );
    }
    Ok(())
}
