//! `hookhost dev [folder]`: the inner loop of a handler author.
//!
//! Runs a host on the embedded store (state in `<folder>/.hookhost/`),
//! then, at start and after every save in the folder: builds the handler
//! with its language's toolchain, checks the component (compiled,
//! link-checked, `describe()` called, as a candidate), shadow-runs it on
//! the plugin's last recorded events and prints what would change, and
//! installs it, printing how long after the save it serves. A build or a
//! check that fails is printed and the previous version keeps serving.
//!
//! The loop talks to its host through the admin API, as any client would.

pub mod build;

use crate::api::{self, Client};
use crate::config::Config;
use crate::scaffold::Lang;
use anyhow::Context as _;
use notify::{RecursiveMode, Watcher as _};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long the folder must be quiet after a change before a build starts.
const SETTLE: Duration = Duration::from_millis(200);
/// Longest wait for an installed build to serve.
const SERVE_WAIT: Duration = Duration::from_secs(180);

/// How `hookhost dev` runs.
pub struct Options {
    pub folder: PathBuf,
    /// The plugin's name (default: the folder's name).
    pub name: Option<String>,
    pub listen: SocketAddr,
    /// The host's configuration (default: the built-in one).
    pub config: Option<Config>,
    /// Recorded events a new build is shadow-run on.
    pub shadow_events: usize,
}

/// One handler folder under watch.
struct Session {
    folder: PathBuf,
    lang: Lang,
    name: String,
    state: PathBuf,
    client: Client,
    shadow_events: usize,
}

/// Runs the loop until `shutdown` completes.
pub async fn run(
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let folder = options
        .folder
        .canonicalize()
        .with_context(|| format!("no folder {}", options.folder.display()))?;
    let lang = build::detect(&folder).with_context(|| {
        format!(
            "{}: no Cargo.toml, package.json or app.py, so no handler to build",
            folder.display()
        )
    })?;
    let name = match options.name {
        Some(name) => name,
        None => folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    if !crate::model::valid_plugin_name(&name) {
        anyhow::bail!(
            "{name:?} is not a plugin name: pass --name (lowercase letters, digits, '-')"
        );
    }
    let state = folder.join(".hookhost");
    let mut config = options.config.unwrap_or_default();
    config.listen = options.listen;
    config.data = state.join("data");
    config.plugins_dir = state.join("plugins");
    std::fs::create_dir_all(&config.plugins_dir)?;
    std::fs::create_dir_all(state.join("build"))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let base = format!("http://{}", listener.local_addr()?);
    let mut server = tokio::spawn(crate::run(config, listener, shutdown));
    let session = Session {
        client: Client::new(&base, None)?,
        folder: folder.clone(),
        lang,
        name,
        state,
        shadow_events: options.shadow_events,
    };
    say(&format!(
        "hookhost dev: {} ({}) on {base}, state in {}; watching {}",
        session.name,
        lang_name(lang),
        session.state.display(),
        folder.display()
    ));

    let (tx, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let watched = folder.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && is_change(&event.kind)
            && event.paths.iter().any(|p| is_source(&watched, p))
        {
            let _ = tx.send(Instant::now());
        }
    })?;
    watcher.watch(&folder, RecursiveMode::Recursive)?;

    let mut saved = Instant::now();
    loop {
        let started = Instant::now();
        tokio::select! {
            ended = &mut server => {
                return ended.context("the host stopped")?;
            }
            () = session.round(saved) => {}
        }
        // The next save (one made during the round counts; a change seen
        // before the round began is in what it built), then quiet for a
        // moment: editors write in steps.
        loop {
            tokio::select! {
                ended = &mut server => return ended.context("the host stopped")?,
                next = changes.recv() => {
                    let Some(at) = next else { return Ok(()) };
                    if at >= started {
                        saved = at;
                        break;
                    }
                }
            }
        }
        while let Ok(Some(_)) = tokio::time::timeout(SETTLE, changes.recv()).await {}
    }
}

