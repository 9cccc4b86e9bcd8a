//! `wasm-operator validate FILE...`: checks operator modules against the ABI, printing one line per
//! module that passes (`FILE: ok (abi v1, capabilities: kubernetes, log)`) and one line per problem
//! of each module that does not (`FILE: <problem>`). Exits 0 when every module passes, 1 otherwise.
//!
//! A module that passes but whose initial memory is larger than `--memory-limit` (default: the
//! host's default limit) gets a warning line on stderr (`FILE: warning: ...`): the host would
//! refuse to load it for an operator with that limit. It is a warning, not a failure, because the
//! limit is chosen per operator when it is deployed.
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use wasm_operator_abi::ModuleInfo;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Operator modules (.wasm) to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Warn when a module's initial memory exceeds this memory limit (the limit operators
    /// running it will have).
    #[arg(long, value_name = "SIZE", default_value = "64Mi")]
    pub memory_limit: String,
}

pub fn main(args: Args) -> ExitCode {
    let mut all_valid = true;
    // Write errors (a closed pipe, say) are ignored: they must not turn into a panic, and the
    // exit code still tells the outcome.
    let mut stdout = io::stdout().lock();
    let mut stderr = io::stderr().lock();
    let memory_limit = match super::run_config::parse_bytes(&args.memory_limit) {
        Ok(limit) => limit,
        Err(error) => {
            let _ = writeln!(stderr, "--memory-limit: {error}");
            return ExitCode::from(2);
        }
    };
    for path in &args.files {
        let shown = path.display();
        let bytes = match read_module(path) {
            Ok(bytes) => bytes,
            Err(message) => {
                all_valid = false;
                let _ = writeln!(stderr, "{shown}: {message}");
                continue;
            }
        };
        match wasm_operator_abi::validate(&bytes) {
            Ok(info) => {
                let _ = writeln!(stdout, "{shown}: ok ({})", summary(&info));
                if let Some(warning) = crate::runtime::initial_memory_over_limit(
                    info.memory.initial_pages,
                    memory_limit,
                    "the",
                ) {
                    let _ = writeln!(stderr, "{shown}: warning: {warning}");
                }
            }
            Err(error) => {
                all_valid = false;
                for problem in &error.problems {
                    let _ = writeln!(stderr, "{shown}: {problem}");
                }
            }
        }
    }
    if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `abi v1, capabilities: kubernetes, log`.
fn summary(info: &ModuleInfo) -> String {
    format!(
        "abi v{}, capabilities: {}",
        info.abi_version,
        capability_list(info)
    )
}

/// The module's capabilities, comma-separated, or `none`.
pub(crate) fn capability_list(info: &ModuleInfo) -> String {
    if info.capabilities.is_empty() {
        return "none".to_owned();
    }
    info.capabilities
        .iter()
        .map(|capability| capability.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Larger files are refused before reading them whole; real operator modules are a few MiB, and
/// without a bound a path like /dev/zero would read forever.
const MAX_MODULE_BYTES: u64 = 1 << 30;

/// Reads a module file, or says in one line why it cannot (the OS error included).
pub(crate) fn read_module(path: &Path) -> Result<Vec<u8>, String> {
    let file = File::open(path).map_err(|error| format!("cannot read: {error}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_MODULE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("cannot read: {error}"))?;
    if bytes.len() as u64 > MAX_MODULE_BYTES {
        return Err(format!(
            "larger than {} MiB, which no operator module is: check the path",
            MAX_MODULE_BYTES >> 20
        ));
    }
    Ok(bytes)
}
