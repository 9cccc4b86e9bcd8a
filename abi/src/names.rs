//! Every name and Wasm signature of the ABI: the import module, the host functions a guest may
//! import (and the capability each one belongs to), the exports a guest must provide, the version
//! marker and the versions this crate supports.
//!
//! The host links exactly these names, the SDKs export and import exactly these names, and
//! `validate` checks modules against them; docs/abi.md describes what each one means.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The ABI version that this crate's message types and names describe.
pub const CURRENT_VERSION: u32 = 1;

/// Every ABI version a host built from this crate can run.
pub const SUPPORTED_VERSIONS: &[u32] = &[1];

/// Exports whose name starts with this prefix are version markers: `wasm_operator_abi_v<N>`.
///
/// The version lives in the export's name (not in a global or a function result) so that it can be
/// read statically by a validator, and because Go's `//go:wasmexport` can export functions only.
pub const VERSION_MARKER_PREFIX: &str = "wasm_operator_abi_v";

/// The version marker of [`CURRENT_VERSION`], the export every v1 module carries.
pub const VERSION_MARKER_V1: &str = "wasm_operator_abi_v1";

/// The module name every host function is imported from.
pub const IMPORT_MODULE: &str = "wasm_operator";

/// The only other import module a guest may use: WASI preview 1 (see [`crate::wasi`]).
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// Export: the guest's linear memory (32-bit). The host reads and writes payloads through it.
pub const MEMORY_EXPORT: &str = "memory";
/// Export (optional): the reactor initialiser. The host calls it once per fresh instance, before
/// anything else, when the module exports it.
pub const INITIALIZE_EXPORT: &str = "_initialize";
/// Export of command modules. The host never calls it; a module exporting it without
/// [`INITIALIZE_EXPORT`] is a command module and is rejected.
pub const START_EXPORT: &str = "_start";
/// Export: called once per fresh instance after `_initialize`; the guest answers with its
/// Registration.
pub const INIT_EXPORT: &str = "wasm_operator_init";
/// Export: called for every reconcile request.
pub const RECONCILE_EXPORT: &str = "wasm_operator_reconcile";

/// Import: copy the current call's input into guest memory.
pub const INPUT_READ: &str = "input_read";
/// Import: set the current call's result.
pub const RESULT_WRITE: &str = "result_write";
/// Import: copy the last host call's response into guest memory.
pub const RESPONSE_READ: &str = "response_read";
/// Import: perform a Kubernetes API request.
pub const KUBE_REQUEST: &str = "kube_request";
/// Import: perform an outbound HTTP request.
pub const HTTP_REQUEST: &str = "http_request";
/// Import: emit a log record.
pub const LOG: &str = "log";

/// What `wasm_operator_init` and `wasm_operator_reconcile` return when the result holds the
/// success message (Registration or ReconcileResult).
pub const RETURN_OK: i32 = 0;
/// What `wasm_operator_init` and `wasm_operator_reconcile` return when the result holds a
/// GuestError.
pub const RETURN_ERROR: i32 = 1;

/// A WebAssembly number type, as it appears in ABI signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValType {
    I32,
    I64,
    F32,
    F64,
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
            ValType::F32 => "f32",
            ValType::F64 => "f64",
        })
    }
}

/// The Wasm type of a function: parameters and results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FuncSignature {
    pub params: &'static [ValType],
    pub results: &'static [ValType],
}

impl fmt::Display for FuncSignature {
    /// Written the way the specification writes it: `[i32, i32] -> [i32]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_val_types(f, self.params)?;
        f.write_str(" -> ")?;
        write_val_types(f, self.results)
    }
}

fn write_val_types(f: &mut fmt::Formatter<'_>, types: &[ValType]) -> fmt::Result {
    f.write_str("[")?;
    for (index, ty) in types.iter().enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{ty}")?;
    }
    f.write_str("]")
}

