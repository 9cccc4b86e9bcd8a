//! What validation reports when a module cannot be run: one [`Problem`] per broken rule, each
//! printed as a single line that names the offending item and says how to fix it, collected in a
//! [`ValidationError`].

use std::fmt;

use crate::names::{self, VERSION_MARKER_V1};

/// Why a module cannot be run, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Never empty.
    pub problems: Vec<Problem>,
}

impl ValidationError {
    pub(crate) fn single(problem: Problem) -> Self {
        ValidationError {
            problems: vec![problem],
        }
    }
}

impl fmt::Display for ValidationError {
    /// One problem per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}

/// One broken rule. `Display` is one line (names from the module are escaped, so even a name with
/// a newline in it cannot break that).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("not a WebAssembly module: {detail}")]
    NotWasm { detail: String },

    #[error(
        "this is a WebAssembly component; wasm-operator v1 loads core modules: build for \
         wasm32-wasip1 (not wasip2), e.g. `cargo build --target wasm32-wasip1`, \
         `tinygo build -target=wasip1 -buildmode=c-shared` or \
         `GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared`"
    )]
    Component,

    #[error(
        "invalid WebAssembly at byte offset {offset}: {}; the file is truncated or corrupt, or \
         uses a WebAssembly feature this host does not support: rebuild it",
        escape(message)
    )]
    InvalidWasm { offset: usize, message: String },

    #[error(
        "no ABI version marker: the module does not export `{VERSION_MARKER_V1}`, so it was not \
         built for the wasm-operator ABI; use the wasm-operator SDK, which exports it"
    )]
    MissingMarker,

    #[error(
        "export `{}` looks like an ABI version marker but is not one: markers are \
         `wasm_operator_abi_v<N>` with N in decimal, e.g. `{VERSION_MARKER_V1}`; use the \
         wasm-operator SDK, which exports the right one",
        escape(name)
    )]
    MalformedMarker { name: String },

    #[error(
        "exports {} ABI version markers ({}), but a module implements exactly one ABI version: \
         link a single version of the wasm-operator SDK",
        names.len(),
        quoted_list(names)
    )]
    MultipleMarkers { names: Vec<String> },

    #[error(
        "the module is built for ABI v{version}, which this host does not support (it supports \
         {}): upgrade wasm-operator, or build the module with an SDK release for one of those",
        supported_versions()
    )]
    UnsupportedVersion { version: u32 },

    #[error(
        "missing export `{}` ({expected}), which the host needs: use the wasm-operator SDK, \
         which exports it",
        escape(name)
    )]
    MissingExport { name: String, expected: String },

    #[error(
        "export `{}` is {found}, but the ABI requires {expected}: export it with exactly that \
         type (the wasm-operator SDK does)",
        escape(name)
    )]
    WrongExportType {
        name: String,
        expected: String,
        found: String,
    },

    #[error(
        "the module exports `_start` but not `_initialize`: it is a command module, and \
         wasm-operator runs reactor modules: build with -buildmode=c-shared (Go/TinyGo) or \
         crate-type = [\"cdylib\"] (Rust)"
    )]
    CommandModule,

    #[error(
        "memory {index} is a 64-bit memory (memory64), but the ABI passes 32-bit pointers: build \
         for wasm32-wasip1, not a wasm64 target"
    )]
    Memory64 { index: u32 },

    #[error(
        "memory {index} is shared (threads), but operator modules run single-threaded: build \
         without the `atomics` target feature and without threads"
    )]
    SharedMemory { index: u32 },

    #[error(
        "imports {kind} `{}::{}`, but a module may import only functions: define and export its \
         own memory, tables and globals (e.g. drop `--import-memory` from the linker flags)",
        escape(module),
        escape(name)
    )]
    ImportedNonFunction {
        module: String,
        name: String,
        kind: String,
    },

    #[error(
        "imports `wasm_operator::{}`, which ABI v1 does not provide (it provides {}): build with \
         an SDK release for ABI v1, or upgrade wasm-operator",
        escape(name),
        host_function_list()
    )]
    UnknownHostFunction { name: String },

    #[error(
        "imports `{}::{}` as {found}, but the ABI defines it as {expected}: declare it exactly \
         as docs/abi.md specifies (the wasm-operator SDK does)",
        escape(module),
        escape(name)
    )]
    WrongImportType {
        module: String,
        name: String,
        expected: String,
        found: String,
    },

    #[error(
        "imports `wasi_snapshot_preview1::{}`, which is not a WASI preview 1 function: build for \
         wasm32-wasip1 with a current toolchain",
        escape(name)
    )]
    UnknownWasiFunction { name: String },

    #[error(
        "imports `{}::{}`, but a module may import only from `wasm_operator` and \
         `wasi_snapshot_preview1`: this is usually an unresolved external function; remove it, \
         or declare host functions through the wasm-operator SDK",
        escape(module),
        escape(name)
    )]
    UnknownImportModule { module: String, name: String },
}

/// Names come from the module and may hold anything, line breaks included.
fn escape(name: &str) -> String {
    name.escape_debug().to_string()
}

fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("`{}`", escape(name)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn supported_versions() -> String {
    names::SUPPORTED_VERSIONS
        .iter()
        .map(|version| format!("v{version}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn host_function_list() -> String {
    names::HOST_IMPORTS
        .iter()
        .map(|import| import.name)
        .collect::<Vec<_>>()
        .join(", ")
}
