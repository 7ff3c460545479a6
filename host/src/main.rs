//! The `hookhost` binary: parses flags and calls [`hookhost::run`].

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use hookhost::Config;
use hookhost::cli;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "hookhost",
    version,
    about = "Durable webhooks, sandboxed WebAssembly handlers"
)]
struct Cli {
    /// Log format.
    #[arg(long, env = "HOOKHOST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// Export spans over OTLP/HTTP to this endpoint, e.g.
    /// `http://127.0.0.1:4318/v1/traces` (needs a build with `--features otlp`).
    #[arg(long, env = "HOOKHOST_OTLP_ENDPOINT", global = true)]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the host.
    Serve(ServeArgs),
    /// Validate a plugin component offline and print its manifest.
    Check {
        /// The `.wasm` component to check.
        file: PathBuf,
    },
    /// List or show stored events.
    Events {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Replay one event (`replay <id>`) or every event matching a filter.
    Replay {
        #[command(flatten)]
        api: ApiArgs,
        /// The event to replay; without it, the filter below picks events.
        event: Option<String>,
        /// Only to this plugin.
        #[arg(long)]
        plugin: Option<String>,
        /// Pinned to this version (sha256) of --plugin (one event only).
        #[arg(long)]
        version: Option<String>,
        /// Topic pattern, e.g. `stripe.*`.
        #[arg(long)]
        topic: Option<String>,
        /// unrouted, pending, succeeded or dead.
        #[arg(long)]
        status: Option<String>,
        /// Received at or after: `2h` (ago), an RFC 3339 time, or epoch ms.
        #[arg(long, alias = "since-ms", value_parser = cli::when)]
        since: Option<u64>,
        /// Received before: as --since.
        #[arg(long, alias = "until-ms", value_parser = cli::when)]
        until: Option<u64>,
        /// At most this many events (≤ 10 000).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Loaded plugins: list, roll back, shadow-run a candidate.
    Plugins {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Dead letters: list (default) or retry.
    DeadLetters {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: Option<DeadCommand>,
    },
    /// Post an event: the body from FILE, or stdin with `-` or no FILE.
    Send {
        #[command(flatten)]
        api: ApiArgs,
        topic: String,
        file: Option<PathBuf>,
        /// Idempotency key.
        #[arg(long)]
        key: Option<String>,
        #[arg(long, default_value = "application/json")]
        content_type: String,
    },
    /// Save a consistent snapshot of a running host's store to FILE.
    Backup {
        #[command(flatten)]
        api: ApiArgs,
        file: PathBuf,
    },
    /// Restore a backup into an empty data directory (offline: the host
    /// must not be running on it).
    Restore {
        file: PathBuf,
        /// The data directory to create; it must be empty or absent.
        #[arg(long, default_value = "./data")]
        data: PathBuf,
    },
    /// Run a built component in the sandbox, offline, against case files,
    /// and compare what it did with each case's `<case>.expected.json`.
    Test {
        /// The `.wasm` component.
        component: PathBuf,
        /// Case files, or directories of them (`*.json`).
        #[arg(required = true)]
        cases: Vec<PathBuf>,
        /// Write each case's expected file from what it did.
        #[arg(long)]
        bless: bool,
        /// The operator's configuration: the plugin's limits, config and allowed hosts.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The plugin's name in that configuration (default: the file's stem).
        #[arg(long)]
        plugin: Option<String>,
    },
    /// Watch a handler folder: rebuild on save, check, shadow-run on recorded
    /// events and hot-swap into a local host (state in `<folder>/.hookhost`).
    Dev {
        /// The handler folder (default: the current one).
        #[arg(default_value = ".")]
        folder: PathBuf,
        /// The plugin's name (default: the folder's name).
        #[arg(long)]
        name: Option<String>,
        /// Address of the local host.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The local host's configuration (limits, config values, allowed hosts).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Recorded events each new build is shadow-run on.
        #[arg(long, default_value_t = 20)]
        shadow_events: usize,
    },
    /// Create a handler folder that builds as is, with a test that needs no host.
    New {
        /// Plugin name (`[a-z0-9-]`); also the directory, unless --dir.
        name: String,
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The handler's language.
        #[arg(long, value_enum, default_value = "rust")]
        lang: hookhost::scaffold::Lang,
        /// Path to the Rust SDK (default: the one this binary was built with).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

/// How the client commands reach the host.
#[derive(clap::Args, Clone)]
struct ApiArgs {
    /// The host's address.
    #[arg(
        long,
        env = "HOOKHOST_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// The admin bearer token.
    #[arg(long, env = "HOOKHOST_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Newest first.
    List {
        #[arg(long)]
        topic: Option<String>,
        #[arg(long)]
        status: Option<String>,
        /// Only events delivered to this plugin.
        #[arg(long)]
        plugin: Option<String>,
        /// Received at or after: `2h` (ago), an RFC 3339 time, or epoch ms.
        #[arg(long, value_parser = cli::when)]
        since: Option<u64>,
        /// Received before: as --since.
        #[arg(long, value_parser = cli::when)]
        until: Option<u64>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        cursor: Option<String>,
    },
    /// One event with its deliveries, attempts and logs.
    Show { id: String },
    /// Every matching event with its outcomes, newest first, as JSON lines
    /// on stdout, streamed.
    Export {
        #[arg(long)]
        topic: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        plugin: Option<String>,
        /// Received at or after: `2h` (ago), an RFC 3339 time, or epoch ms.
        #[arg(long, alias = "since-ms", value_parser = cli::when)]
        since: Option<u64>,
        /// Received before: as --since.
        #[arg(long, alias = "until-ms", value_parser = cli::when)]
        until: Option<u64>,
        /// Only `jsonl` for now.
        #[arg(long, default_value = "jsonl")]
        format: String,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Versions, subscriptions and load errors.
    List,
    /// Serve an earlier version again (default: the previous one).
    Rollback {
        name: String,
        #[arg(long)]
        to: Option<String>,
    },
    /// Run a candidate (a .wasm file, or the sha256 of a kept version) on
    /// recorded events and compare it with the live version.
    Shadow {
        name: String,
        candidate: String,
        #[arg(long)]
        topic: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Subcommand)]
enum DeadCommand {
    /// Oldest first.
    List {
        #[arg(long)]
        plugin: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Back to the queue: one delivery, or --all (of --plugin).
    Retry {
        delivery: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        plugin: Option<String>,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Configuration file (default: ./hookhost.toml when it exists).
    #[arg(long, env = "HOOKHOST_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "HOOKHOST_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data directory of the embedded store (default ./data).
    #[arg(long, env = "HOOKHOST_DATA")]
    data: Option<PathBuf>,
    /// Directory of plugin components (default ./plugins).
    #[arg(long, env = "HOOKHOST_PLUGINS")]
    plugins: Option<PathBuf>,
    /// Serve the admin API on a non-loopback address without a token.
    #[arg(long, env = "HOOKHOST_ALLOW_PUBLIC_ADMIN")]
    allow_public_admin: bool,
    /// Name of the environment variable holding the admin token (overrides
    /// `admin_token_env` in the file).
    #[arg(long, env = "HOOKHOST_ADMIN_TOKEN_ENV")]
    admin_token_env: Option<String>,
    /// Accept events on `/events/{topic}` from anyone who reaches a
    /// non-loopback address, without an ingest token.
    #[arg(long, env = "HOOKHOST_ALLOW_PUBLIC_INGEST")]
    allow_public_ingest: bool,
    /// Name of the environment variable holding the ingest token (overrides
    /// `ingest_token_env` in the file).
    #[arg(long, env = "HOOKHOST_INGEST_TOKEN_ENV")]
    ingest_token_env: Option<String>,
}

hookhost::use_jemalloc!();

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _exporter = init_tracing(cli.log_format, cli.otlp_endpoint.as_deref())?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Check { file } => runtime.block_on(check(&file)),
        Command::Dev {
            folder,
            name,
            listen,
            config,
            shadow_events,
        } => {
            let config = config.map(|p| Config::from_file(&p)).transpose()?;
            let options = hookhost::dev::Options {
                folder,
                name,
                listen,
                config,
                shadow_events,
            };
            runtime.block_on(hookhost::dev::run(options, shutdown_signal()))
        }
        Command::Test {
            component,
            cases,
            bless,
            config,
            plugin,
        } => {
            let config = config.map(|p| Config::from_file(&p)).transpose()?;
            let options = hookhost::harness::Options {
                bless,
                config,
                plugin,
            };
            let failed = runtime.block_on(test_cases(&component, &cases, &options))?;
            if failed > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Restore { file, data } => {
            let summary = hookhost::store::restore(&file, &data)
                .with_context(|| format!("cannot restore {}", file.display()))?;
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "restored {} records in {} trees into {}",
                    summary.records,
                    summary.trees,
                    data.display()
                );
            }
            Ok(())
        }
        Command::New {
            name,
            dir,
            lang,
            sdk,
        } => {
            use hookhost::scaffold;
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let sdk = match lang {
                scaffold::Lang::Rust => Some(scaffold::sdk_dependency(sdk.as_deref())?),
                _ => None,
            };
            scaffold::create(&name, &dir, lang, sdk.as_deref())?;
            #[allow(clippy::print_stdout)]
            {
                println!("{}", scaffold::next_steps(&name, &dir, lang));
            }
            Ok(())
        }
        other => runtime.block_on(client(other)),
    }
}

/// The admin-API client commands.
async fn client(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Backup { api, file } => {
            let c = cli::Client::new(&api.url, api.token)?;
            let mut partial = file.clone().into_os_string();
            partial.push(".partial");
            let partial = PathBuf::from(partial);
            let mut out = std::io::BufWriter::new(
                std::fs::File::create(&partial)
                    .with_context(|| format!("cannot create {}", partial.display()))?,
            );
            let fetched = cli::with_progress("backing up", c.stream_to("/backup", &mut out)).await;
            drop(out);
            let checked = fetched.and_then(|()| {
                let records = hookhost::store::verify_backup(&partial)?;
                std::fs::File::open(&partial)?.sync_all()?;
                std::fs::rename(&partial, &file)?;
                Ok(records)
            });
            let records = match checked {
                Ok(records) => records,
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(e.context("backup failed; nothing was saved"));
                }
            };
            let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            let v = serde_json::json!({ "file": file, "records": records, "bytes": bytes });
            cli::print(api.json, &v, |v| {
                format!(
                    "saved {} records ({} bytes) to {}\n",
                    v["records"],
                    v["bytes"],
                    file.display()
                )
            });
        }
        Command::Events { api, command } => {
            let c = cli::Client::new(&api.url, api.token)?;
            match command {
                EventsCommand::List {
                    topic,
                    status,
                    plugin,
                    since,
                    until,
                    limit,
                    cursor,
                } => {
                    let path = cli::with_query(
                        &format!("/events?limit={limit}"),
                        &[
                            ("topic", topic),
                            ("status", status),
                            ("plugin", plugin),
                            ("since_ms", since.map(|v| v.to_string())),
                            ("until_ms", until.map(|v| v.to_string())),
                            ("cursor", cursor),
                        ],
                    );
                    let v = c.get(&path).await?;
                    cli::print(api.json, &v, cli::events_table);
                }
                EventsCommand::Export {
                    topic,
                    status,
                    plugin,
                    since,
                    until,
                    format,
                } => {
                    if format != "jsonl" {
                        anyhow::bail!("--format {format}: only jsonl is supported");
                    }
                    let path = cli::with_query(
                        "/export",
                        &[
                            ("topic", topic),
                            ("status", status),
                            ("plugin", plugin),
                            ("since_ms", since.map(|v| v.to_string())),
                            ("until_ms", until.map(|v| v.to_string())),
                        ],
                    );
                    c.stream_to(&path, &mut std::io::stdout().lock()).await?;
                }
                EventsCommand::Show { id } => {
                    let v = c.get(&format!("/events/{}", cli::query(&id))).await?;
                    cli::print(api.json, &v, cli::event_table);
                }
            }
        }
        Command::Replay {
            api,
            event,
            plugin,
            version,
            topic,
            status,
            since,
            until,
            limit,
        } => {
            let c = cli::Client::new(&api.url, api.token)?;
            let v = match event {
                Some(id) => {
                    let body = serde_json::json!({ "plugin": plugin, "version": version });
                    c.post(&format!("/events/{}/replay", cli::query(&id)), Some(body))
                        .await?
                }
                None => {
                    if version.is_some() {
                        anyhow::bail!("--version pins one event's replay: give the event id");
                    }
                    let body = serde_json::json!({
                        "topic": topic, "status": status, "since_ms": since,
                        "until_ms": until, "plugin": plugin, "limit": limit,
                    });
                    cli::with_progress("replaying", c.post("/replay", Some(body))).await?
                }
            };
            cli::print(api.json, &v, cli::counts_table);
        }
        Command::Plugins { api, command } => {
            let c = cli::Client::new(&api.url, api.token)?;
            match command {
                PluginsCommand::List => {
                    let v = c.get("/plugins").await?;
                    cli::print(api.json, &v, cli::plugins_table);
                }
                PluginsCommand::Rollback { name, to } => {
                    let body = to.map(|sha| serde_json::json!({ "sha256": sha }));
                    let v = c
                        .post(&format!("/plugins/{}/rollback", cli::query(&name)), body)
                        .await?;
                    cli::print(api.json, &v, |p| {
                        format!(
                            "{} now serves {}",
                            cli::cell(&p["name"]),
                            cli::cell(&p["version"])
                        )
                    });
                }
                PluginsCommand::Shadow {
                    name,
                    candidate,
                    topic,
                    limit,
                } => {
                    let version = if Path::new(&candidate).is_file() {
                        let bytes = std::fs::read(&candidate)
                            .with_context(|| format!("cannot read {candidate}"))?;
                        let (_, uploaded) = c
                            .post_raw(
                                &format!("/plugins/{}/candidates", cli::query(&name)),
                                bytes,
                                "application/wasm",
                            )
                            .await?;
                        cli::cell(&uploaded["version"])
                    } else {
                        candidate
                    };
                    let body =
                        serde_json::json!({ "version": version, "topic": topic, "limit": limit });
                    let v = cli::with_progress(
                        "shadow run",
                        c.post(
                            &format!("/plugins/{}/shadow", cli::query(&name)),
                            Some(body),
                        ),
                    )
                    .await?;
                    cli::print(api.json, &v, cli::shadow_table);
                }
            }
        }
        Command::DeadLetters { api, command } => {
            let c = cli::Client::new(&api.url, api.token)?;
            match command.unwrap_or(DeadCommand::List {
                plugin: None,
                limit: 50,
                cursor: None,
            }) {
                DeadCommand::List {
                    plugin,
                    limit,
                    cursor,
                } => {
                    let mut path = format!("/dead-letters?limit={limit}");
                    for (k, v) in [("plugin", plugin), ("cursor", cursor)] {
                        if let Some(v) = v {
                            path.push_str(&format!("&{k}={}", cli::query(&v)));
                        }
                    }
                    let v = c.get(&path).await?;
                    cli::print(api.json, &v, cli::dead_table);
                }
                DeadCommand::Retry {
                    delivery,
                    all,
                    plugin,
                } => {
                    let v = match (delivery, all) {
                        (Some(d), false) => {
                            c.post(&format!("/dead-letters/{}/retry", cli::query(&d)), None)
                                .await?
                        }
                        (None, true) => {
                            let path = match plugin {
                                Some(p) => format!("/dead-letters/retry?plugin={}", cli::query(&p)),
                                None => "/dead-letters/retry".to_owned(),
                            };
                            cli::with_progress("retrying", c.post(&path, None)).await?
                        }
                        _ => anyhow::bail!("give one delivery id, or --all"),
                    };
                    cli::print(api.json, &v, cli::counts_table);
                }
            }
        }
        Command::Send {
            api,
            topic,
            file,
            key,
            content_type,
        } => {
            let c = cli::Client::new(&api.url, api.token)?;
            let body = match file.as_deref() {
                Some(path) if path != Path::new("-") => std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                _ => {
                    let mut buf = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                        .context("cannot read stdin")?;
                    buf
                }
            };
            let c = match key {
                Some(key) => c.with_header("idempotency-key", &key),
                None => c,
            };
            let (status, v) = c
                .post_raw(
                    &format!("/events/{}", cli::query(&topic)),
                    body,
                    &content_type,
                )
                .await?;
            cli::print(api.json, &v, |v| {
                let what = if status == 200 {
                    "already stored as"
                } else {
                    "stored as"
                };
                format!("{what} {}", cli::cell(&v["id"]))
            });
        }
        Command::Serve(_)
        | Command::Check { .. }
        | Command::Test { .. }
        | Command::Dev { .. }
        | Command::New { .. }
        | Command::Restore { .. } => {}
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None if Path::new("hookhost.toml").exists() => {
            Config::from_file(Path::new("hookhost.toml"))?
        }
        None => Config::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(data) = args.data {
        config.data = data;
    }
    if let Some(plugins) = args.plugins {
        config.plugins_dir = plugins;
    }
    config.allow_public_admin |= args.allow_public_admin;
    if let Some(var) = args.admin_token_env {
        config.admin_token_env = Some(var);
    }
    config.allow_public_ingest |= args.allow_public_ingest;
    if let Some(var) = args.ingest_token_env {
        config.ingest_token_env = Some(var);
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    hookhost::run(config, listener, shutdown_signal()).await
}

async fn check(file: &Path) -> anyhow::Result<()> {
    let report =
        hookhost::runtime::check_file(file, hookhost::Config::default().limits_for("")).await?;
    #[allow(clippy::print_stdout)]
    {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

/// Runs `hookhost test`, printing each case's verdict; returns how many
/// failed.
async fn test_cases(
    component: &Path,
    cases: &[PathBuf],
    options: &hookhost::harness::Options,
) -> anyhow::Result<usize> {
    use hookhost::harness::{Verdict, expected_path};
    let verdicts = hookhost::harness::run(component, cases, options).await?;
    let mut failed = 0;
    #[allow(clippy::print_stdout)]
    for (case, verdict) in &verdicts {
        match verdict {
            Verdict::Passed => println!("ok       {}", case.display()),
            Verdict::Blessed => println!(
                "blessed  {} -> {}",
                case.display(),
                expected_path(case).display()
            ),
            Verdict::Failed(diff) => {
                failed += 1;
                println!("FAILED   {}\n{diff}", case.display());
            }
            Verdict::Unexpected(report) => {
                failed += 1;
                println!(
                    "FAILED   {}: no {} (run with --bless to write it); it did:\n{report}",
                    case.display(),
                    expected_path(case).display()
                );
            }
        }
    }
    #[allow(clippy::print_stdout)]
    {
        println!(
            "{} cases: {} passed or blessed, {failed} failed",
            verdicts.len(),
            verdicts.len() - failed
        );
    }
    Ok(failed)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for sigterm");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("received ctrl-c"),
        _ = term => tracing::info!("received sigterm"),
    }
}

/// Logs to stderr (text or JSON), and spans to OTLP when asked. The
/// returned guard flushes the exporter when dropped.
fn init_tracing(format: LogFormat, otlp: Option<&str>) -> anyhow::Result<Option<otlp::Guard>> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOOKHOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let mut layers: Vec<otlp::BoxedLayer> = vec![match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    }];
    let guard = match otlp {
        Some(endpoint) => {
            let (layer, guard) = otlp::layer(endpoint)?;
            layers.push(layer);
            Some(guard)
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .init();
    Ok(guard)
}

#[cfg(feature = "otlp")]
mod otlp {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    use tracing_subscriber::Layer as _;

    /// Flushes the spans still batched when dropped.
    pub struct Guard(opentelemetry_sdk::trace::SdkTracerProvider);

    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.shutdown();
        }
    }

    pub type BoxedLayer =
        Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

    pub fn layer(endpoint: &str) -> anyhow::Result<(BoxedLayer, Guard)> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .build()?;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name("hookhost")
                    .build(),
            )
            .build();
        let tracer = provider.tracer("hookhost");
        let layer = tracing_opentelemetry::layer().with_tracer(tracer).boxed();
        Ok((layer, Guard(provider)))
    }
}

#[cfg(not(feature = "otlp"))]
mod otlp {
    pub struct Guard;
    pub type BoxedLayer =
        Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

    pub fn layer(_endpoint: &str) -> anyhow::Result<(BoxedLayer, Guard)> {
        anyhow::bail!(
            "this hookhost was built without OTLP export: build it with `--features otlp`"
        )
    }
}
