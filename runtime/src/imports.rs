//! The host side of the `log`, `kv`, `emit` and `config` imports, one
//! implementation behind the traits of every contract version.
//!
//! Writes and emits are buffered in the call state and handed to the store
//! only when the attempt succeeds. A guest that abuses an import (a huge key,
//! thousands of emits) is trapped with a message saying which limit it hit.
//!
//! # Bounds
//! Everything a guest can make the host hold through these imports is
//! bounded in bytes and in count: buffered kv writes (bytes and distinct
//! keys), distinct kv keys read, emitted events (count, bytes, key length),
//! and log lines (by their size in the record, each line and field counted
//! even when empty). What the attempt's record keeps of them is bounded
//! again by [`record`](super::record).

use super::HostState;
use super::record::{self, LOG_FIELD_FRAME, LOG_LINE_FRAME, MAX_LOG_FIELDS, json_len};
use super::world::{v0_1, v0_2};
use crate::model::{
    LogLevel, LogLine, MAX_IDEMPOTENCY_KEY, NewEvent, OUTBOX_TOPIC, Provenance, validate_topic,
};

/// Longest kv key.
const MAX_KEY_BYTES: usize = 1024;
/// Largest kv value.
const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Buffered kv bytes per attempt, each write counted with [`WRITE_OVERHEAD`].
const MAX_WRITE_BYTES: usize = 16 * 1024 * 1024;
/// Bytes a buffered write costs the host beside its key and value.
const WRITE_OVERHEAD: usize = 64;
/// Distinct kv keys one attempt may write or delete.
const MAX_KV_WRITES: usize = 10_000;
/// Distinct kv keys one attempt may read from the store.
const MAX_KV_READS: usize = 10_000;
/// Events one attempt may emit.
const MAX_EMITS: usize = 100;
/// Largest emitted body.
const MAX_EMIT_BYTES: usize = 1024 * 1024;
/// Emitted bytes per attempt, all events together.
const MAX_EMIT_TOTAL_BYTES: usize = 16 * 1024 * 1024;

/// The `log`, `kv`, `emit` and `config` imports of one contract version,
/// each a thin call to the host's one implementation.
macro_rules! imports {
    ($v:ident) => {
        impl $v::hookhost::plugin::types::Host for HostState {}

        impl $v::hookhost::plugin::log::Host for HostState {
            fn log(
                &mut self,
                level: $v::hookhost::plugin::types::Level,
                message: String,
                fields: Vec<(String, String)>,
            ) -> wasmtime::Result<()> {
                use $v::hookhost::plugin::types::Level;
                let level = match level {
                    Level::Trace => LogLevel::Trace,
                    Level::Debug => LogLevel::Debug,
                    Level::Info => LogLevel::Info,
                    Level::Warn => LogLevel::Warn,
                    Level::Error => LogLevel::Error,
                };
                self.log_line(level, message, fields)
            }
        }

        impl $v::hookhost::plugin::kv::Host for HostState {
            async fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
                self.kv_get(key).await
            }

            fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<()> {
                self.kv_set(key, value)
            }

            fn delete(&mut self, key: String) -> wasmtime::Result<()> {
                check_key(&key)?;
                self.buffer_write(key, None)
            }
        }

        impl $v::hookhost::plugin::emit::Host for HostState {
            fn emit(
                &mut self,
                topic: String,
                body: Vec<u8>,
                idempotency_key: Option<String>,
            ) -> wasmtime::Result<()> {
                self.emit_event(topic, body, idempotency_key)
            }
        }

        impl $v::hookhost::plugin::config::Host for HostState {
            fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
                Ok(self.config_get(&key))
            }
        }
    };
}

imports!(v0_1);
imports!(v0_2);

impl HostState {
    fn log_line(
        &mut self,
        level: LogLevel,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        let call = &mut self.call;
        if fields.len() > MAX_LOG_FIELDS {
            call.truncated = true;
        }
        let message = call.redact(&message);
        let fields: Vec<(String, String)> = fields
            .iter()
            .take(MAX_LOG_FIELDS)
            .map(|(k, v)| (call.redact(k), call.redact(v)))
            .collect();
        tracing::debug!(plugin = %call.plugin, ?level, %message, "plugin log");
        // The line's size in the record: an empty line still costs its frame.
        let size = LOG_LINE_FRAME
            + json_len(&message)
            + fields
                .iter()
                .map(|(k, v)| LOG_FIELD_FRAME + json_len(k) + json_len(v))
                .sum::<usize>();
        if call.log_bytes + size > record::LOG_SHARE {
            call.truncated = true;
            call.budget.omit_log_line();
            return Ok(());
        }
        call.log_bytes += size;
        call.logs.push(LogLine {
            level,
            message,
            fields,
        });
        Ok(())
    }

