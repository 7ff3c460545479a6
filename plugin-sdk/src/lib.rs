//! Write Hookhost webhook handlers in Rust (the guide is `docs/handlers/rust.md`
//! in the Hookhost repository).
//!
//! A handler is a type that implements [`Handler`], exported with [`export!`],
//! compiled to `wasm32-wasip2` and dropped into the host's `plugins/` folder as
//! `<name>.wasm`. The host calls [`Handler::describe`] once when it loads the
//! component, then [`Handler::handle`] once per matching event, each call in a
//! fresh sandbox bounded by fuel, a deadline and a memory cap.
//!
//! Effects are transactional: [`kv`] writes and [`emit`]ted events are buffered
//! and committed only when `handle` returns `Ok`. Returning an error, trapping or
//! running out of fuel leaves no effect, so a retried attempt starts clean.
//!
//! ```no_run
//! use hookhost_sdk::{Event, Handler, HandlerError, Manifest, emit, kv, log};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Payment { amount: i64 }
//!
//! struct Ledger;
//!
//! impl Handler for Ledger {
//!     fn describe() -> Manifest {
//!         Manifest::new().subscribe("stripe.payment_intent.*")
//!     }
//!
//!     fn handle(event: Event) -> Result<(), HandlerError> {
//!         let payment: Payment = event.json()?;
//!         let total = kv::get_json::<i64>("total")?.unwrap_or(0) + payment.amount;
//!         kv::set_json("total", &total)?;
//!         emit::json("ledger.entry", &serde_json::json!({ "total": total }), Some(&event.id))?;
//!         log::info(&format!("total is now {total}"));
//!         Ok(())
//!     }
//! }
//!
//! hookhost_sdk::export!(Ledger);
//! ```
#![deny(missing_docs)]

pub mod config;
pub mod emit;
mod event;
pub mod http;
pub mod kv;
pub mod log;
mod manifest;

pub use event::{Event, Provenance};
pub use manifest::{Manifest, RetryPolicy, Schedule};

/// Bindings generated from `wit/` (`hookhost:plugin@0.2.1`); not part of
/// the public API.
#[doc(hidden)]
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod wit {
    wit_bindgen::generate!({
        path: "../wit",
        world: "handler",
        pub_export_macro: true,
        export_macro_name: "__export_handler",
        default_bindings_module: "hookhost_sdk::wit",
    });
}

/// A handler: the two functions the host calls.
pub trait Handler {
    /// Which topics the handler wants and how it is retried. Called once when
    /// the host loads the component; keep it quick and free of effects.
    fn describe() -> Manifest;

    /// Handles one event. `Ok` commits the attempt's buffered effects.
    fn handle(event: Event) -> Result<(), HandlerError>;
}

/// Why a handler did not succeed.
///
/// Return [`HandlerError::retry`] for failures that may pass later (an API is
/// down) and [`HandlerError::reject`] for input that never will. A
/// `serde_json::Error` converts to `Reject` with `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerError {
    /// A transient failure: the host retries by the retry policy.
    Retry(String),
    /// A permanent failure: no retry; the delivery becomes a dead letter.
    Reject(String),
}

impl HandlerError {
    /// A transient failure, retried by the policy.
    pub fn retry(message: impl Into<String>) -> Self {
        Self::Retry(message.into())
    }

    /// A permanent failure, not retried.
    pub fn reject(message: impl Into<String>) -> Self {
        Self::Reject(message.into())
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Retry(m) => write!(f, "retry: {m}"),
            Self::Reject(m) => write!(f, "reject: {m}"),
        }
    }
}

impl std::error::Error for HandlerError {}

/// A body that does not parse will not parse on a retry either: reject it.
impl From<serde_json::Error> for HandlerError {
    fn from(err: serde_json::Error) -> Self {
        Self::Reject(format!("invalid json: {err}"))
    }
}

impl From<HandlerError> for wit::HandlerError {
    fn from(err: HandlerError) -> Self {
        match err {
            HandlerError::Retry(m) => wit::HandlerError::Retry(m),
            HandlerError::Reject(m) => wit::HandlerError::Reject(m),
        }
    }
}

/// Glue used by [`export!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    use super::{Event, Handler, wit};

    pub fn describe<H: Handler>() -> wit::Manifest {
        H::describe().into_wit()
    }

    pub fn handle<H: Handler>(event: wit::Event) -> Result<(), wit::HandlerError> {
        H::handle(Event::from_wit(event)).map_err(Into::into)
    }
}

/// Exports a [`Handler`] implementation as the component's `handler` world.
///
/// Use it once per plugin crate, at the crate root:
///
/// ```no_run
/// # use hookhost_sdk::{Event, Handler, HandlerError, Manifest};
/// struct MyHandler;
///
/// impl Handler for MyHandler {
///     fn describe() -> Manifest {
///         Manifest::new().subscribe("shop.order.*")
///     }
///     fn handle(_event: Event) -> Result<(), HandlerError> {
///         Ok(())
///     }
/// }
///
/// hookhost_sdk::export!(MyHandler);
/// ```
#[macro_export]
macro_rules! export {
    ($handler:ty) => {
        const _: () = {
            struct __HookhostExport;

            impl $crate::wit::Guest for __HookhostExport {
                fn describe() -> $crate::wit::Manifest {
                    $crate::__private::describe::<$handler>()
                }

                fn handle(
                    event: $crate::wit::Event,
                ) -> ::core::result::Result<(), $crate::wit::HandlerError> {
                    $crate::__private::handle::<$handler>(event)
                }
            }

    $crate::wit::__export_handler!(__HookhostExport with_types_in $crate::wit);
        };
    };
}
