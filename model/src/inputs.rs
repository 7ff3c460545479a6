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

/// An attempt's clock and random reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    /// `wasi:clocks/wall-clock` reads, in ns since the Unix epoch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wall_ns: Vec<u64>,
    /// `wasi:clocks/monotonic-clock` reads, in ns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monotonic_ns: Vec<u64>,
    /// `wasi:random/random`: the seed (base64, 32 bytes) of the ChaCha20
    /// stream the attempt's secure random bytes were drawn from; an exact
    /// replay draws them again from it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub random_seed: String,
    /// How many bytes the attempt drew from that stream.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub random_bytes: u64,
    /// The secure random bytes themselves, base64, in the order they were
    /// drawn, up to 1 536: what records made before `random_seed` keep.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub random: String,
    /// Reads went past the bounds above: they were not kept, so a replay
    /// cannot be exact past them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Inputs {
    /// Whether nothing was read.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The `wasi:random/insecure` seed of attempt `number` of `delivery`: the
/// same on every host build (plain arithmetic, splitmix64), and cheap.
pub fn insecure_seed(delivery: crate::DeliveryId, number: u32) -> u128 {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let id = u128::from(delivery.event);
    let salt = (u64::from(delivery.seq) << 32) | u64::from(number);
    let high = mix((id >> 64) as u64 ^ salt);
    let low = mix(id as u64 ^ high);
    (u128::from(high) << 64) | u128::from(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_insecure_seed_is_fixed_by_the_delivery_and_the_attempt() {
        let delivery = crate::DeliveryId {
            event: ulid::Ulid::from(7u128 << 64 | 9),
            seq: 1,
        };
        // A replay on another host build must draw the same values.
        assert_eq!(
            insecure_seed(delivery, 1),
            0x15b1_6f97_d4de_b5bf_729d_409a_813e_14bc_u128,
            "{:#x}",
            insecure_seed(delivery, 1)
        );
        assert_ne!(insecure_seed(delivery, 1), insecure_seed(delivery, 2));
    }
}