    async fn kv_get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        check_key(&key)?;
        let call = &mut self.call;
        if let Some(buffered) = call.writes.get(&key) {
            return Ok(buffered.clone());
        }
        let Some(store) = &call.store else {
            return Ok(None);
        };
        let (version, value) = match call.snapshot.as_ref().and_then(|s| s.get(&key)) {
            Some(value) => (0, value.clone()),
            None => match store
                .kv_read(&call.plugin, &key)
                .await
                .map_err(|e| wasmtime::format_err!("kv read failed: {e}"))?
            {
                Some((version, value)) => (version, Some(value)),
                None => (0, None),
            },
        };
        // The first read fixes the version the commit checks against.
        if !call.reads.contains_key(&key) {
            if call.reads.len() >= MAX_KV_READS {
                wasmtime::bail!("kv: more than {MAX_KV_READS} distinct keys read in one attempt");
            }
            let read = crate::model::KvRecord {
                key: key.clone(),
                value: value.as_deref().map(crate::model::Blob::of),
            };
            if call.budget.admit(record::List::KvReads, &read) {
                call.read_records.push(read);
            }
            call.reads.insert(key, version);
        }
        Ok(value)
    }

    fn kv_set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<()> {
        check_key(&key)?;
        if value.len() > MAX_VALUE_BYTES {
            wasmtime::bail!(
                "kv value for {key:?} is {} bytes, over the limit of {MAX_VALUE_BYTES}",
                value.len()
            );
        }
        self.buffer_write(key, Some(value))
    }

    fn buffer_write(&mut self, key: String, value: Option<Vec<u8>>) -> wasmtime::Result<()> {
        let call = &mut self.call;
        if call.store.is_none() {
            wasmtime::bail!("kv writes are not allowed in describe()");
        }
        if let Some(secret) = call
            .secret_in(key.as_bytes())
            .or_else(|| value.as_deref().and_then(|v| call.secret_in(v)))
        {
            wasmtime::bail!("kv: refused to store the value of secret {secret:?}");
        }
        call.write_bytes += WRITE_OVERHEAD + key.len() + value.as_ref().map_or(0, Vec::len);
        if call.write_bytes > MAX_WRITE_BYTES {
            wasmtime::bail!("kv writes exceed {MAX_WRITE_BYTES} bytes in one attempt");
        }
        if call.writes.len() >= MAX_KV_WRITES && !call.writes.contains_key(&key) {
            wasmtime::bail!("kv: more than {MAX_KV_WRITES} distinct keys written in one attempt");
        }
        call.writes.insert(key, value);
        Ok(())
    }
}

fn check_key(key: &str) -> wasmtime::Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        wasmtime::bail!(
            "kv key must be 1 to {MAX_KEY_BYTES} bytes, got {}",
            key.len()
        );
    }
    // PostgreSQL's text holds no NUL: refused here, on every store, so an
    // attempt never produces what one store could not record.
    if key.contains('\0') {
        wasmtime::bail!("kv key must not contain a NUL byte");
    }
    Ok(())
}

impl HostState {
    /// Whether one more event of `topic` and `body` fits the attempt's emit
    /// limits (count, size, bytes in all), and holds no secret in its topic.
    pub(super) fn check_emit(&self, topic: &str, body: &[u8]) -> wasmtime::Result<()> {
        let call = &self.call;
        if body.len() > MAX_EMIT_BYTES {
            wasmtime::bail!(
                "emit: body of {} bytes is over the limit of {MAX_EMIT_BYTES}",
                body.len()
            );
        }
        if let Some(secret) = call.secret_in(topic.as_bytes()) {
            wasmtime::bail!("emit: refused to put the value of secret {secret:?} in an event");
        }
        if call.emitted.len() >= MAX_EMITS {
            wasmtime::bail!("emit: more than {MAX_EMITS} events in one attempt");
        }
        if call.emit_bytes + body.len() + topic.len() > MAX_EMIT_TOTAL_BYTES {
            wasmtime::bail!("emit: more than {MAX_EMIT_TOTAL_BYTES} bytes emitted in one attempt");
        }
        Ok(())
    }

    fn emit_event(
        &mut self,
        topic: String,
        body: Vec<u8>,
        idempotency_key: Option<String>,
    ) -> wasmtime::Result<()> {
        if self.call.store.is_none() {
            wasmtime::bail!("emit is not allowed in describe()");
        }
        validate_topic(&topic).map_err(|e| wasmtime::format_err!("emit: {e}"))?;
        if topic == OUTBOX_TOPIC {
            wasmtime::bail!("emit: {OUTBOX_TOPIC} is the host's own topic; use the outbox");
        }
        let call = &self.call;
        if let Some(reserved) = crate::model::refusal(&call.reserved, &topic, None) {
            wasmtime::bail!("emit: {}", reserved.explain(&topic));
        }
        if let Some(secret) = call.secret_in(&body).or_else(|| {
            idempotency_key
                .as_deref()
                .and_then(|k| call.secret_in(k.as_bytes()))
        }) {
            wasmtime::bail!("emit: refused to put the value of secret {secret:?} in an event");
        }
        self.check_emit(&topic, &body)?;
        let call = &mut self.call;
        if let Some(key) = &idempotency_key
            && (key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || key.contains('\0'))
        {
            wasmtime::bail!(
                "emit: idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} bytes without NUL, got {}",
                key.len()
            );
        }
        call.emit_bytes += body.len() + topic.len();
        let content_type = serde_json::from_slice::<serde::de::IgnoredAny>(&body)
            .is_ok()
            .then(|| "application/json".to_owned());
        call.emitted.push(NewEvent {
            topic,
            idempotency_key,
            headers: Vec::new(),
            content_type,
            body,
            provenance: Provenance::Emitted {
                plugin: call.plugin.clone(),
            },
        });
        Ok(())
    }

    fn config_get(&self, key: &str) -> Option<String> {
        let call = &self.call;
        call.config.get(key).cloned().or_else(|| {
            call.secrets
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.expose().to_owned())
        })
    }
}
