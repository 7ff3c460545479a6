//! Key layouts of the sled trees. Integers are big-endian so that byte order
//! is numeric order: events iterate by time, due entries by due time.

use crate::model::DeliveryId;
use ulid::Ulid;

/// `events` (and an older store's `bodies`): the event's ULID, 16 bytes.
pub fn event(id: Ulid) -> [u8; 16] {
    id.0.to_be_bytes()
}

/// `deliveries`, `running`, `dead`: event ULID then sequence number, 20 bytes,
/// so one event's deliveries share a prefix.
pub fn delivery(id: DeliveryId) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(&event(id.event));
    k[16..].copy_from_slice(&id.seq.to_be_bytes());
    k
}

pub fn parse_delivery(k: &[u8]) -> Option<DeliveryId> {
    let event = u128::from_be_bytes(k.get(..16)?.try_into().ok()?);
    let seq = u32::from_be_bytes(k.get(16..20)?.try_into().ok()?);
    Some(DeliveryId {
        event: Ulid(event),
        seq,
    })
}

pub fn parse_event(k: &[u8]) -> Option<Ulid> {
    Some(Ulid(u128::from_be_bytes(k.get(..16)?.try_into().ok()?)))
}

/// `attempts`: delivery key then attempt number; `journal`: delivery key
/// then call index.
pub fn attempt(id: DeliveryId, number: u32) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..20].copy_from_slice(&delivery(id));
    k[20..].copy_from_slice(&number.to_be_bytes());
    k
}

/// `due`: due time (ms) then delivery key; the value is the plugin name.
pub fn due(at_ms: u64, id: DeliveryId) -> [u8; 28] {
    let mut k = [0u8; 28];
    k[..8].copy_from_slice(&at_ms.to_be_bytes());
    k[8..].copy_from_slice(&delivery(id));
    k
}

pub fn parse_due(k: &[u8]) -> Option<(u64, DeliveryId)> {
    let at = u64::from_be_bytes(k.get(..8)?.try_into().ok()?);
    Some((at, parse_delivery(k.get(8..)?)?))
}

/// `paused`: plugin name, a 0 byte, then the delivery key.
pub fn paused(plugin: &str, id: DeliveryId) -> Vec<u8> {
    let mut k = plugin_prefix(plugin);
    k.extend_from_slice(&delivery(id));
    k
}

/// `ordered`: plugin name, a 0 byte, 16 bytes of the ordering key's
/// sha256, then the delivery key: one key's unfinished deliveries share a
/// prefix and sort in ingest order.
pub fn ordered_prefix(plugin: &str, order_key: &str) -> Vec<u8> {
    use sha2::Digest as _;
    let mut k = plugin_prefix(plugin);
    k.extend_from_slice(&sha2::Sha256::digest(order_key.as_bytes())[..16]);
    k
}

pub fn ordered(plugin: &str, order_key: &str, id: DeliveryId) -> Vec<u8> {
    let mut k = ordered_prefix(plugin, order_key);
    k.extend_from_slice(&delivery(id));
    k
}

/// `kv`: plugin name, a 0 byte, then the user's key.
pub fn kv(plugin: &str, key: &str) -> Vec<u8> {
    let mut k = plugin_prefix(plugin);
    k.extend_from_slice(key.as_bytes());
    k
}

/// Plugin names cannot contain a 0 byte, so this prefix is unambiguous.
pub fn plugin_prefix(plugin: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(plugin.len() + 32);
    k.extend_from_slice(plugin.as_bytes());
    k.push(0);
    k
}

/// A kv value on disk: an 8-byte version (unique, increasing) then the bytes.
pub fn kv_value(version: u64, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + value.len());
    v.extend_from_slice(&version.to_be_bytes());
    v.extend_from_slice(value);
    v
}

pub fn parse_kv_value(v: &[u8]) -> Option<(u64, &[u8])> {
    Some((u64::from_be_bytes(v.get(..8)?.try_into().ok()?), &v[8..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_keys_sort_by_time_and_round_trip() {
        let a = DeliveryId {
            event: Ulid::new(),
            seq: 3,
        };
        let b = DeliveryId {
            event: Ulid::new(),
            seq: 0,
        };
        assert!(due(5, a) < due(6, b));
        assert_eq!(parse_due(&due(42, a)), Some((42, a)));
        assert_eq!(parse_delivery(&delivery(b)), Some(b));
    }
}
