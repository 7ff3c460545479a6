//! Hookhost: a self-hosted runtime for webhook-driven automation.
//!
//! Events arrive over HTTP, are stored durably in sled before they are
//! acknowledged, and are handed to sandboxed WebAssembly handler components,
//! each attempt bounded by fuel, a deadline and a memory cap and recorded in
//! full.
//!
//! # Layout
//! - [`cli`]: the command-line clients of the admin API, and `hookhost new`.
//! - [`config`]: the one [`Config`](config::Config), from `hookhost.toml` and flags.
//! - [`contracts`]: JSON Schema contracts per topic pattern.
//! - [`model`]: events, deliveries, attempts, outcomes: plain data.
//! - [`store`]: the durable store (crate `hookhost-store`), the only one
//!   that names sled or PostgreSQL.
//! - [`runtime`]: engine, registry, sandboxed attempts, host imports (crate
//!   `hookhost-runtime`, the only one that names wasmtime).
//! - [`reload`]: loading plugin files into the registry.
//! - [`dispatch`]: claiming due deliveries, running attempts, retries.
//! - [`schedule`]: cron-driven events, fired once per tick across restarts.
//! - [`shadow`]: running a candidate version on recorded events, effects
//!   captured, and comparing it with the live version.
//! - [`sources`]: webhook signature schemes (GitHub, Stripe, Standard
//!   Webhooks, generic HMAC) and topic / idempotency-key derivation.
//! - [`http`]: the axum API.
//! - [`metrics`]: Prometheus metrics for `GET /metrics`.
//! - [`lifecycle`]: retention purges, and reopening a store that failed.
//! - [`run`]: wiring all of it together, and shutting it down in order.
//!
//! # Invariants
//! - Ingest = validate → persist (flushed) → 202; the HTTP handler never
//!   awaits a plugin.
//! - A plugin failure is a recorded outcome, never a host error or crash.
//! - A failed load never replaces a working version.

/// The admin API's requests and answers, and a typed client (`api/`).
pub use hookhost_api as api;
pub mod cli;
pub mod config;
pub mod contracts;
pub mod core;
pub mod dev;
pub mod dispatch;
pub mod exact;
pub mod harness;
pub mod heap;
pub mod http;
pub mod lifecycle;
pub mod metrics;
/// The records, in a crate of their own (`model/`) so that nothing they hold
/// can reach sled, PostgreSQL or wasmtime.
pub use hookhost_model as model;
pub mod reload;
/// The WebAssembly runtime, in a crate of its own (`runtime/`): the only one
/// that names wasmtime.
pub use hookhost_runtime as runtime;
pub mod scaffold;
pub mod schedule;
mod server;
pub mod shadow;
pub mod sources;
/// The durable store, in a crate of its own (`store/`): the only one that
/// names sled or PostgreSQL.
pub use hookhost_store as store;
pub mod testing;

pub use config::Config;
pub use server::run;
