//! The attempt's clocks and random, recorded when it runs live and answered
//! from the record when it is replayed exactly.
//!
//! `wasi:clocks` and `wasi:random/random` go through [`Reads`]: live, each
//! clock read is the real clock, kept (up to the bounds in
//! [`crate::model::Inputs`]) for the attempt's record, and the secure random
//! bytes come from a ChaCha20 stream seeded from the system's secure
//! generator at the attempt's first read, whose seed and length the record
//! keeps. Replayed, each clock read returns the recorded value at its place
//! and the random bytes come from the recorded seed again; a read past the
//! record, or fewer reads than recorded, is a divergence. (A record made
//! before the seed keeps the bytes themselves, up to 1 536; its replay
//! answers from them.) The insecure generator and seed come from
//! [`crate::model::insecure_seed`], the same in a replay, so they need no
//! record.

use crate::model::{Inputs, MAX_MONOTONIC_READS, MAX_WALL_READS};
use base64::Engine as _;
use chacha20::ChaCha20Rng;
use rand010::{Rng as _, SeedableRng as _, TryRng};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};

/// One run's clock and random reads, shared by the clocks and generator
/// installed in its WASI context.
#[derive(Clone, Default)]
pub(crate) struct Reads(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    kept: Inputs,
    /// Live: the secure stream, from the first random read on. Seeding it
    /// once per attempt, not drawing each read from the system's generator,
    /// is what lets a record keep every byte an attempt drew: wasmtime-wasi
    /// draws each byte of `get-random-bytes` as a `u32`, so the 2 496 bytes
    /// a Python handler reads on every attempt are 9 984 bytes drawn.
    secure: Option<ChaCha20Rng>,
    replay: Option<Replay>,
    diverged: Option<String>,
}

/// The recorded reads a replay answers from, and how far it has got.
struct Replay {
    wall: Vec<u64>,
    monotonic: Vec<u64>,
    random: Recorded,
    truncated: bool,
    at: [usize; 3],
}

/// The secure random bytes a recorded attempt drew.
enum Recorded {
    /// Its stream's seed, and how many bytes it drew from it.
    Seeded(Box<ChaCha20Rng>, usize),
    /// The bytes themselves (records made before the seed).
    Bytes(Vec<u8>),
}

impl Recorded {
    fn len(&self) -> usize {
        match self {
            Recorded::Seeded(_, len) => *len,
            Recorded::Bytes(bytes) => bytes.len(),
        }
    }
}

const WALL: usize = 0;
const MONOTONIC: usize = 1;
const RANDOM: usize = 2;
const WHAT: [&str; 3] = ["wall-clock reads", "monotonic-clock reads", "random bytes"];

fn base64() -> &'static base64::engine::GeneralPurpose {
    &base64::engine::general_purpose::STANDARD
}

impl Reads {
    /// Reads that answer `recorded`, in order.
    pub fn replaying(recorded: &Inputs) -> Self {
        let seed = base64()
            .decode(&recorded.random_seed)
            .ok()
            .and_then(|seed| <[u8; 32]>::try_from(seed).ok());
        let random = match seed {
            Some(seed) => Recorded::Seeded(
                Box::new(ChaCha20Rng::from_seed(seed)),
                usize::try_from(recorded.random_bytes).unwrap_or(usize::MAX),
            ),
            None => Recorded::Bytes(base64().decode(&recorded.random).unwrap_or_default()),
        };
        let state = State {
            replay: Some(Replay {
                wall: recorded.wall_ns.clone(),
                monotonic: recorded.monotonic_ns.clone(),
                random,
                truncated: recorded.truncated,
                at: [0; 3],
            }),
            ..State::default()
        };
        Self(Arc::new(Mutex::new(state)))
    }

    /// Installs the clocks and generators in `wasi`; `seed` seeds the
    /// insecure ones.
    pub fn install(&self, wasi: &mut WasiCtxBuilder, seed: u128) {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(&seed.to_be_bytes());
        bytes[16..].copy_from_slice(&seed.to_le_bytes());
        wasi.wall_clock(Wall(self.clone()))
            .monotonic_clock(Monotonic(self.clone()))
            .secure_random(Random(self.clone()))
            .insecure_random(rand010::rngs::StdRng::from_seed(bytes))
            .insecure_random_seed(seed);
    }

