//! Hostile: panics. Must end as `trap`, with the panic message captured.
use hookhost_sdk::{Event, Handler, HandlerError, Manifest, RetryPolicy};

struct Panics;

impl Handler for Panics {
    fn describe() -> Manifest {
        Manifest::new()
            .subscribe("test.trap")
            .retry(RetryPolicy::never())
    }

    fn handle(event: Event) -> Result<(), HandlerError> {
        panic!("handler panicked on event {}", event.id);
    }
}

hookhost_sdk::export!(Panics);
