//! Does nothing and succeeds: the baseline for measuring per-attempt overhead.
use hookhost_sdk::{Event, Handler, HandlerError, Manifest};

struct Noop;

impl Handler for Noop {
    fn describe() -> Manifest {
        Manifest::new().subscribe("test.noop")
    }

    fn handle(_event: Event) -> Result<(), HandlerError> {
        Ok(())
    }
}

hookhost_sdk::export!(Noop);
