//! Write wasm-operator operators in Rust.
//!
//! An operator is a `cdylib` built with `cargo build --target wasm32-wasip1 --release`. It says
//! what it reconciles and watches ([`Controller`]), reconciles one object at a time
//! ([`Request`] in, [`Action`] out), and talks to the world through the host: the Kubernetes API
//! ([`Api`]), outbound HTTP ([`http`]) and the host's log ([`log`]). Host calls block until
//! answered; there is no async runtime in the guest.
//!
//! ```ignore
//! use wasm_operator_sdk::prelude::*;
//!
//! fn init(_: &InitContext) -> Result<(Controller, ())> {
//!     Ok((Controller::new(Api::<ConfigMap>::all(), WatchConfig::default()), ()))
//! }
//!
//! fn reconcile(request: Request<ConfigMap>, _: &mut ()) -> Result<Action> {
//!     Ok(Action::await_change())
//! }
//!
//! wasm_operator_sdk::operator!(init, reconcile);
//! ```
//!
//! Helpers: [`finalizer`], [`owner`] references, status [`conditions`], [`status::differs`],
//! Kubernetes [`events`], [`time`]. Native tests replace the host with [`testing::FakeHost`].
//! docs/sdk-rust.md in the repository is the guide.

mod api;
pub mod conditions;
mod controller;
mod entry;
mod error;
pub mod events;
pub mod finalizer;
mod host;
pub mod http;
pub mod log;
pub mod owner;
mod params;
mod reconcile;
#[cfg(not(target_arch = "wasm32"))]
mod replay;
pub mod status;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod time;

pub use api::{request, Api};
pub use controller::{Controller, InitContext, WatchConfig};
pub use entry::{InitFn, ReconcileFn};
pub use error::{Error, ErrorKind, Result, ResultExt};
pub use params::{DeleteParams, ListParams, Patch, PatchParams};
pub use reconcile::{Action, Request};

pub use k8s_openapi;
pub use kube_core;
pub use serde_json;
/// The ABI's message types (`Mapping`, `Predicate`, `HostError`, ...).
pub use wasm_operator_abi as abi;
pub use wasm_operator_abi::{AbsentReason, Mapping, Predicate, PropagationPolicy};

/// What most operators import: `use wasm_operator_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::conditions::{Condition, ConditionStatus};
    pub use crate::events::{Event, EventType, Recorder, Reporter};
    pub use crate::{
        AbsentReason, Action, Api, Controller, DeleteParams, Error, InitContext, ListParams,
        Mapping, Patch, PatchParams, Predicate, Request, Result, ResultExt, WatchConfig,
    };
    pub use kube_core::{Resource, ResourceExt};
}

/// Used by [`operator!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::entry::{run_init, run_reconcile, same_state};
}
