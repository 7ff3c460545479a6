//! Always asks to be retried: must be rescheduled, then dead-lettered.
use hookhost_sdk::{Event, Handler, HandlerError, Manifest, RetryPolicy, log};

struct Flaky;

impl Handler for Flaky {
    fn describe() -> Manifest {
        Manifest::new().subscribe("test.retry").retry(RetryPolicy {
            max_attempts: 3,
            initial_backoff_ms: 20,
            max_backoff_ms: 50,
        })
    }

    fn handle(event: Event) -> Result<(), HandlerError> {
        log::warn(&format!("attempt {} failing on purpose", event.attempt));
        Err(HandlerError::retry("upstream unavailable"))
    }
}

hookhost_sdk::export!(Flaky);
