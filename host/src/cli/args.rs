//! The `hookhost` command line: every subcommand and flag (clap). The
//! binary (`main.rs`) parses it and runs the command.

use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "hookhost",
    version,
    about = "Durable webhooks, sandboxed WebAssembly handlers"
)]
pub struct Cli {
    /// Log format.
    #[arg(long, env = "HOOKHOST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Export spans over OTLP/HTTP to this endpoint, e.g.
    /// `http://127.0.0.1:4318/v1/traces` (needs a build with `--features otlp`).
    #[arg(long, env = "HOOKHOST_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Replay one event (`replay <id>`) or every event matching a filter;
    /// `replay --exact <id>` re-executes a recorded attempt offline instead.
    Replay {
        #[command(flatten)]
        api: ApiArgs,
        /// The event to replay; without it, the filter below picks events.
        event: Option<String>,
        /// Re-execute the event's recorded attempt offline with what it read
        /// (kv values, journaled calls, clocks, random), compare it byte for
        /// byte, and exit 1 when it diverged. Commits nothing.
        #[arg(long, requires = "event")]
        exact: bool,
        /// With --exact: this attempt of the delivery (default: its last).
        #[arg(long, requires = "exact")]
        attempt: Option<u32>,
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
        #[arg(long, alias = "since-ms", value_parser = super::when)]
        since: Option<u64>,
        /// Received before: as --since.
        #[arg(long, alias = "until-ms", value_parser = super::when)]
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
        lang: crate::scaffold::Lang,
        /// Path to the Rust SDK (default: the one this binary was built with).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

/// How the client commands reach the host.
#[derive(clap::Args, Clone)]
pub struct ApiArgs {
    /// The host's address.
    #[arg(
        long,
        env = "HOOKHOST_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// The admin bearer token.
    #[arg(long, env = "HOOKHOST_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Which events: `events list` and `events export` take the same filters.
#[derive(clap::Args)]
pub struct FilterArgs {
    /// A topic pattern (`shop.order.*`).
    #[arg(long)]
    pub topic: Option<String>,
    /// `unrouted`, `pending`, `succeeded` or `dead`.
    #[arg(long)]
    pub status: Option<String>,
    /// Only events delivered to this plugin.
    #[arg(long)]
    pub plugin: Option<String>,
    /// Received at or after: `2h` (ago), an RFC 3339 time, or epoch ms.
    #[arg(long, alias = "since-ms", value_parser = super::when)]
    pub since: Option<u64>,
    /// Received before: as --since.
    #[arg(long, alias = "until-ms", value_parser = super::when)]
    pub until: Option<u64>,
}

impl From<FilterArgs> for crate::api::EventFilter {
    fn from(f: FilterArgs) -> Self {
        Self {
            topic: f.topic,
            status: f.status,
            plugin: f.plugin,
            since_ms: f.since,
            until_ms: f.until,
        }
    }
}

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Newest first.
    List {
        #[command(flatten)]
        filter: FilterArgs,
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
        #[command(flatten)]
        filter: FilterArgs,
        /// Only `jsonl` for now.
        #[arg(long, default_value = "jsonl")]
        format: String,
    },
}

#[derive(Subcommand)]
pub enum PluginsCommand {
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
pub enum DeadCommand {
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
pub struct ServeArgs {
    /// Configuration file (default: ./hookhost.toml when it exists).
    #[arg(long, env = "HOOKHOST_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "HOOKHOST_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data directory of the embedded store (default ./data).
    #[arg(long, env = "HOOKHOST_DATA")]
    pub data: Option<PathBuf>,
    /// Directory of plugin components (default ./plugins).
    #[arg(long, env = "HOOKHOST_PLUGINS")]
    pub plugins: Option<PathBuf>,
    /// Serve the admin API on a non-loopback address without a token.
    #[arg(long, env = "HOOKHOST_ALLOW_PUBLIC_ADMIN")]
    pub allow_public_admin: bool,
    /// A host name the admin API answers to, besides those in `admin_hosts`
    /// (the public name a TLS proxy forwards); repeat it, or give a comma
    /// list in the environment.
    #[arg(
        long = "admin-host",
        env = "HOOKHOST_ADMIN_HOSTS",
        value_delimiter = ','
    )]
    pub admin_hosts: Vec<String>,
    /// Name of the environment variable holding the admin token (overrides
    /// `admin_token_env` in the file).
    #[arg(long, env = "HOOKHOST_ADMIN_TOKEN_ENV")]
    pub admin_token_env: Option<String>,
    /// Accept events on `/events/{topic}` from anyone who reaches a
    /// non-loopback address, without an ingest token.
    #[arg(long, env = "HOOKHOST_ALLOW_PUBLIC_INGEST")]
    pub allow_public_ingest: bool,
    /// Name of the environment variable holding the ingest token (overrides
    /// `ingest_token_env` in the file).
    #[arg(long, env = "HOOKHOST_INGEST_TOKEN_ENV")]
    pub ingest_token_env: Option<String>,
}
