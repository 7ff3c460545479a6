//! How records are written as sled values: JSON, and an event with its
//! body in one value.

use super::StoreError;
use crate::model::EventRecord;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(super) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Our records are plain structs of strings and numbers: serialising them
    // to JSON cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// The first byte of an `events` value that holds its body too. A value
/// without it is a record alone, as JSON, from an older store.
pub(super) const EVENT_WITH_BODY: u8 = 1;

/// An `events` value: the record, encoded in place, and the body.
pub(super) fn event_value(record: &EventRecord, body: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(512 + body.len());
    value.push(EVENT_WITH_BODY);
    value.extend_from_slice(&[0; 4]);
    // A plain struct of strings and numbers: serialising it cannot fail.
    let _ = serde_json::to_writer(&mut value, record);
    // A record is a few hundred bytes of JSON; its length always fits.
    let len = (value.len() - 5) as u32;
    value[1..5].copy_from_slice(&len.to_be_bytes());
    value.extend_from_slice(body);
    value
}

/// An `events` value's record, and its body if the value holds it (`None`:
/// an older store's value, whose body is in `bodies`).
pub(super) fn decode_event(value: &[u8]) -> Result<(EventRecord, Option<&[u8]>), StoreError> {
    let Some((&EVENT_WITH_BODY, rest)) = value.split_first() else {
        return Ok((decode("events", value)?, None));
    };
    let split = rest
        .split_first_chunk::<4>()
        .map(|(len, rest)| (u32::from_be_bytes(*len) as usize, rest))
        .filter(|(len, rest)| *len <= rest.len());
    let Some((len, rest)) = split else {
        return Err(StoreError::Corrupt {
            tree: "events",
            message: "an event value shorter than its record's length".into(),
        });
    };
    let (record, body) = rest.split_at(len);
    Ok((decode("events", record)?, Some(body)))
}

pub(super) fn decode<T: DeserializeOwned>(
    tree: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        tree,
        message: e.to_string(),
    })
}