/// `[] -> []`: `_initialize` and the version marker.
pub const NO_ARGS_NO_RESULTS: FuncSignature = FuncSignature {
    params: &[],
    results: &[],
};
/// `[i32] -> [i32]`: `wasm_operator_init` and `wasm_operator_reconcile` (input length in, return
/// code out).
pub const ENTRY_POINT_SIGNATURE: FuncSignature = FuncSignature {
    params: &[ValType::I32],
    results: &[ValType::I32],
};
/// `[i32, i32] -> [i32]`: (ptr, len) in, a byte count out. `input_read`, `response_read`,
/// `kube_request`, `http_request`.
pub const PTR_LEN_TO_LEN: FuncSignature = FuncSignature {
    params: &[ValType::I32, ValType::I32],
    results: &[ValType::I32],
};
/// `[i32, i32] -> []`: (ptr, len) in, nothing out. `result_write`, `log`.
pub const PTR_LEN_TO_NOTHING: FuncSignature = FuncSignature {
    params: &[ValType::I32, ValType::I32],
    results: &[],
};

/// A capability an operator may be granted. Each host function that reaches outside the guest
/// belongs to exactly one, so the capabilities a module uses can be read from its imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Capability {
    /// Requests to the Kubernetes API server (`kube_request`).
    Kubernetes,
    /// Outbound HTTP requests (`http_request`).
    Http,
    /// Log records (`log`).
    Log,
}

impl Capability {
    /// Every capability, in a stable order.
    pub const ALL: [Capability; 3] = [Capability::Kubernetes, Capability::Http, Capability::Log];

    /// The name used in the specification, in operator configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Kubernetes => "kubernetes",
            Capability::Http => "http",
            Capability::Log => "log",
        }
    }

    /// The host function that gives a guest this capability.
    pub fn import_name(self) -> &'static str {
        match self {
            Capability::Kubernetes => KUBE_REQUEST,
            Capability::Http => HTTP_REQUEST,
            Capability::Log => LOG,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Returned when a capability name is not one of [`Capability::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability `{name}`: expected one of kubernetes, http, log")]
pub struct UnknownCapability {
    pub name: String,
}

impl FromStr for Capability {
    type Err = UnknownCapability;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Capability::ALL
            .into_iter()
            .find(|capability| capability.as_str() == name)
            .ok_or_else(|| UnknownCapability {
                name: name.to_owned(),
            })
    }
}

/// One host function a guest may import from [`IMPORT_MODULE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostImport {
    pub name: &'static str,
    pub signature: FuncSignature,
    /// `None` for the core memory-protocol functions, which every module may use without a grant.
    pub capability: Option<Capability>,
}

/// Every host function of ABI v1.
pub const HOST_IMPORTS: &[HostImport] = &[
    HostImport {
        name: INPUT_READ,
        signature: PTR_LEN_TO_LEN,
        capability: None,
    },
    HostImport {
        name: RESULT_WRITE,
        signature: PTR_LEN_TO_NOTHING,
        capability: None,
    },
    HostImport {
        name: RESPONSE_READ,
        signature: PTR_LEN_TO_LEN,
        capability: None,
    },
    HostImport {
        name: KUBE_REQUEST,
        signature: PTR_LEN_TO_LEN,
        capability: Some(Capability::Kubernetes),
    },
    HostImport {
        name: HTTP_REQUEST,
        signature: PTR_LEN_TO_LEN,
        capability: Some(Capability::Http),
    },
    HostImport {
        name: LOG,
        signature: PTR_LEN_TO_NOTHING,
        capability: Some(Capability::Log),
    },
];

/// The host function called `name` in [`IMPORT_MODULE`], if ABI v1 has one.
pub fn host_import(name: &str) -> Option<&'static HostImport> {
    HOST_IMPORTS.iter().find(|import| import.name == name)
}

/// One function a guest must (or may) export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestExport {
    pub name: &'static str,
    pub signature: FuncSignature,
    pub required: bool,
}

