//! The `hookhost` binary: parses flags and calls [`hookhost::run`].

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use hookhost::Config;
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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Check { file } => runtime.block_on(check(&file)),
    }
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
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    hookhost::run(config, listener, shutdown_signal()).await
}

async fn check(file: &Path) -> anyhow::Result<()> {
    let report = hookhost::runtime::check_file(file).await?;
    #[allow(clippy::print_stdout)]
    {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
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

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOOKHOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
