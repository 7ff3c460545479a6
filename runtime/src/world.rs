//! The contract versions the host accepts, and the one place that tells them
//! apart.
//!
//! `wit/handler.wit` is `hookhost:plugin@0.2.1`; `wit/v0.2.0/` and
//! `wit/v0.1.0/` keep the earlier versions, so that components built
//! against them load unchanged. All are linked into every linker; a
//! component's exports say whether it targets 0.1.0 or 0.2.x ([`Pre::new`]
//! tries the newest first). 0.2.1 only adds the `outbox` interface: its
//! other interfaces are 0.2.0's, which the linker's semver matching also
//! gives to a component importing them `@0.2.1`. Everything past this
//! module sees one event, one manifest and one outcome whatever the
//! version.

use super::HostState;
use crate::model::{EventRecord, Manifest, Provenance, RetryPolicy, Schedule};
use wasmtime::component::{HasSelf, InstancePre, Linker};

/// A manifest of either version as the host's own (not yet validated).
macro_rules! manifest {
    ($m:expr) => {{
        let m = $m;
        Manifest {
            subscriptions: m.subscriptions,
            retry: m.retry.map(|r| RetryPolicy {
                max_attempts: r.max_attempts,
                initial_backoff_ms: r.initial_backoff_ms,
                max_backoff_ms: r.max_backoff_ms,
            }),
            schedules: m
                .schedules
                .into_iter()
                .map(|s| Schedule {
                    name: s.name,
                    cron: s.cron,
                })
                .collect(),
        }
    }};
}

/// Bindings of `hookhost:plugin@0.1.0`.
pub(crate) mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "handler",
        // kv reads go to the store, which may be across the network.
        imports: { "hookhost:plugin/kv.get": async | trappable, default: trappable },
        exports: { default: async },
    });
}

/// Bindings of `hookhost:plugin@0.2.0`.
pub(crate) mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2.0",
        world: "handler",
        imports: {
            "hookhost:plugin/kv.get": async | trappable,
            "hookhost:plugin/http.fetch": async | trappable,
            default: trappable,
        },
        exports: { default: async },
    });
}

/// Bindings of `hookhost:plugin@0.2.1`, the current version: only its new
/// `outbox` interface; the others are 0.2.0's.
pub(crate) mod v0_2_1 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "handler",
        with: {
            "hookhost:plugin/types": super::v0_2::hookhost::plugin::types,
            "hookhost:plugin/log": super::v0_2::hookhost::plugin::log,
            "hookhost:plugin/kv": super::v0_2::hookhost::plugin::kv,
            "hookhost:plugin/emit": super::v0_2::hookhost::plugin::emit,
            "hookhost:plugin/config": super::v0_2::hookhost::plugin::config,
            "hookhost:plugin/http": super::v0_2::hookhost::plugin::http,
        },
        imports: { default: trappable },
        exports: { default: async },
    });
}

/// Adds every version's imports to `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v0_1::Handler::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    v0_2::Handler::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    v0_2_1::hookhost::plugin::outbox::add_to_linker::<HostState, HasSelf<HostState>>(
        linker,
        |s| s,
    )?;
    Ok(())
}

/// A link-checked component of one contract version.
#[derive(Clone)]
pub(super) enum Pre {
    V0_1(v0_1::HandlerPre<HostState>),
    V0_2(v0_2::HandlerPre<HostState>),
}

/// What `handle` returned, whatever the version.
pub(super) enum Handled {
    Ok,
    Retry(String),
    Reject(String),
}

impl Pre {
    /// The world `pre`'s exports fit, newest first; the error names what
    /// the newest world expected.
    pub fn new(pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        match v0_2::HandlerPre::new(pre.clone()) {
            Ok(pre) => Ok(Pre::V0_2(pre)),
            Err(newest) => match v0_1::HandlerPre::new(pre) {
                Ok(pre) => Ok(Pre::V0_1(pre)),
                Err(_) => Err(newest),
            },
        }
    }

