//! The `hookhost` binary: parses flags and calls [`hookhost::run`].

use anyhow::Context as _;
use clap::Parser as _;
use hookhost::Config;
use hookhost::api::{self, Client};
use hookhost::cli;
use hookhost::cli::args::{
    Cli, Command, DeadCommand, EventsCommand, LogFormat, PluginsCommand, ServeArgs,
};
use std::path::{Path, PathBuf};

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
            let c = Client::new(&api.url, api.token)?;
            let mut partial = file.clone().into_os_string();
            partial.push(".partial");
            let partial = PathBuf::from(partial);
            let mut out = std::io::BufWriter::new(
                std::fs::File::create(&partial)
                    .with_context(|| format!("cannot create {}", partial.display()))?,
            );
            let fetched = cli::with_progress("backing up", c.backup(&mut out)).await;
            drop(out);
            let checked = fetched.map_err(anyhow::Error::from).and_then(|()| {
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
            let saved = BackupSaved {
                file: file.clone(),
                records,
                bytes,
            };
            cli::print(api.json, &saved, |v| {
                format!(
                    "saved {} records ({} bytes) to {}\n",
                    v.records,
                    v.bytes,
                    file.display()
                )
            });
        }
        Command::Events { api, command } => {
            let c = Client::new(&api.url, api.token)?;
            match command {
                EventsCommand::List {
                    filter,
                    limit,
                    cursor,
                } => {
                    let v = c.events(&filter.into(), limit, cursor.as_deref()).await?;
                    cli::print(api.json, &v, cli::events_table);
                }
                EventsCommand::Export { filter, format } => {
                    if format != "jsonl" {
                        anyhow::bail!("--format {format}: only jsonl is supported");
                    }
                    c.export(&filter.into(), &mut std::io::stdout().lock())
                        .await?;
                }
                EventsCommand::Show { id } => {
                    let v = c.event(&id).await?;
                    cli::print(api.json, &v, cli::event_table);
                }
            }
        }
        Command::Replay {
            api,
            event,
            exact,
            attempt,
            plugin,
            version,
            topic,
            status,
            since,
            until,
            limit,
        } => {
            let c = Client::new(&api.url, api.token)?;
            match event {
                Some(id) if exact => {
                    let request = api::ExactReplayRequest {
                        plugin,
                        attempt,
                        version,
                    };
                    let v = c.replay_exact(&id, &request).await?;
                    cli::print(api.json, &v, cli::exact_table);
                    if !v.exact {
                        std::process::exit(1);
                    }
                }
                Some(id) => {
                    let v = c.replay(&id, &api::ReplayOne { plugin, version }).await?;
                    cli::print(api.json, &v, cli::counts_table);
                }
                None => {
                    if version.is_some() {
                        anyhow::bail!("--version pins one event's replay: give the event id");
                    }
                    let status = status
                        .map(|s| s.parse::<hookhost::model::EventStatus>())
                        .transpose()
                        .map_err(|e| anyhow::anyhow!("--status: {e}"))?;
                    let request = api::ReplayMany {
                        topic,
                        status,
                        since_ms: since,
                        until_ms: until,
                        plugin,
                        limit,
                    };
                    let v = cli::with_progress("replaying", c.replay_many(&request)).await?;
                    cli::print(api.json, &v, cli::counts_table);
                }
            }
        }
        Command::Plugins { api, command } => {
            let c = Client::new(&api.url, api.token)?;
            match command {
                PluginsCommand::List => {
                    let v = c.plugins().await?;
                    cli::print(api.json, &v, cli::plugins_table);
                }
                PluginsCommand::Rollback { name, to } => {
                    let v = c.rollback(&name, &api::Rollback { sha256: to }).await?;
                    cli::print(api.json, &v, |p| {
                        format!(
                            "{} now serves {}",
                            p.name,
                            cli::cell(p.serving.as_ref().map(|s| &s.version))
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
                        c.upload_candidate(&name, bytes).await?.version
                    } else {
                        candidate
                    };
                    let request = api::ShadowRequest {
                        version,
                        topic,
                        limit,
                        ..api::ShadowRequest::default()
                    };
                    let v = cli::with_progress("shadow run", c.shadow(&name, &request)).await?;
                    cli::print(api.json, &v, cli::shadow_table);
                }
            }
        }
        Command::DeadLetters { api, command } => {
            let c = Client::new(&api.url, api.token)?;
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
                    let v = c
                        .dead_letters(plugin.as_deref(), limit, cursor.as_deref())
                        .await?;
                    cli::print(api.json, &v, cli::dead_table);
                }
                DeadCommand::Retry {
                    delivery,
                    all,
                    plugin,
                } => match (delivery, all) {
                    (Some(d), false) => {
                        let v = c.retry_dead(&d).await?;
                        cli::print(api.json, &v, cli::counts_table);
                    }
                    (None, true) => {
                        let v = cli::with_progress("retrying", c.retry_all_dead(plugin.as_deref()))
                            .await?;
                        cli::print(api.json, &v, cli::counts_table);
                    }
                    _ => anyhow::bail!("give one delivery id, or --all"),
                },
            }
        }
        Command::Send {
            api,
            topic,
            file,
            key,
            content_type,
        } => {
            let c = Client::new(&api.url, api.token)?;
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
            let v = c
                .send_event(&topic, body, &content_type, key.as_deref())
                .await?;
            cli::print(api.json, &v, |v| {
                let what = if v.duplicate {
                    "already stored as"
                } else {
                    "stored as"
                };
                format!("{what} {}", v.id)
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

/// What `hookhost backup` saved.
#[derive(serde::Serialize)]
struct BackupSaved {
    file: PathBuf,
    records: u64,
    bytes: u64,
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
    config
        .admin_hosts
        .extend(args.admin_hosts.into_iter().filter(|h| !h.is_empty()));
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
