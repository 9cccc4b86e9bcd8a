//! The `wasm-operator` command line: the root command ([`Cli`]) and its subcommands, one file
//! each. `main.rs` only parses and dispatches, so the library can describe the command line too
//! ([`reference`] writes docs/cli.md from these definitions).
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod cluster;
pub mod inspect;
pub mod log_format;
pub mod new;
pub mod process;
pub mod reference;
pub mod run;
pub mod run_config;
pub mod test;
pub mod validate;

/// The root command.
#[derive(Parser)]
#[command(
    name = "wasm-operator",
    version,
    about = "Runs Kubernetes operators as WebAssembly modules in one host"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Check that operator modules follow the wasm-operator ABI.
    Validate(validate::Args),
    /// Show what an operator module is: ABI version, capabilities, exports, imports, memory.
    Inspect(inspect::Args),
    // The two host commands have many flags; boxed so the enum is not as large as the largest.
    /// Run the host with a set of operators against a cluster.
    Run(Box<run::Args>),
    /// Run the host in a cluster: operators declared as WasmOperator resources, sharded over replicas.
    Cluster(Box<cluster::Args>),
    /// Write a new operator project (Rust or Go) for one kind: build files, CRD, reconcile
    /// skeleton, unit test and README.
    New(new::Args),
    /// Test an operator module offline against a recording of a real run (`run --record`).
    Test(test::Args),
}

impl Cli {
    /// Runs the parsed command; the exit code is the process's.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Validate(args) => validate::main(args),
            Command::Inspect(args) => inspect::main(args),
            Command::Run(args) => run::main(*args),
            Command::Cluster(args) => cluster::main(*args),
            Command::New(args) => new::main(args),
            Command::Test(args) => test::main(args),
        }
    }
}
