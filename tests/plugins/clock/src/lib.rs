//! Declares two schedules, `every-second` and `new-year`, and logs each tick
//! it is handed.
use hookhost_sdk::{Event, Handler, HandlerError, Manifest, log};

struct Clock;

impl Handler for Clock {
    fn describe() -> Manifest {
        Manifest::new()
            .schedule("every-second", "* * * * * *")
            .schedule("new-year", "0 0 0 1 1 *")
    }

    fn handle(event: Event) -> Result<(), HandlerError> {
        let body: serde_json::Value = event.json()?;
        log::info(&format!("{} at {}", event.topic, body["tick"]));
        Ok(())
    }
}

hookhost_sdk::export!(Clock);
