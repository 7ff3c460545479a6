//! Identifiers the other records point by.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use ulid::Ulid;

/// Longest idempotency key, from a sender or an emitting handler.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// One delivery of one event to one plugin: `<event id>-<n>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryId {
    pub event: Ulid,
    pub seq: u32,
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.event, self.seq)
    }
}

impl FromStr for DeliveryId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (event, seq) = s
            .split_once('-')
            .ok_or_else(|| format!("invalid delivery id {s:?}: expected <event id>-<n>"))?;
        Ok(Self {
            event: Ulid::from_string(event)
                .map_err(|e| format!("invalid delivery id {s:?}: {e}"))?,
            seq: seq
                .parse()
                .map_err(|_| format!("invalid delivery id {s:?}: bad sequence number"))?,
        })
    }
}

impl Serialize for DeliveryId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeliveryId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_round_trip_through_text() {
        let id = DeliveryId {
            event: Ulid::new(),
            seq: 7,
        };
        assert_eq!(id.to_string().parse::<DeliveryId>(), Ok(id));
        assert!("nonsense".parse::<DeliveryId>().is_err());
    }
}
