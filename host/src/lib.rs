//! The wasm-operator host as a library: the binary in main.rs is a thin command line over it, and
//! the integration tests drive the same API.
pub mod cli;
pub mod cluster;
pub mod egress;
pub mod kube;
pub mod metrics;
pub mod operator;
pub mod replay;
pub mod runtime;
pub mod scheduler;
pub mod text;
