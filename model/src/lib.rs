//! The records Hookhost keeps: events, deliveries and attempts.
//!
//! These are plain data shared by the host's `store/` (which persists them),
//! `dispatch/` (which moves deliveries through their states), `runtime/`
//! (which produces attempt outcomes) and `http/` (which shows them), where
//! they are `hookhost::model`. This crate depends on serde and hashing only:
//! the compiler keeps sled, PostgreSQL and wasmtime out of it.
//!
//! Beside the records are the plain settings that several layers share: a
//! plugin's resolved limits ([`PluginLimits`]), its outbound rules
//! ([`HostRule`]), cron expressions ([`Cron`]), plugin names and topic
//! reservations ([`Reserved`]). Keeping them here, below the configuration,
//! the runtime and the scheduler, is what lets those three import them
//! without importing each other.

mod attempt;
mod cron;
mod delivery;
mod effects;
mod event;
mod ids;
mod inputs;
mod journal;
mod limits;
mod outbox;
mod plugin;
mod topics;

pub use attempt::*;
pub use cron::*;
pub use delivery::*;
pub use effects::*;
pub use event::*;
pub use ids::*;
pub use inputs::*;
pub use journal::*;
pub use limits::*;
pub use outbox::*;
pub use plugin::*;
pub use topics::*;

/// Milliseconds since the Unix epoch, the host's one time unit on disk.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
