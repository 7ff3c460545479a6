//! Parses the event's JSON body and checks one field: the smallest handler
//! that does what a webhook → code-step workflow does, for side-by-side
//! benchmarks against other tools.
use hookhost_sdk::{Event, Handler, HandlerError, Manifest};

struct Parse;

impl Handler for Parse {
    fn describe() -> Manifest {
        Manifest::new().subscribe("test.parse")
    }

    fn handle(event: Event) -> Result<(), HandlerError> {
        let body: serde_json::Value = event
            .json()
            .map_err(|e| HandlerError::reject(format!("not JSON: {e}")))?;
        if body
            .get("amount")
            .and_then(serde_json::Value::as_i64)
            .is_none()
        {
            return Err(HandlerError::reject("no amount"));
        }
        Ok(())
    }
}

hookhost_sdk::export!(Parse);
