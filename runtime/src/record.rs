//! The bound on one attempt's record: whatever a handler does, the record
//! stored for its attempt is at most [`MAX_RECORD_BYTES`] of JSON.
//!
//! The record is cut into shares, each with a fixed allowance of JSON bytes
//! (escaping counted, so a line of control characters cannot grow six times
//! past it): the outcome's message, stdout, stderr, log lines, and the lists
//! of kv reads, kv writes, emitted events and HTTP calls together, and the
//! clock and random reads (bounded in count where they are made). A list
//! keeps its first entries while they fit and leaves the rest out, counted
//! and hashed in [`Omitted`], so a shadow run can still compare two runs
//! whole. The shares add up to less than the bound, leaving room for the
//! record's fixed fields.
//!
//! # Invariant
//! Entries are admitted while the attempt runs (kv reads, log lines), so the
//! host never holds more of them than the record keeps: a handler cannot grow
//! the host's memory through its record.

use crate::model::{Omitted, Tail};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// The most JSON one attempt's record takes.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;
/// JSON bytes for the outcome's message (a retry, reject or trap text).
pub const MESSAGE_SHARE: usize = 8 * 1024;
/// JSON bytes for each of stdout and stderr.
pub const STDIO_SHARE: usize = 48 * 1024;
/// JSON bytes for the log lines (`LOG_CAP_BYTES`).
pub const LOG_SHARE: usize = crate::model::LOG_CAP_BYTES;
/// JSON bytes for kv reads, kv writes, emitted events and HTTP calls together.
pub const EFFECTS_SHARE: usize = 64 * 1024;
/// JSON bytes the clock and random reads take at most (`model::Inputs`).
pub const INPUTS_SHARE: usize = 8 * 1024;
const _: () = {
    use crate::model::{MAX_MONOTONIC_READS, MAX_WALL_READS};
    // Each read is at most 20 digits and a comma; the random stream's seed
    // is 44 bytes of base64 and its length at most 20 digits; the keys and
    // `truncated` take the rest.
    let reads = (MAX_WALL_READS + MAX_MONOTONIC_READS) * 21 + 44 + 20;
    assert!(reads + 128 <= INPUTS_SHARE);
    // The shares leave room for the record's fixed fields.
    let shares = MESSAGE_SHARE + 2 * STDIO_SHARE + LOG_SHARE + EFFECTS_SHARE + INPUTS_SHARE;
    assert!(shares + 16 * 1024 <= MAX_RECORD_BYTES);
};
/// JSON bytes of one log line's frame (`{"level":"trace","message":,"fields":[]},`).
pub const LOG_LINE_FRAME: usize = 48;
/// JSON bytes of one field's frame (`[,],`) beside its quoted key and value.
pub const LOG_FIELD_FRAME: usize = 4;
/// Fields kept per log line.
pub const MAX_LOG_FIELDS: usize = 64;
/// Longest error text kept for one HTTP call.
const HTTP_ERROR_SHARE: usize = 512;

/// Bytes `text` takes as a JSON string, quotes included.
pub fn json_len(text: &str) -> usize {
    2 + text.chars().map(escaped_len).sum::<usize>()
}

fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if c < ' ' => 6,
        c => c.len_utf8(),
    }
}

/// Cuts `text` so it takes at most `max` bytes as a JSON string, marking a
/// cut with `…`. Returns whether it cut.
pub fn cut_json(text: &mut String, max: usize) -> bool {
    if json_len(text) <= max {
        return false;
    }
    let room = max.saturating_sub(2 + '…'.len_utf8());
    let mut used = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        used += escaped_len(c);
        if used > room {
            break;
        }
        end = i + c.len_utf8();
    }
    text.truncate(end);
    text.push('…');
    true
}

/// Which list of the record an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    KvReads,
    KvWrites,
    Emitted,
    Http,
}

/// The effects share of one record: admits entries while they fit, then
/// counts and hashes the rest per list.
pub struct Budget {
    left: usize,
    tails: [Option<(u64, Sha256)>; 4],
    log_lines: u64,
}

impl Budget {
    pub fn new() -> Self {
        Self {
            left: EFFECTS_SHARE,
            tails: Default::default(),
            log_lines: 0,
        }
    }

