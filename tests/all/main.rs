//! End-to-end tests: one binary, so it links once. Every test runs the real
//! host on 127.0.0.1:0 with sled in a temp dir and real compiled plugins.

mod contracts;
mod effects;
mod exact;
mod flow;
mod fuzz;
mod guard;
mod hoard;
mod hooks;
mod ingest;
mod lifecycle;
mod limits;
mod loading;
mod metrics;
mod outbound;
mod outbox;
mod recovery;
mod redrive;
mod reload;
mod sandbox;
mod schedules;
mod settings;
mod shadow;