    /// What this run read, for its record (`None` when nothing), and, for a
    /// replay, where it read otherwise than the record.
    pub fn finish(&self) -> (Option<Inputs>, Option<String>) {
        let Ok(mut state) = self.0.lock() else {
            return (None, Some("the reads' record was poisoned".into()));
        };
        let kept = std::mem::take(&mut state.kept);
        let mut diverged = state.diverged.take();
        if let Some(replay) = &state.replay
            && diverged.is_none()
        {
            let recorded = [
                replay.wall.len(),
                replay.monotonic.len(),
                replay.random.len(),
            ];
            for i in [WALL, MONOTONIC, RANDOM] {
                if replay.at[i] < recorded[i] {
                    diverged = Some(format!(
                        "the replay took {} {}, the recorded attempt {}",
                        replay.at[i], WHAT[i], recorded[i]
                    ));
                    break;
                }
            }
        }
        ((!kept.is_empty()).then_some(kept), diverged)
    }

    /// The next value of `kind`: the recorded one when replaying, else
    /// `live`, kept while under `max`.
    fn clock(&self, kind: usize, max: usize, live: u64) -> u64 {
        let Ok(mut state) = self.0.lock() else {
            return live;
        };
        let state = &mut *state;
        if let Some(replay) = &mut state.replay {
            let recorded = if kind == WALL {
                &replay.wall
            } else {
                &replay.monotonic
            };
            if let Some(&value) = recorded.get(replay.at[kind]) {
                replay.at[kind] += 1;
                return value;
            }
            replay.at[kind] += 1;
            state
                .diverged
                .get_or_insert_with(|| past_the_record(kind, replay));
            return live;
        }
        let kept = if kind == WALL {
            &mut state.kept.wall_ns
        } else {
            &mut state.kept.monotonic_ns
        };
        if kept.len() < max {
            kept.push(live);
        } else {
            state.kept.truncated = true;
        }
        live
    }

    fn fill(&self, dst: &mut [u8]) {
        let Ok(mut state) = self.0.lock() else {
            rand010::fill(dst);
            return;
        };
        let state = &mut *state;
        if let Some(replay) = &mut state.replay {
            let from = replay.at[RANDOM];
            replay.at[RANDOM] += dst.len();
            let past = replay.at[RANDOM] > replay.random.len();
            match &mut replay.random {
                // Past the recorded length the stream goes on as the
                // recorded attempt's would have; the replay still diverged.
                Recorded::Seeded(stream, _) => stream.fill_bytes(dst),
                Recorded::Bytes(bytes) => match bytes.get(from..from + dst.len()) {
                    Some(recorded) => dst.copy_from_slice(recorded),
                    None => rand010::fill(dst),
                },
            }
            if past {
                state
                    .diverged
                    .get_or_insert_with(|| past_the_record(RANDOM, replay));
            }
            return;
        }
        let kept = &mut state.kept;
        let stream = state.secure.get_or_insert_with(|| {
            let mut seed = [0u8; 32];
            rand010::fill(&mut seed);
            kept.random_seed = base64().encode(seed);
            ChaCha20Rng::from_seed(seed)
        });
        stream.fill_bytes(dst);
        kept.random_bytes += dst.len() as u64;
    }
}

fn past_the_record(kind: usize, replay: &Replay) -> String {
    let seeded = matches!(replay.random, Recorded::Seeded(..));
    if replay.truncated && !(kind == RANDOM && seeded) {
        format!(
            "the replay took {} past what the recorded attempt's record kept",
            WHAT[kind]
        )
    } else {
        format!(
            "the replay took more {} than the recorded attempt ({})",
            WHAT[kind],
            [
                replay.wall.len(),
                replay.monotonic.len(),
                replay.random.len()
            ][kind]
        )
    }
}

struct Wall(Reads);

impl HostWallClock for Wall {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        let live = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Duration::from_nanos(self.0.clock(WALL, MAX_WALL_READS, live))
    }
}

struct Monotonic(Reads);

impl HostMonotonicClock for Monotonic {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        let live = START.get_or_init(Instant::now).elapsed().as_nanos() as u64;
        self.0.clock(MONOTONIC, MAX_MONOTONIC_READS, live)
    }
}

