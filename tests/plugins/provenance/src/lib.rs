//! Logs where each event came from: one line `provenance` with fields
//! `kind`, `name`, `verified`, `plugin`. On a body `{"emit": true}` it emits
//! `prov.emitted`, whose delivery logs its own provenance in turn.
use hookhost_sdk::{Event, Handler, HandlerError, Manifest, Provenance, emit, log};

struct Prov;

impl Handler for Prov {
    fn describe() -> Manifest {
        Manifest::new()
            .subscribe("github.*")
            .subscribe("orders.*")
            .subscribe("prov.*")
    }

    fn handle(event: Event) -> Result<(), HandlerError> {
        let fields: Vec<(&str, String)> = match &event.provenance {
            None => vec![("kind", "unknown".into())],
            Some(Provenance::Api) => vec![("kind", "api".into())],
            Some(Provenance::Source { name, verified }) => vec![
                ("kind", "source".into()),
                ("name", name.clone()),
                ("verified", verified.to_string()),
            ],
            Some(Provenance::Emitted { plugin }) => {
                vec![("kind", "emitted".into()), ("plugin", plugin.clone())]
            }
            Some(Provenance::Schedule { plugin, name }) => vec![
                ("kind", "schedule".into()),
                ("plugin", plugin.clone()),
                ("name", name.clone()),
            ],
        };
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        log::with_fields(log::Level::Info, "provenance", &fields);
        if event.verified_by("github") {
            log::info("verified by github");
        }
        let wants_emit = event
            .json::<serde_json::Value>()
            .ok()
            .and_then(|b| b.get("emit").and_then(|e| e.as_bool()))
            .unwrap_or(false);
        if wants_emit {
            emit::bytes("prov.emitted", b"{}", Some(&event.id));
        }
        Ok(())
    }
}

hookhost_sdk::export!(Prov);
