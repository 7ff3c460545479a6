//! Reads the wall clock, the monotonic clock `clock_reads` times (default
//! 2) and 16 secure random bytes, and writes what it read to kv: `roll`
//! (the random bytes, hex), `at` (the wall clock, ns) and `elapsed` (the
//! last monotonic read minus the first). Run twice for real, it writes
//! different values every time; an exact replay must write the same.
//!
//! Body: `{"clock_reads": 2}`.
use hookhost_sdk::{Event, Handler, HandlerError, Manifest, RetryPolicy, kv};
use serde::Deserialize;
use wasip2::clocks::{monotonic_clock, wall_clock};

#[derive(Deserialize)]
struct Body {
    #[serde(default = "two")]
    clock_reads: u32,
}

fn two() -> u32 {
    2
}

struct Dice;

impl Handler for Dice {
    fn describe() -> Manifest {
        Manifest::new()
            .subscribe("test.dice")
            .retry(RetryPolicy::never())
    }

    fn handle(event: Event) -> Result<(), HandlerError> {
        let body: Body = event.json()?;
        let wall = wall_clock::now();
        let first = monotonic_clock::now();
        let mut last = first;
        for _ in 1..body.clock_reads.max(1) {
            last = monotonic_clock::now();
        }
        let roll: String = wasip2::random::random::get_random_bytes(16)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        kv::set("roll", roll.as_bytes());
        let at = wall.seconds * 1_000_000_000 + u64::from(wall.nanoseconds);
        kv::set("at", at.to_string().as_bytes());
        kv::set("elapsed", (last - first).to_string().as_bytes());
        Ok(())
    }
}

hookhost_sdk::export!(Dice);
