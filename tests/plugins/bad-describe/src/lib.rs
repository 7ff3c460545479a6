//! Hostile: traps in `describe()`, so it can never be loaded.
use hookhost_sdk::{Event, Handler, HandlerError, Manifest};

struct BadDescribe;

impl Handler for BadDescribe {
    fn describe() -> Manifest {
        panic!("describe() refuses to answer");
    }

    fn handle(_event: Event) -> Result<(), HandlerError> {
        Ok(())
    }
}

hookhost_sdk::export!(BadDescribe);
