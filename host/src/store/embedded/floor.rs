//! Where the dispatcher's scan of `due` starts.
//!
//! A claimed delivery keeps its `due` entry until its record commits (see the
//! module's invariants), and the scan leaves claimed entries out. Under load
//! hundreds of claims sit at the head of `due`: attempts running, and results
//! waiting for their batch. Scanning from the first key, every pass of the
//! dispatcher stepped over all of them again; with one pass per attempt
//! ended, that was a tenth of the host's CPU in `cargo run --release -p
//! hookhost-bench --bin load` (`perf`).
//!
//! The floor is a `due` key below which every entry is claimed. A scan
//! starts at it and moves it up to the first unclaimed entry it meets. Every
//! change that can put an unclaimed entry below the floor lowers it, after
//! the change is visible: a commit that adds `due` entries (ingest, a retry,
//! a replay, a resume), and a claim given up without its record. A lowering
//! during a scan voids that scan's raise, so an entry the scan had already
//! passed is not skipped.

use super::keys;
use crate::model::DeliveryId;
use std::sync::Mutex;

/// A `due` key.
pub type DueKey = [u8; 28];

#[derive(Default)]
pub struct Floor {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Every entry below it is claimed; `None`: scan from the first.
    key: Option<DueKey>,
    /// Lowerings so far: a scan's raise stands only if none came meanwhile.
    lowered: u64,
}

/// Where a scan starts, and what it needs to raise the floor afterwards.
pub struct Scan {
    pub from: Option<DueKey>,
    lowered: u64,
}

impl Floor {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Starts a scan.
    pub fn scan(&self) -> Scan {
        let s = self.state();
        Scan {
            from: s.key,
            lowered: s.lowered,
        }
    }

    /// Ends `scan`: every entry below `key` was claimed when it was read.
    /// Ignored if the floor was lowered since the scan started.
    pub fn raise(&self, scan: &Scan, key: DueKey) {
        let mut s = self.state();
        if s.lowered == scan.lowered && s.key.is_none_or(|k| k < key) {
            s.key = Some(key);
        }
    }

    /// An entry at `key` may be due and unclaimed: the next scan reaches it.
    /// Call once the change that made it so is visible to readers.
    pub fn lower(&self, key: DueKey) {
        let mut s = self.state();
        s.lowered += 1;
        if s.key.is_some_and(|k| key < k) {
            s.key = Some(key);
        }
    }

    /// [`Floor::lower`] for the entry of delivery `id` due at `at_ms`.
    pub fn lower_to(&self, at_ms: u64, id: DeliveryId) {
        self.lower(keys::due(at_ms, id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ulid::Ulid;

    fn key(at: u64) -> DueKey {
        keys::due(
            at,
            DeliveryId {
                event: Ulid(1),
                seq: 0,
            },
        )
    }

    #[test]
    fn a_scan_raises_the_floor_and_a_lowering_brings_it_back() {
        let floor = Floor::default();
        assert_eq!(floor.scan().from, None);
        let scan = floor.scan();
        floor.raise(&scan, key(10));
        assert_eq!(floor.scan().from, Some(key(10)));
        floor.lower(key(12));
        assert_eq!(
            floor.scan().from,
            Some(key(10)),
            "above the floor: no change"
        );
        floor.lower(key(4));
        assert_eq!(floor.scan().from, Some(key(4)));
    }

    #[test]
    fn a_lowering_during_a_scan_voids_its_raise() {
        let floor = Floor::default();
        let scan = floor.scan();
        // An entry the scan had already passed became unclaimed.
        floor.lower(key(3));
        floor.raise(&scan, key(10));
        assert_eq!(floor.scan().from, None);
        let scan = floor.scan();
        floor.raise(&scan, key(10));
        assert_eq!(floor.scan().from, Some(key(10)));
    }

    #[test]
    fn a_raise_never_moves_the_floor_down() {
        let floor = Floor::default();
        let scan = floor.scan();
        floor.raise(&scan, key(10));
        let scan = floor.scan();
        floor.raise(&scan, key(5));
        assert_eq!(floor.scan().from, Some(key(10)));
    }
}
