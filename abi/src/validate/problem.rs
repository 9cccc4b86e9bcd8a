//! What validation reports when a module cannot be run: one [`Problem`] per broken rule, each
//! printed as a single line that names the offending item and says how to fix it, collected in a
//! [`ValidationError`].
//!
//! The fixes are written for any language: what to export or import, with which Wasm type, and
//! the toolchain flag where one exists (Rust, Go, TinyGo, C with clang or `zig cc`), with "a
//! wasm-operator SDK does this" beside it rather than instead of it.

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
         `tinygo build -target=wasip1 -buildmode=c-shared`, \
         `GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared` or \
         `zig cc --target=wasm32-wasi -mexec-model=reactor`"
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
         built for the wasm-operator ABI: export a function named `{VERSION_MARKER_V1}` of type \
         func [] -> [] (its body is never called; in C \
         `__attribute__((export_name(\"{VERSION_MARKER_V1}\")))`, in Go \
         `//go:wasmexport {VERSION_MARKER_V1}`), or use a wasm-operator SDK, which exports it"
    )]
    MissingMarker,

    #[error(
        "export `{}` looks like an ABI version marker but is not one: markers are \
         `wasm_operator_abi_v<N>` with N in decimal without leading zeros, e.g. \
         `{VERSION_MARKER_V1}`: rename or remove that export (a wasm-operator SDK exports the \
         right marker)",
        escape(name)
    )]
    MalformedMarker { name: String },

    #[error(
        "exports {} ABI version markers ({}), but a module implements exactly one ABI version: \
         keep only the marker of the version it implements (with an SDK: link a single version \
         of it)",
        names.len(),
        quoted_list(names)
    )]
    MultipleMarkers { names: Vec<String> },

    #[error(
        "the module is built for ABI v{version}, which this host does not support (it supports \
         {}): upgrade wasm-operator, or build the module for one of those versions (export its \
         marker and follow its rules in docs/abi.md, or use an SDK release for it)",
        supported_versions()
    )]
    UnsupportedVersion { version: u32 },

    #[error(
        "missing export `{}` ({expected}), which the host needs: {}",
        escape(name),
        how_to_export(name, expected)
    )]
    MissingExport { name: String, expected: String },

    #[error(
        "export `{}` is {found}, but the ABI requires {expected}: export it with exactly that \
         type ({I32_HINT}; a wasm-operator SDK does)",
        escape(name)
    )]
    WrongExportType {
        name: String,
        expected: String,
        found: String,
    },

    #[error(
        "the module exports `_start` but not `_initialize`: it is a command module, and \
         wasm-operator runs reactor modules: build a reactor, with -buildmode=c-shared \
         (Go/TinyGo), crate-type = [\"cdylib\"] (Rust), -mexec-model=reactor (C with clang or \
         `zig cc`) or `wasi_exec_model = .reactor` (a Zig build)"
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
        "imports `wasm_operator::{}`, which ABI v1 does not provide (it provides {}): import \
         only those (docs/abi.md, Imports), or upgrade wasm-operator; with an SDK, build with a \
         release for ABI v1",
        escape(name),
        host_function_list()
    )]
    UnknownHostFunction { name: String },

    #[error(
        "imports `{}::{}` as {found}, but the ABI defines it as {expected}: declare the \
         imported function with exactly that type ({I32_HINT}; a wasm-operator SDK does)",
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
         `wasi_snapshot_preview1`: this is usually an unresolved external function (declared but \
         never defined, which the linker turned into an import); define it or stop using it, \
         and import host functions from module `wasm_operator` (in C \
         `__attribute__((import_module(\"wasm_operator\"), import_name(\"...\")))`; a \
         wasm-operator SDK does)",
        escape(module),
        escape(name)
    )]
    UnknownImportModule { module: String, name: String },
}

/// What every number in an ABI signature is, in the terms of the languages operators are written
/// in.
const I32_HINT: &str = "every parameter and result is an i32: `int32_t`/`uint32_t` or a \
                        pointer in C, `uint32`/`int32` in Go, `u32`/`i32` in Rust";

/// How to provide the export `name` of type `expected`, for any language.
fn how_to_export(name: &str, expected: &str) -> String {
    let name = escape(name);
    if expected == "memory" {
        return format!(
            "export the module's linear memory as `{name}` (wasm-ld, which clang, Rust, TinyGo \
             and Zig link with, does unless told not to; drop `--no-export-memory` or an \
             imported memory)"
        );
    }
    format!(
        "export a function named `{name}` of type {expected} (in C \
         `__attribute__((export_name(\"{name}\")))`, in Go `//go:wasmexport {name}`), or use a \
         wasm-operator SDK, which exports it"
    )
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
