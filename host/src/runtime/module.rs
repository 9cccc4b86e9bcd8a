//! [`LoadedModule`]: a validated, compiled operator module, ready to instantiate.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use wasm_operator_abi::validate::WASM_PAGE_SIZE;
use wasm_operator_abi::ModuleInfo;
use wasmtime::{Engine, InstancePre};

use super::cache::LoadSource;
use super::engine::EpochTicker;
use super::error::{CallError, LoadError};
use super::instance::OperatorInstance;
use super::limits::InstanceLimits;
use super::services::HostServices;
use super::state::StoreState;
use super::swap::instrument::SwapSupport;

/// A compiled operator module. Cheap to clone; every instance of the module shares its code,
/// and so does every operator loading the same module bytes while it is loaded.
#[derive(Clone)]
pub struct LoadedModule {
    pub(crate) inner: Arc<ModuleInner>,
    /// How this load got its code, and how long it took (a shared module's take no time).
    pub(crate) load_source: LoadSource,
    pub(crate) load_time: Duration,
}

pub(crate) struct ModuleInner {
    pub info: ModuleInfo,
    pub digest: String,
    pub engine: Engine,
    /// Imports resolved once per module, so instantiation does no name lookups.
    pub instance_pre: InstancePre<StoreState>,
    /// Advances the epoch while instances of the module run guest code (see
    /// [`EpochTicker::ticking`]), and keeps the ticker alive as long as they can.
    pub ticker: Arc<EpochTicker>,
    /// Export names by function index, to name frames in trap messages: release builds of
    /// operators are usually stripped of their name section.
    pub export_names: HashMap<u32, String>,
    /// Whether instances can be swapped out, and where their state lives.
    pub swap: SwapSupport,
}

/// Function index -> export name, from the module's export section.
pub(crate) fn function_export_names(wasm: &[u8]) -> HashMap<u32, String> {
    use wasmparser::{ExternalKind, Parser, Payload};
    let mut names = HashMap::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(Payload::ExportSection(exports)) => {
                for export in exports.into_iter().flatten() {
                    if export.kind == ExternalKind::Func {
                        names.insert(export.index, export.name.to_owned());
                    }
                }
                break;
            }
            // The export section precedes the code; there is nothing more to find.
            Ok(Payload::CodeSectionStart { .. }) | Err(_) => break,
            Ok(_) => {}
        }
    }
    names
}

impl LoadedModule {
    /// What validation found out about the module (ABI version, exports, capabilities).
    pub fn info(&self) -> &ModuleInfo {
        &self.inner.info
    }

    /// The module's content digest, `sha256:<hex>`.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// Whether the compiled code came from the precompiled cache or was compiled by this load.
    pub fn load_source(&self) -> LoadSource {
        self.load_source
    }

    /// True when both are the same compiled module (loaded once, shared).
    pub fn shares_code_with(&self, other: &LoadedModule) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// How long compiling (or loading from the cache) took, excluding validation.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// Whether instances of this module can be swapped out to disk
    /// ([`OperatorInstance::swap_out`]).
    pub fn swappable(&self) -> bool {
        matches!(self.inner.swap, SwapSupport::Supported(_))
    }

    /// Why instances of this module cannot be swapped out, when they cannot (e.g. the module
    /// changes its tables at run time, which a snapshot of memory and globals would not capture).
    pub fn swap_unsupported_reason(&self) -> Option<&str> {
        match &self.inner.swap {
            SwapSupport::Supported(_) => None,
            SwapSupport::Unsupported(reason) => Some(reason),
        }
    }

    /// Refuses the module for `operator` when its initial linear memory alone exceeds the
    /// operator's memory limit: every instantiation would fail, so the operator could never
    /// start, and retrying init (what a failed start otherwise leads to) cannot help. The error
    /// names both sizes and what to change.
    pub fn check_memory_limit(
        &self,
        operator: &str,
        limits: &InstanceLimits,
    ) -> Result<(), LoadError> {
        match initial_memory_over_limit(
            self.info().memory.initial_pages,
            limits.max_memory_bytes,
            &format!("operator `{operator}`'s"),
        ) {
            Some(message) => Err(LoadError::MemoryLimitTooSmall(message)),
            None => Ok(()),
        }
    }

    /// Creates a fresh instance for `operator` and runs its `_initialize` export, if any.
    ///
    /// Instantiation and `_initialize` run under `limits`, like any other call.
    pub async fn instantiate(
        &self,
        operator: &str,
        limits: InstanceLimits,
        services: Arc<dyn HostServices>,
    ) -> Result<OperatorInstance, CallError> {
        OperatorInstance::new(self.clone(), operator, limits, services).await
    }
}

/// Why a module with `initial_pages` of initial memory cannot run under a memory limit of
/// `limit_bytes`, or `None` when it fits. `whose` names the limit (`operator `x`'s`, `the`).
/// Shared by the load-time check and `wasm-operator validate --memory-limit`.
pub fn initial_memory_over_limit(
    initial_pages: u64,
    limit_bytes: usize,
    whose: &str,
) -> Option<String> {
    let initial_bytes = initial_pages.saturating_mul(WASM_PAGE_SIZE);
    let limit = limit_bytes as u64;
    if initial_bytes <= limit {
        return None;
    }
    Some(format!(
        "the module's initial memory is {initial_pages} pages ({}), more than {whose} memory \
         limit of {}: raise the operator's memory limit (`spec.limits.memory` of its \
         WasmOperator, `memoryLimit` of its `run` config entry, or `--memory-limit`) to at least \
         {}, or reduce the module's initial memory, which is its static data plus its stack \
         (e.g. a smaller stack: `-Wl,-z,stack-size=...` with clang or `zig cc`, whose default is \
         16 MiB; or a smaller `-Wl,--initial-memory=...`)",
        mebibytes(initial_bytes),
        mebibytes(limit),
        // Whole MiB, the unit limits are usually written in; saturating, though a 32-bit
        // memory (at most 65536 pages) cannot come near overflowing.
        mebibytes(initial_bytes.div_ceil(1 << 20).saturating_mul(1 << 20)),
    ))
}

/// `bytes` for people: `16 MiB`, `16.06 MiB`, or plain bytes below 1 MiB (`1000 bytes`).
fn mebibytes(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes < MIB {
        format!("{bytes} bytes")
    } else if bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{:.2} MiB", bytes as f64 / MIB as f64)
    }
}

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModule")
            .field("digest", &self.inner.digest)
            .field("load_source", &self.load_source)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_memory_is_compared_with_the_limit_in_whole_pages() {
        assert_eq!(initial_memory_over_limit(256, 16 << 20, "the"), None);
        let message =
            initial_memory_over_limit(257, 16 << 20, "the").expect("257 pages exceed 16 MiB");
        assert!(
            message.starts_with(
                "the module's initial memory is 257 pages (16.06 MiB), more than the memory limit \
                 of 16 MiB: raise"
            ),
            "{message}"
        );
        assert!(message.contains("to at least 17 MiB"), "{message}");
        // The largest 32-bit memory, and a limit that is not a whole number of MiB.
        let message = initial_memory_over_limit(65536, 1000, "the").expect("4 GiB exceed 1000 B");
        assert!(
            message.contains("65536 pages (4096 MiB)") && message.contains("limit of 1000 bytes"),
            "{message}"
        );
    }
}
