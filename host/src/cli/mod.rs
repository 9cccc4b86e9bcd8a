//! Subcommands of the `wasm-operator` binary, one file each.
pub mod cluster;
pub mod inspect;
pub mod process;
pub mod run;
pub mod run_config;
pub mod validate;