/// Every function export the ABI gives a meaning to, apart from the version marker (whose name
/// varies with the version) and `_start` (which only matters for rejecting command modules).
pub const GUEST_FUNCTION_EXPORTS: &[GuestExport] = &[
    GuestExport {
        name: INITIALIZE_EXPORT,
        signature: NO_ARGS_NO_RESULTS,
        required: false,
    },
    GuestExport {
        name: INIT_EXPORT,
        signature: ENTRY_POINT_SIGNATURE,
        required: true,
    },
    GuestExport {
        name: RECONCILE_EXPORT,
        signature: ENTRY_POINT_SIGNATURE,
        required: true,
    },
];

/// The signature of every version marker export.
pub const VERSION_MARKER_SIGNATURE: FuncSignature = NO_ARGS_NO_RESULTS;

/// The marker export name for `version`: `wasm_operator_abi_v<version>`.
pub fn version_marker(version: u32) -> String {
    format!("{VERSION_MARKER_PREFIX}{version}")
}

/// What an export name says about the ABI version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerName {
    /// Not a marker: the name does not start with [`VERSION_MARKER_PREFIX`].
    NotAMarker,
    /// A well-formed marker for this version.
    Version(u32),
    /// Starts with the prefix but the rest is not a version number written in decimal without
    /// leading zeros (e.g. `wasm_operator_abi_vx`, `wasm_operator_abi_v01`).
    Malformed,
}

/// Reads the version out of an export name such as `wasm_operator_abi_v1`.
pub fn parse_version_marker(export_name: &str) -> MarkerName {
    let Some(digits) = export_name.strip_prefix(VERSION_MARKER_PREFIX) else {
        return MarkerName::NotAMarker;
    };
    let canonical_decimal = !digits.is_empty()
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    match digits.parse::<u32>() {
        Ok(version) if canonical_decimal => MarkerName::Version(version),
        _ => MarkerName::Malformed,
    }
}

/// Whether a host built from this crate can run modules of `version`.
pub fn is_supported_version(version: u32) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_marker_is_prefix_plus_current_version() {
        assert_eq!(version_marker(CURRENT_VERSION), VERSION_MARKER_V1);
        assert!(is_supported_version(CURRENT_VERSION));
    }

    #[test]
    fn marker_names_parse_strictly() {
        assert_eq!(
            parse_version_marker("wasm_operator_abi_v1"),
            MarkerName::Version(1)
        );
        assert_eq!(
            parse_version_marker("wasm_operator_abi_v12"),
            MarkerName::Version(12)
        );
        assert_eq!(
            parse_version_marker("wasm_operator_abi_v0"),
            MarkerName::Version(0)
        );
        assert_eq!(
            parse_version_marker("wasm_operator_abi_v01"),
            MarkerName::Malformed
        );
        assert_eq!(
            parse_version_marker("wasm_operator_abi_v"),
            MarkerName::Malformed
        );
        assert_eq!(
            parse_version_marker("wasm_operator_abi_v+1"),
            MarkerName::Malformed
        );
        assert_eq!(
            parse_version_marker("wasm_operator_abi_v99999999999"),
            MarkerName::Malformed
        );
        assert_eq!(
            parse_version_marker("wasm_operator_init"),
            MarkerName::NotAMarker
        );
    }

    #[test]
    fn every_capability_has_exactly_one_import() {
        for capability in Capability::ALL {
            let imports: Vec<_> = HOST_IMPORTS
                .iter()
                .filter(|import| import.capability == Some(capability))
                .collect();
            assert_eq!(imports.len(), 1, "{capability}");
            assert_eq!(imports[0].name, capability.import_name());
            assert_eq!(capability.as_str().parse::<Capability>(), Ok(capability));
        }
        assert!("filesystem".parse::<Capability>().is_err());
    }

    #[test]
    fn signatures_print_like_the_spec() {
        assert_eq!(PTR_LEN_TO_LEN.to_string(), "[i32, i32] -> [i32]");
        assert_eq!(NO_ARGS_NO_RESULTS.to_string(), "[] -> []");
        assert_eq!(
            host_import(LOG).map(|import| import.signature),
            Some(PTR_LEN_TO_NOTHING)
        );
        assert_eq!(host_import("malloc"), None);
    }
}
