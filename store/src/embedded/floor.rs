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
//! starts at it and moves it up to the first unclaimed entry it meets. It
//! also keeps the unclaimed entries it returned (its run), between which
//! every entry is claimed: as the dispatcher claims them in order, the floor
//! follows. Every change that can put an unclaimed entry at a key lowers the
//! floor to that key, after the change is visible: a commit that adds `due`
//! entries (ingest, a retry, a replay, a resume), and a claim given up
//! without its record. The run stops before the key. A lowering while a scan
//! runs may be for an entry the scan had already passed, so that scan's
//! raise stays at or below it. Ingest adds entries at the end of `due`, above
//! the run, so it neither moves the floor nor cuts the run short.

use super::keys;
use crate::model::DeliveryId;
use std::collections::VecDeque;
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
    /// Scans started so far: only the latest may raise the floor.
    scans: u64,
    /// The lowest key lowered to since the latest scan started.
    lowest: Option<DueKey>,
    /// Unclaimed entries at and above the floor, in order, with only
    /// claimed entries between them: the rest of the last scan's run.
    run: VecDeque<DueKey>,
}

/// Where a scan starts, and what it needs to raise the floor afterwards.
pub struct Scan {
    pub from: Option<DueKey>,
    id: u64,
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
        let mut s = self.state();
        s.scans += 1;
        s.lowest = None;
        Scan {
            from: s.key,
            id: s.scans,
        }
    }

    /// Ends `scan`: every entry below `key` was claimed when it was read,
    /// and `run` are the unclaimed entries it returned, in order (`key`
    /// first, if any), with only claimed entries between them. An entry
    /// lowered to while the scan ran may lie anywhere the scan had passed:
    /// the floor stays at or below it, and the run stops before it.
    pub fn raise(&self, scan: &Scan, key: DueKey, run: Vec<DueKey>) {
        let mut s = self.state();
        if s.scans != scan.id {
            return;
        }
        let mut key = key;
        let mut run: VecDeque<DueKey> = run.into();
        if let Some(lowest) = s.lowest {
            if lowest < key {
                key = lowest;
                run.clear();
            } else {
                run.retain(|r| *r < lowest);
            }
        }
        if s.key.is_none_or(|k| k <= key) {
            s.key = Some(key);
            s.run = run;
        }
    }

    /// The entry at `key` was claimed: if it is the floor, the floor moves
    /// on to the next entry of the run, or just past `key`.
    pub fn claimed(&self, key: DueKey) {
        let mut s = self.state();
        if s.key != Some(key) || s.run.front() != Some(&key) {
            return;
        }
        s.run.pop_front();
        s.key = Some(match s.run.front() {
            Some(next) => *next,
            None => successor(key),
        });
    }

    /// An entry at `key` may be due and unclaimed: the next scan reaches it.
    /// Call once the change that made it so is visible to readers.
    pub fn lower(&self, key: DueKey) {
        let mut s = self.state();
        s.lowest = Some(s.lowest.map_or(key, |l| l.min(key)));
        if s.key.is_some_and(|k| key < k) {
            s.key = Some(key);
            s.run.clear();
        } else {
            s.run.retain(|r| *r < key);
        }
    }

    /// [`Floor::lower`] for the entry of delivery `id` due at `at_ms`.
    pub fn lower_to(&self, at_ms: u64, id: DeliveryId) {
        self.lower(keys::due(at_ms, id));
    }
}

/// The least key greater than `key` (of the same length).
fn successor(mut key: DueKey) -> DueKey {
    for byte in key.iter_mut().rev() {
        if *byte == u8::MAX {
            *byte = 0;
        } else {
            *byte += 1;
            return key;
        }
    }
    [u8::MAX; 28]
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
        floor.raise(&scan, key(10), vec![key(10)]);
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
    fn a_lowering_during_a_scan_keeps_the_floor_at_or_below_it() {
        let floor = Floor::default();
        let scan = floor.scan();
        // An entry the scan had already passed became unclaimed.
        floor.lower(key(3));
        floor.raise(&scan, key(10), vec![key(10)]);
        assert_eq!(floor.scan().from, Some(key(3)));
        // One above where the scan stopped: the floor moves, the run stops.
        let scan = floor.scan();
        floor.lower(key(12));
        floor.raise(&scan, key(10), vec![key(10), key(11), key(14)]);
        assert_eq!(floor.scan().from, Some(key(10)));
        floor.claimed(key(10));
        floor.claimed(key(11));
        let from = floor.scan().from.expect("a floor");
        assert!(
            from > key(11) && from <= key(12),
            "stops before the lowered entry"
        );
    }

    #[test]
    fn a_raise_never_moves_the_floor_down() {
        let floor = Floor::default();
        let scan = floor.scan();
        floor.raise(&scan, key(10), vec![key(10)]);
        let scan = floor.scan();
        floor.raise(&scan, key(5), vec![key(5)]);
        assert_eq!(floor.scan().from, Some(key(10)));
    }

    #[test]
    fn claiming_the_run_in_order_moves_the_floor_along_it() {
        let floor = Floor::default();
        let scan = floor.scan();
        floor.raise(&scan, key(10), vec![key(10), key(12), key(15)]);
        floor.claimed(key(12));
        assert_eq!(floor.scan().from, Some(key(10)), "out of order: no move");
        floor.claimed(key(10));
        assert_eq!(floor.scan().from, Some(key(12)));
        floor.claimed(key(12));
        floor.claimed(key(15));
        assert_eq!(floor.scan().from, Some(successor(key(15))));
        assert!(successor(key(15)) > key(15) && successor(key(15)) < key(16));
    }

    #[test]
    fn a_lowering_cuts_the_run_short() {
        let floor = Floor::default();
        let scan = floor.scan();
        floor.raise(&scan, key(10), vec![key(10), key(12)]);
        floor.lower(key(11));
        floor.claimed(key(10));
        let from = floor.scan().from.expect("a floor");
        assert!(from > key(10) && from <= key(11));
        // Below the floor: the run is gone, claims no longer move it.
        let scan = floor.scan();
        floor.raise(&scan, key(11), vec![key(11), key(12)]);
        floor.lower(key(5));
        floor.claimed(key(11));
        assert_eq!(floor.scan().from, Some(key(5)));
    }
}
