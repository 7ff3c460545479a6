//! Turns on contended kv keys: after a kv conflict, an attempt re-runs only
//! while it holds this host's turn on every key it read, so attempts on one
//! hot key (a counter every event increments) run one at a time per host
//! instead of all at once, invalidating each other.
//!
//! A first run takes no turn: keys nobody contends cost nothing. Across
//! hosts sharing a database, at most one attempt per host contends for a
//! key; with every attempt on it re-running at once, three hosts settled
//! about 27 events/s on one key (`cargo run --release -p hookhost-bench
//! --bin hotkey`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{Mutex as Turn, OwnedMutexGuard};

/// Keys kept at most before those nobody holds or waits for are dropped.
const KEEP: usize = 1024;

/// A plugin's kv key.
type Key = (String, String);

#[derive(Default)]
pub struct Turns {
    keys: Mutex<HashMap<Key, Arc<Turn<()>>>>,
}

/// Turns held on keys: given back when dropped.
pub type Held = Vec<OwnedMutexGuard<()>>;

impl Turns {
    /// Waits for this host's turn on each of `plugin`'s `keys` (in key
    /// order, so two attempts never wait for each other's).
    pub async fn take<'a>(&self, plugin: &str, keys: impl IntoIterator<Item = &'a str>) -> Held {
        let mut keys: Vec<&str> = keys.into_iter().collect();
        keys.sort_unstable();
        keys.dedup();
        let turns: Vec<Arc<Turn<()>>> = {
            let mut map = match self.keys.lock() {
                Ok(m) => m,
                Err(poisoned) => poisoned.into_inner(),
            };
            if map.len() >= KEEP {
                // Held or waited for: referenced beyond the map.
                map.retain(|_, turn| Arc::strong_count(turn) > 1);
            }
            keys.iter()
                .map(|k| {
                    map.entry((plugin.to_owned(), (*k).to_owned()))
                        .or_default()
                        .clone()
                })
                .collect()
        };
        let mut held = Vec::with_capacity(turns.len());
        for turn in turns {
            held.push(turn.lock_owned().await);
        }
        held
    }

    /// Keys with a turn kept now.
    #[cfg(test)]
    pub fn kept(&self) -> usize {
        self.keys.lock().map_or(0, |m| m.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_s_turn_is_held_by_one_attempt_at_a_time() {
        let turns = Turns::default();
        let first = turns.take("counter", ["count", "other"]).await;
        // Another key of the plugin, or the same key of another plugin: no
        // wait.
        let apart = turns.take("counter", ["elsewhere"]).await;
        let other_plugin = turns.take("tally", ["count"]).await;
        // The same key waits until the first turn is given back.
        let waiting = turns.take("counter", ["count"]);
        tokio::pin!(waiting);
        assert!(
            futures_util::poll!(waiting.as_mut()).is_pending(),
            "a held key's turn is not given twice"
        );
        drop(first);
        let second = waiting.await;
        assert_eq!(second.len(), 1);
        drop((apart, other_plugin, second));
    }

    #[tokio::test]
    async fn keys_nobody_holds_are_not_kept_forever() {
        let turns = Turns::default();
        let held = turns.take("p", ["kept"]).await;
        for n in 0..KEEP * 3 {
            let key = format!("k{n}");
            drop(turns.take("p", [key.as_str()]).await);
        }
        assert!(turns.kept() <= KEEP, "{} keys kept", turns.kept());
        // A held turn survives the pruning: its key still waits.
        let waiting = turns.take("p", ["kept"]);
        tokio::pin!(waiting);
        assert!(futures_util::poll!(waiting.as_mut()).is_pending());
        drop(held);
        waiting.await;
    }
}
