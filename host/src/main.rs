//! The `wasm-operator` command line: validate and inspect operator modules, run the host.
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wasm_operator::cli;

#[derive(Parser)]
#[command(
    name = "wasm-operator",
    version,
    about = "Runs Kubernetes operators as WebAssembly modules in one host"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check that operator modules follow the wasm-operator ABI.
    Validate(cli::validate::Args),
    /// Show what an operator module is: ABI version, capabilities, exports, imports, memory.
    Inspect(cli::inspect::Args),
    // The two host commands have many flags; boxed so the enum is not as large as the largest.
    /// Run the host with a set of operators against a cluster.
    Run(Box<cli::run::Args>),
    /// Run the host in a cluster: operators declared as WasmOperator resources, leader-elected.
    Cluster(Box<cli::cluster::Args>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(args) => cli::validate::main(args),
        Command::Inspect(args) => cli::inspect::main(args),
        Command::Run(args) => cli::run::main(*args),
        Command::Cluster(args) => cli::cluster::main(*args),
    }
}
