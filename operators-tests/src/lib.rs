//! Harness of the example operators' end-to-end tests (tests/*.rs): each test runs an example
//! in the host's [`OperatorManager`](wasm_operator::operator::OperatorManager) against the real
//! control plane, once per implementation present in the checkout ([`Lang`]).
//!
//! - [`Harness`]: a host for one test, the example CRDs applied, a record of reconciles.
//! - [`Lang`]: Rust (`operators-rust/<x>`) or Go (`operators-go/<x>`), and their modules.
//! - [`counter`]: the counter example's status, computed independently.
//! - [`kinds`]: the example kinds as dynamic APIs, and waiting for objects to look right.
//! - [`metrics_api`]: a Prometheus-like query API on loopback for the metrics-scaler.

pub mod counter;
mod harness;
pub mod kinds;
mod lang;
pub mod metrics_api;

pub use harness::{module_spec, spec, Harness, SwapSettings, PROMPTLY};
pub use lang::Lang;