struct Random(Reads);

impl TryRng for Random {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0; 4];
        self.0.fill(&mut bytes);
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0; 8];
        self.0.fill(&mut bytes);
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_answers_the_recorded_reads_and_says_where_it_read_otherwise() {
        let live = Reads::default();
        let (wall, mono) = (Wall(live.clone()), Monotonic(live.clone()));
        let mut random = Random(live.clone());
        let read = (
            wall.now(),
            mono.now(),
            random.try_next_u64().expect("random"),
        );
        let (kept, diverged) = live.finish();
        let kept = kept.expect("reads kept");
        assert_eq!(diverged, None);
        assert_eq!((kept.wall_ns.len(), kept.monotonic_ns.len()), (1, 1));

        let replay = Reads::replaying(&kept);
        let (wall, mono) = (Wall(replay.clone()), Monotonic(replay.clone()));
        let mut random = Random(replay.clone());
        let again = (
            wall.now(),
            mono.now(),
            random.try_next_u64().expect("random"),
        );
        assert_eq!(again, read);
        assert_eq!(replay.finish().1, None);

        let more = Reads::replaying(&kept);
        let wall = Wall(more.clone());
        wall.now();
        wall.now();
        let diverged = more.finish().1.expect("a read past the record");
        assert!(diverged.contains("more wall-clock reads"), "{diverged}");

        let fewer = Reads::replaying(&kept);
        let diverged = fewer.finish().1.expect("fewer reads");
        assert!(diverged.contains("took 0 wall-clock reads"), "{diverged}");
    }

    /// wasmtime-wasi draws each byte of `get-random-bytes` as a `u32`: a
    /// Python handler's 2 496 bytes (its `random` module's seed) are
    /// 9 984 draws.
    fn draw_like_get_random_bytes(random: &mut Random, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| random.try_next_u32().expect("random") as u8)
            .collect()
    }

    #[test]
    fn secure_reads_of_any_length_are_kept_whole_and_replay_exactly() {
        let live = Reads::default();
        let drawn = draw_like_get_random_bytes(&mut Random(live.clone()), 2496);
        let (kept, diverged) = live.finish();
        let kept = kept.expect("reads kept");
        assert_eq!(diverged, None);
        assert!(
            !kept.truncated,
            "a Python attempt's random is kept: {kept:?}"
        );
        let json = serde_json::to_string(&kept).expect("json");
        assert!(json.len() < 200, "what the record keeps is small: {json}");

        let replay = Reads::replaying(&kept);
        let again = draw_like_get_random_bytes(&mut Random(replay.clone()), 2496);
        assert_eq!(again, drawn);
        assert_eq!(replay.finish().1, None);

        let more = Reads::replaying(&kept);
        draw_like_get_random_bytes(&mut Random(more.clone()), 2497);
        let diverged = more.finish().1.expect("a read past the record");
        assert!(diverged.contains("more random bytes"), "{diverged}");

        let fewer = Reads::replaying(&kept);
        draw_like_get_random_bytes(&mut Random(fewer.clone()), 10);
        let diverged = fewer.finish().1.expect("fewer reads");
        assert!(diverged.contains("took 40 random bytes"), "{diverged}");
    }

    #[test]
    fn reads_past_the_bounds_are_not_kept_and_say_so() {
        let live = Reads::default();
        let wall = Wall(live.clone());
        for _ in 0..MAX_WALL_READS + 1 {
            wall.now();
        }
        let kept = live.finish().0.expect("kept");
        assert_eq!(kept.wall_ns.len(), MAX_WALL_READS);
        assert!(kept.truncated);
    }

    #[test]
    fn a_record_that_kept_the_bytes_themselves_still_replays_from_them() {
        let bytes: Vec<u8> = (0..64).collect();
        let recorded = Inputs {
            random: base64().encode(&bytes),
            ..Inputs::default()
        };
        let replay = Reads::replaying(&recorded);
        let mut random = Random(replay.clone());
        let mut again = [0u8; 64];
        random.try_fill_bytes(&mut again).expect("random");
        assert_eq!(again.as_slice(), bytes.as_slice());
        assert_eq!(replay.finish().1, None);
    }
}