impl Session {
    /// Builds, checks, shadow-runs and installs the folder's handler.
    async fn round(&self, saved: Instant) {
        say(&format!("building {}…", self.name));
        let out = self.state.join("build").join(format!("{}.wasm", self.name));
        let (folder, lang, target) = (self.folder.clone(), self.lang, out.clone());
        let built = tokio::task::spawn_blocking(move || build::build(&folder, lang, &target))
            .await
            .unwrap_or_else(|e| Err(format!("the build stopped: {e}")));
        if let Err(why) = built {
            say(&format!(
                "build failed; the previous version keeps serving\n{why}"
            ));
            return;
        }
        let bytes = match std::fs::read(&out) {
            Ok(bytes) => bytes,
            Err(e) => return say(&format!("cannot read {}: {e}", out.display())),
        };
        let version = crate::runtime::load::sha256_hex(&bytes);
        let serving = self.serving().await;
        if serving.as_deref() == Some(version.as_str()) {
            return say(&format!("unchanged: {} serves already", short(&version)));
        }
        if let Err(e) = self
            .client
            .upload_candidate(&self.name, bytes.clone())
            .await
        {
            return say(&format!(
                "check failed; the previous version keeps serving\n{e:#}"
            ));
        }
        if serving.is_some() {
            self.shadow(&version).await;
        }
        let installed_at_ms = crate::model::now_ms();
        if let Err(e) = self.install(&bytes) {
            return say(&format!("cannot install the build: {e:#}"));
        }
        match self.wait_serving(&version, installed_at_ms).await {
            Ok(()) => say(&format!(
                "serving {} ({:.1} s after the save)",
                short(&version),
                saved.elapsed().as_secs_f64()
            )),
            Err(e) => say(&format!("{e:#}")),
        }
    }

    /// The version the host serves, if it serves the plugin.
    async fn serving(&self) -> Option<String> {
        let plugin = self.client.plugin(&self.name).await.ok()?;
        plugin.serving.map(|s| s.version)
    }

    /// Runs `version` on the plugin's last recorded events and prints what
    /// it would do differently.
    async fn shadow(&self, version: &str) {
        let request = api::ShadowRequest {
            version: version.to_owned(),
            limit: Some(self.shadow_events),
            ..api::ShadowRequest::default()
        };
        match self.client.shadow(&self.name, &request).await {
            Ok(report) if report.events == 0 => {
                say("shadow run: no recorded events yet (post some, save again)");
            }
            Ok(report) => say(&format!(
                "shadow run of {} on the last {} events:\n{}",
                short(version),
                report.events,
                shadow_details(&report)
            )),
            Err(e) => say(&format!("shadow run failed: {e:#}")),
        }
    }