    /// The contract version the component targets, e.g. `0.2.1`: the
    /// newest its imports name.
    pub fn contract(&self) -> &'static str {
        match self {
            Pre::V0_1(_) => "0.1.0",
            Pre::V0_2(pre) => {
                let component = pre.instance_pre().component();
                let engine = component.engine();
                let newer = component.component_type().imports(engine).any(|(name, _)| {
                    name.starts_with("hookhost:plugin/") && name.ends_with("@0.2.1")
                });
                if newer { "0.2.1" } else { "0.2.0" }
            }
        }
    }

    /// Instantiates in `store` and calls `describe()`.
    pub async fn describe(
        &self,
        store: &mut wasmtime::Store<HostState>,
    ) -> wasmtime::Result<Manifest> {
        Ok(match self {
            Pre::V0_1(pre) => {
                let handler = pre.instantiate_async(&mut *store).await?;
                let m = handler.call_describe(&mut *store).await?;
                manifest!(m)
            }
            Pre::V0_2(pre) => {
                let handler = pre.instantiate_async(&mut *store).await?;
                let m = handler.call_describe(&mut *store).await?;
                manifest!(m)
            }
        })
    }

    /// Instantiates in `store` and calls `handle()` with attempt `number` of
    /// `event`.
    pub async fn handle(
        &self,
        store: &mut wasmtime::Store<HostState>,
        event: &EventRecord,
        number: u32,
        body: &[u8],
    ) -> wasmtime::Result<Handled> {
        match self {
            Pre::V0_1(pre) => {
                use v0_1::hookhost::plugin::types;
                let wit = types::Event {
                    id: event.id.to_string(),
                    topic: event.topic.clone(),
                    idempotency_key: event.idempotency_key.clone(),
                    received_at_ms: event.received_at_ms,
                    attempt: number,
                    headers: event.headers.clone(),
                    content_type: event.content_type.clone(),
                    body: body.to_vec(),
                };
                let handler = pre.instantiate_async(&mut *store).await?;
                Ok(match handler.call_handle(&mut *store, &wit).await? {
                    Ok(()) => Handled::Ok,
                    Err(types::HandlerError::Retry(m)) => Handled::Retry(m),
                    Err(types::HandlerError::Reject(m)) => Handled::Reject(m),
                })
            }
            Pre::V0_2(pre) => {
                use v0_2::hookhost::plugin::types;
                let wit = types::Event {
                    id: event.id.to_string(),
                    topic: event.topic.clone(),
                    idempotency_key: event.idempotency_key.clone(),
                    received_at_ms: event.received_at_ms,
                    attempt: number,
                    headers: event.headers.clone(),
                    content_type: event.content_type.clone(),
                    body: body.to_vec(),
                    provenance: event.provenance.as_ref().map(provenance),
                };
                let handler = pre.instantiate_async(&mut *store).await?;
                Ok(match handler.call_handle(&mut *store, &wit).await? {
                    Ok(()) => Handled::Ok,
                    Err(types::HandlerError::Retry(m)) => Handled::Retry(m),
                    Err(types::HandlerError::Reject(m)) => Handled::Reject(m),
                })
            }
        }
    }
}

fn provenance(p: &Provenance) -> v0_2::hookhost::plugin::types::Provenance {
    use v0_2::hookhost::plugin::types;
    match p {
        Provenance::Api => types::Provenance::Api,
        Provenance::Source { name, verified } => types::Provenance::Source(types::SourceOrigin {
            name: name.clone(),
            verified: *verified,
        }),
        Provenance::Emitted { plugin } => types::Provenance::Emitted(plugin.clone()),
        Provenance::Schedule { plugin, name } => {
            types::Provenance::Schedule(types::ScheduleOrigin {
                plugin: plugin.clone(),
                name: name.clone(),
            })
        }
    }
}
