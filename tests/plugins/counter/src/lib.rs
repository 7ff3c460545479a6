//! Counts events in kv and emits `test.counted`.
//!
//! Subscribes to `test.count`. A body `{"fail": true}` makes it write and emit
//! first and then reject, to show that a failed attempt leaves no effect. A
//! body `{"print": "..."}` writes that text to stdout and stderr.
use hookhost_sdk::{Event, Handler, HandlerError, Manifest, RetryPolicy, config, emit, kv, log};
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct Body {
    #[serde(default)]
    fail: bool,
    #[serde(default)]
    print: Option<String>,
}

struct Counter;

impl Handler for Counter {
    fn describe() -> Manifest {
        Manifest::new()
            .subscribe("test.count")
            .retry(RetryPolicy::never())
    }

    fn handle(event: Event) -> Result<(), HandlerError> {
        let body: Body = if event.body.is_empty() {
            Body::default()
        } else {
            event.json()?
        };
        // This plugin exists to show that guest output is captured.
        #[allow(clippy::print_stdout, clippy::print_stderr)]
        if let Some(text) = &body.print {
            println!("{text}");
            eprintln!("{text}");
        }
        let before = kv::get_json::<i64>("count")?.unwrap_or(0);
        let after = kv::increment("count", 1)?;
        let label = config::get("label").unwrap_or_else(|| "none".into());
        log::with_fields(
            log::Level::Info,
            "counted",
            &[
                ("before", &before.to_string()),
                ("after", &after.to_string()),
                ("label", &label),
            ],
        );
        emit::json(
            "test.counted",
            &serde_json::json!({ "count": after, "source": event.id }),
            Some(&format!("counted-{}", event.id)),
        )?;
        if body.fail {
            return Err(HandlerError::reject("asked to fail after writing"));
        }
        Ok(())
    }
}

hookhost_sdk::export!(Counter);
