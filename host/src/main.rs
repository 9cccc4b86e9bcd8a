//! The `wasm-operator` command line: validate and inspect operator modules, run the host.
//! The commands are defined in the library (`wasm_operator::cli`).
use std::process::ExitCode;

use clap::Parser;
use wasm_operator::cli::Cli;

fn main() -> ExitCode {
    Cli::parse().run()
}
