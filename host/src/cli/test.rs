//! `wasm-operator test MODULE --replay TAPE`: tests an operator module offline against a
//! recording of a real run (`wasm-operator run --record DIR`). Exit code 0 when every host call
//! and every outcome is as recorded, 1 with a diff of the first difference, 2 when the replay
//! cannot run (unreadable tape, module that does not load).
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use wasm_operator_abi::tape::Tape;

use super::process::default_cache_dir;
use super::run_config::{parse_bytes, parse_duration};
use super::validate::read_module;
use crate::replay::player::{replay, report};
use crate::runtime::{InstanceLimits, Runtime, RuntimeConfig};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The operator module (.wasm) to test.
    #[arg(value_name = "MODULE")]
    pub module: PathBuf,
    /// A tape written by `wasm-operator run --record DIR` (DIR/NAME.jsonl): the module gets the
    /// recorded init input and reconcile requests, its host calls are answered from the
    /// recording, and the first request or outcome that differs fails the test with a diff
    /// (timestamps aside).
    #[arg(long, value_name = "TAPE")]
    pub replay: PathBuf,
    /// Linear-memory cap of the instance.
    #[arg(long, value_name = "SIZE", default_value = "64Mi")]
    pub memory_limit: String,
    /// Longest a single call into the operator may run.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub call_deadline: String,
}

pub fn main(args: Args) -> ExitCode {
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))
        .and_then(|runtime| runtime.block_on(test(&args)));
    match outcome {
        Ok(Ok(summary)) => {
            let _ = writeln!(std::io::stdout(), "{summary}");
            ExitCode::SUCCESS
        }
        Ok(Err(mismatch)) => {
            let _ = writeln!(std::io::stderr(), "{mismatch}");
            ExitCode::FAILURE
        }
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "wasm-operator test: {message}");
            ExitCode::from(2)
        }
    }
}

/// `Ok(Ok(summary))` when the module behaved as recorded, `Ok(Err(diff))` when it did not.
async fn test(args: &Args) -> Result<Result<String, String>, String> {
    let text = std::fs::read_to_string(&args.replay)
        .map_err(|error| format!("cannot read {}: {error}", args.replay.display()))?;
    let tape = Tape::parse(&text).map_err(|error| format!("{}: {error}", args.replay.display()))?;
    let wasm =
        read_module(&args.module).map_err(|error| format!("{}: {error}", args.module.display()))?;
    let limits = InstanceLimits {
        max_memory_bytes: parse_bytes(&args.memory_limit)?,
        call_deadline: parse_duration(&args.call_deadline)?,
    };
    // The compiled-module cache of `run`, when there is one: a replay right after a build
    // compiles once; without it, a private directory for this process.
    let scratch;
    let cache_dir = match default_cache_dir() {
        Ok(dir) => dir,
        Err(_) => {
            scratch =
                tempfile::tempdir().map_err(|error| format!("no temporary directory: {error}"))?;
            scratch.path().to_path_buf()
        }
    };
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir,
        epoch_tick: Duration::from_millis(10),
    })
    .map_err(|error| format!("cannot start the Wasm runtime: {error:#}"))?;
    let module = runtime
        .load(&wasm)
        .await
        .map_err(|error| format!("{}: {error}", args.module.display()))?;
    let played = replay(&module, &tape, limits)
        .await
        .map_err(|error| error.to_string())?;
    Ok(match played {
        Ok(done) => Ok(format!(
            "{}: init and {} reconciles of operator {} replayed; all {} host calls and every outcome as recorded",
            args.module.display(),
            done.reconciles,
            tape.header.operator,
            done.host_calls
        )),
        Err(mismatch) => Err(format!(
            "{}: differs from the recording {}\n{}",
            args.module.display(),
            args.replay.display(),
            report(&mismatch)
        )),
    })
}
