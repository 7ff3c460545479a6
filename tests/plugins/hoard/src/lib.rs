//! Hostile: grows everything the host keeps for an attempt, as its body says,
//! then ends as `end` says (`ok`, `reject`, `retry` or `trap`). It handles
//! the events it emits too (`test.hoarded`).
//!
//! Body (every field optional):
//! `{"kv_reads": n, "kv_writes": n, "value_bytes": n, "empty_logs": n,
//!   "log_fields": n, "emits": n, "emit_key_bytes": n, "emit_topic": "t",
//!   "message_bytes": n,
//!   "end": "trap"}`
use hookhost_sdk::{Event, Handler, HandlerError, Manifest, RetryPolicy, emit, kv, log};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Body {
    kv_reads: usize,
    kv_writes: usize,
    value_bytes: usize,
    empty_logs: usize,
    log_fields: usize,
    emits: usize,
    emit_key_bytes: usize,
    emit_topic: Option<String>,
    message_bytes: usize,
    /// Writes a kv key holding a NUL byte.
    nul_key: bool,
    end: String,
}

struct Hoard;

impl Handler for Hoard {
    fn describe() -> Manifest {
        Manifest::new()
            .subscribe("test.hoard*")
            .retry(RetryPolicy::never())
    }

    fn handle(event: Event) -> Result<(), HandlerError> {
        let body: Body = event.json()?;
        for i in 0..body.kv_reads {
            std::hint::black_box(kv::get(&format!("read-{i}")));
        }
        let value = vec![b'v'; body.value_bytes];
        for i in 0..body.kv_writes {
            kv::set(&format!("write-{i:08}"), &value);
        }
        if body.nul_key {
            kv::set("before\0after", b"v");
        }
        let fields: Vec<(&str, &str)> = vec![("", ""); body.log_fields];
        for _ in 0..body.empty_logs {
            log::with_fields(log::Level::Info, "", &fields);
        }
        let key = "k".repeat(body.emit_key_bytes);
        for i in 0..body.emits {
            let key = (!key.is_empty()).then(|| format!("{key}{i}"));
            let topic = body.emit_topic.as_deref().unwrap_or("test.hoarded");
            emit::bytes(topic, b"{}", key.as_deref());
        }
        let message = "m".repeat(body.message_bytes);
        match body.end.as_str() {
            "reject" => Err(HandlerError::reject(message)),
            "retry" => Err(HandlerError::retry(message)),
            "trap" => panic!("hoard: trapping after hoarding {message}"),
            _ => Ok(()),
        }
    }
}

hookhost_sdk::export!(Hoard);