    /// Whether `entry` fits in what is left; if not, it is counted and
    /// hashed as left out of `list`.
    pub fn admit<T: Serialize>(&mut self, list: List, entry: &T) -> bool {
        let json = serde_json::to_vec(entry).unwrap_or_default();
        let size = json.len() + 1;
        let slot = &mut self.tails[list as usize];
        // Once a list leaves an entry out, it keeps the rest out too: the
        // kept entries stay a prefix, in order.
        if slot.is_none() && size <= self.left {
            self.left -= size;
            return true;
        }
        let (count, hasher) = slot.get_or_insert_with(|| (0, Sha256::new()));
        *count += 1;
        hasher.update((json.len() as u64).to_be_bytes());
        hasher.update(&json);
        false
    }

    /// Keeps the entries of `list` that fit, in order.
    pub fn keep<T: Serialize>(&mut self, list: List, entries: Vec<T>) -> Vec<T> {
        entries
            .into_iter()
            .filter(|entry| self.admit(list, entry))
            .collect()
    }

    /// Counts a log line left out.
    pub fn omit_log_line(&mut self) {
        self.log_lines += 1;
    }

    /// What was left out, if anything.
    pub fn omitted(self) -> Option<Omitted> {
        let [kv_reads, kv_writes, emitted, http] = self.tails.map(|tail| {
            tail.map(|(count, hasher)| Tail {
                count,
                sha256: hex::encode(hasher.finalize()),
            })
        });
        let omitted = Omitted {
            log_lines: self.log_lines,
            kv_reads,
            kv_writes,
            emitted,
            http,
        };
        (omitted != Omitted::default()).then_some(omitted)
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self::new()
    }
}

/// Cuts an HTTP call's error text to its share.
pub fn cut_http_error(error: &mut String) {
    cut_json(error, HTTP_ERROR_SHARE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_len_counts_escapes_as_serde_json_writes_them() {
        for text in [
            "",
            "plain",
            "quote \" and \\",
            "\u{0}\u{1}\n\t",
            "é✓😀",
            "\u{7f}",
        ] {
            let json = serde_json::to_string(text).expect("json");
            assert_eq!(json_len(text), json.len(), "{text:?}");
        }
    }

    #[test]
    fn a_cut_text_fits_its_share_as_json() {
        for (text, max) in [
            ("\u{1}".repeat(10_000), 100),
            ("é".repeat(10_000), 101),
            ("x".repeat(10), 100),
        ] {
            let mut cut = text.clone();
            let was_cut = cut_json(&mut cut, max);
            assert!(serde_json::to_string(&cut).expect("json").len() <= max);
            assert_eq!(was_cut, cut != text);
        }
    }

    #[test]
    fn a_budget_keeps_a_prefix_and_hashes_the_rest() {
        let mut budget = Budget::new();
        let entries: Vec<String> = (0..10_000).map(|i| format!("entry {i:05}")).collect();
        let kept = budget.keep(List::KvWrites, entries.clone());
        assert!(!kept.is_empty() && kept.len() < entries.len());
        assert_eq!(kept[..], entries[..kept.len()]);
        let kept_json = serde_json::to_vec(&kept).expect("json").len();
        assert!(kept_json <= EFFECTS_SHARE, "{kept_json}");
        let omitted = budget.omitted().expect("omitted");
        let tail = omitted.kv_writes.expect("tail");
        assert_eq!(tail.count as usize, entries.len() - kept.len());

        // The same entries hash the same; a change past the kept ones shows.
        let mut changed = entries;
        changed[9_999].push('!');
        let mut other = Budget::new();
        other.keep(List::KvWrites, changed);
        let other_tail = other.omitted().and_then(|o| o.kv_writes).expect("tail");
        assert_eq!(other_tail.count, tail.count);
        assert_ne!(other_tail.sha256, tail.sha256);
    }

    #[test]
    fn nothing_left_out_is_no_omitted_record() {
        let mut budget = Budget::new();
        assert!(budget.admit(List::Http, &"small"));
        assert_eq!(budget.omitted(), None);
    }
}