    /// Writes the build into the host's plugins directory, renamed into
    /// place so the host never reads half a file.
    fn install(&self, bytes: &[u8]) -> anyhow::Result<()> {
        let plugins = self.state.join("plugins");
        let tmp = plugins.join(format!(".{}.wasm.tmp", self.name));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, plugins.join(format!("{}.wasm", self.name)))?;
        Ok(())
    }

    /// Waits until the host serves `version`, or reports a load failure
    /// since `installed_at_ms`.
    async fn wait_serving(&self, version: &str, installed_at_ms: u64) -> anyhow::Result<()> {
        let deadline = Instant::now() + SERVE_WAIT;
        loop {
            if let Ok(plugin) = self.client.plugin(&self.name).await {
                if plugin.serving.is_some_and(|s| s.version == version) {
                    return Ok(());
                }
                if let Some(error) = plugin.last_error
                    && error.at_ms >= installed_at_ms
                {
                    anyhow::bail!("the host refused the build: {}", error.error);
                }
            }
            if Instant::now() > deadline {
                anyhow::bail!("the build did not serve within {} s", SERVE_WAIT.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The shadow report's table, with each differing event's outcomes and
/// messages spelt out.
fn shadow_details(report: &api::ShadowReport) -> String {
    let mut out = crate::cli::shadow_table(report);
    for r in &report.results {
        if !r.differences.is_empty() {
            out.push_str(&format!(
                "\n  {}: live {} → candidate {}",
                r.event,
                compact(&r.live),
                compact(&r.candidate)
            ));
        }
    }
    out
}

/// An attempt's outcome and effects on one line: `ok; kv total=12;
/// emitted 1`.
fn compact(side: &api::ShadowSide) -> String {
    let mut out = side.outcome.kind().to_owned();
    if let Some(message) = side.outcome.message() {
        out.push_str(&format!(
            " ({})",
            message.lines().next().unwrap_or_default()
        ));
    }
    let effects = side.effects.as_ref();
    let writes: Vec<String> = effects
        .map(|e| e.kv_writes.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|w| {
            let shown = match &w.value {
                Some(blob) => blob
                    .text
                    .clone()
                    .unwrap_or_else(|| format!("{} bytes", blob.len)),
                None => "(deleted)".to_owned(),
            };
            format!("{}={shown}", w.key)
        })
        .collect();
    if !writes.is_empty() {
        out.push_str(&format!("; kv {}", writes.join(", ")));
    }
    let emitted = effects.map_or(0, |e| e.emitted.len());
    if emitted > 0 {
        out.push_str(&format!("; emitted {emitted}"));
    }
    out
}

/// Whether a watcher event is a change to a file's contents or names (an
/// editor's save), not a read: a build reads every source.
fn is_change(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    use notify::event::ModifyKind;
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        _ => false,
    }
}

/// Whether a change to `path` is a change to the handler's sources (not
/// the dev state, build output, dependencies or caches).
fn is_source(folder: &Path, path: &Path) -> bool {
    const SKIP: [&str; 7] = [
        ".hookhost",
        "target",
        "node_modules",
        "__pycache__",
        ".pytest_cache",
        ".git",
        "cases",
    ];
    let Ok(relative) = path.strip_prefix(folder) else {
        return false;
    };
    let skipped = relative.components().any(|c| {
        let c = c.as_os_str().to_string_lossy();
        SKIP.contains(&c.as_ref()) || c.starts_with('.')
    });
    let built = path
        .extension()
        .is_some_and(|e| e == "wasm" || e == "tmp" || e == "swp");
    !skipped && !built && !relative.as_os_str().is_empty()
}

fn lang_name(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "Rust",
        Lang::Python => "Python",
        Lang::Js => "JavaScript",
    }
}

fn short(version: &str) -> &str {
    version.get(..12).unwrap_or(version)
}

/// One line (or block) of the loop's report, at once.
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::{compact, is_change, is_source};
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, MetadataKind, ModifyKind};
    use std::path::Path;

    #[test]
    fn a_save_is_a_change_and_a_build_reading_the_sources_is_not() {
        assert!(is_change(&EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(!is_change(&EventKind::Modify(ModifyKind::Metadata(
            MetadataKind::AccessTime
        ))));
    }

    #[test]
    fn an_attempt_reads_on_one_line() {
        let blob = |text: &str| crate::model::Blob {
            text: Some(text.to_owned()),
            ..crate::model::Blob::of(text.as_bytes())
        };
        let side = crate::api::ShadowSide {
            version: "v".into(),
            outcome: crate::model::Outcome::Retry("notify answered 500\nmore".into()),
            effects: Some(crate::model::EffectsRecord {
                committed: false,
                kv_reads: vec![],
                kv_writes: vec![
                    crate::model::KvRecord {
                        key: "total".into(),
                        value: Some(blob("15")),
                    },
                    crate::model::KvRecord {
                        key: "old".into(),
                        value: None,
                    },
                ],
                emitted: vec![crate::model::EmitRecord {
                    topic: "t".into(),
                    idempotency_key: None,
                    body: blob("{}"),
                }],
            }),
            fuel_consumed: None,
            duration_us: None,
            logs: vec![],
            stdout: String::new(),
            stderr: String::new(),
            http: vec![],
        };
        assert_eq!(
            compact(&side),
            "retry (notify answered 500); kv total=15, old=(deleted); emitted 1"
        );
    }

    #[test]
    fn only_source_changes_rebuild() {
        let f = Path::new("/h/tally");
        assert!(is_source(f, Path::new("/h/tally/app.py")));
        assert!(is_source(f, Path::new("/h/tally/src/lib.rs")));
        for other in [
            "/h/tally/.hookhost/plugins/tally.wasm",
            "/h/tally/target/release/x",
            "/h/tally/node_modules/a/b.js",
            "/h/tally/__pycache__/app.pyc",
            "/h/tally/tally.wasm",
            "/h/tally/.app.py.swp",
            "/h/tally/cases/first.json",
            "/h/other/app.py",
        ] {
            assert!(!is_source(f, Path::new(other)), "{other}");
        }
    }
}
