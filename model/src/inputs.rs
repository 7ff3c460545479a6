//! What an attempt read from the world outside its event, kv and journal:
//! its clock and secure random reads, in order, kept with its record so an
//! exact replay can give the handler the same values again.
//!
//! `wasi:random/insecure` and `insecure-seed` need no record: their seed is
//! derived from the delivery and attempt number ([`insecure_seed`]), so a
//! replay draws the same values.

use serde::{Deserialize, Serialize};

/// Wall-clock reads kept per attempt.
pub const MAX_WALL_READS: usize = 128;
/// Monotonic-clock reads kept per attempt.
pub const MAX_MONOTONIC_READS: usize = 128;
/// Secure random bytes kept per attempt.
pub const MAX_RANDOM_BYTES: usize = 1536;

/// An attempt's clock and random reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    /// `wasi:clocks/wall-clock` reads, in ns since the Unix epoch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wall_ns: Vec<u64>,
    /// `wasi:clocks/monotonic-clock` reads, in ns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monotonic_ns: Vec<u64>,
    /// `wasi:random/random` bytes, base64, in the order they were drawn.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub random: String,
    /// Reads went past the bounds above: they were not kept, so a replay
    /// cannot be exact past them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl Inputs {
    /// Whether nothing was read.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The `wasi:random/insecure` seed of attempt `number` of `delivery`.
pub fn insecure_seed(delivery: &str, number: u32) -> u128 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::new()
        .chain_update(delivery.as_bytes())
        .chain_update(number.to_be_bytes())
        .finalize();
    let mut seed = [0u8; 16];
    seed.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(seed)
}
