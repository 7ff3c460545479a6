//! Records, per key, the order in which its deliveries ran.
//!
//! Subscribes to `test.seq`. A body `{"key": "a", "n": 1}` appends `n` to the
//! kv list `seen:a`. With `"hold": true` it asks to be retried until an event
//! `{"release": true}` has set the kv flag `released`.
use hookhost_sdk::{Event, Handler, HandlerError, Manifest, RetryPolicy, kv, log};
use serde::Deserialize;

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    key: String,
    #[serde(default)]
    n: u64,
    #[serde(default)]
    hold: bool,
    #[serde(default)]
    release: bool,
}

struct Sequence;

impl Handler for Sequence {
    fn describe() -> Manifest {
        Manifest::new().subscribe("test.seq").retry(RetryPolicy {
            max_attempts: 1000,
            initial_backoff_ms: 20,
            max_backoff_ms: 100,
        })
    }

    fn handle(event: Event) -> Result<(), HandlerError> {
        let body: Body = event.json()?;
        if body.release {
            kv::set_json("released", &true)?;
            return Ok(());
        }
        if body.hold && kv::get_json::<bool>("released")? != Some(true) {
            return Err(HandlerError::retry("held until released"));
        }
        let list = format!("seen:{}", body.key);
        let mut seen = kv::get_json::<Vec<u64>>(&list)?.unwrap_or_default();
        seen.push(body.n);
        kv::set_json(&list, &seen)?;
        log::info(&format!("{} ran as number {}", body.key, seen.len()));
        Ok(())
    }
}

hookhost_sdk::export!(Sequence);
