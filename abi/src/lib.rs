//! The wasm-operator ABI, version 1: the contract between the host and operator modules.
//!
//! - [`names`]: import and export names, their Wasm signatures, the version marker, capabilities.
//! - [`messages`]: the JSON messages exchanged through the pull-model memory protocol.
//! - [`limits`]: the largest payload a guest may pass in one ABI call.
//! - [`tape`]: recordings of an operator's host calls, for replaying them offline.
//! - [`wasi`]: the WASI preview 1 functions a module may import besides the ABI's own.
//! - [`validate()`] (feature `validate`, on by default): checks a module against the ABI at load
//!   time. Guests depend on this crate with `default-features = false` and get the types only.
//!
//! docs/abi.md in the repository is the specification; this crate is its executable form.

pub mod limits;
pub mod messages;
pub mod names;
pub mod tape;
#[cfg(feature = "validate")]
pub mod validate;
pub mod wasi;

pub use messages::*;
pub use names::{Capability, CURRENT_VERSION, SUPPORTED_VERSIONS};
#[cfg(feature = "validate")]
pub use validate::{validate, ModuleInfo, Problem, ValidationError};
