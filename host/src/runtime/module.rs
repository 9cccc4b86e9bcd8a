//! [`LoadedModule`]: a validated, compiled operator module, ready to instantiate.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use wasm_operator_abi::ModuleInfo;
use wasmtime::{Engine, InstancePre};

use super::cache::LoadSource;
use super::engine::EpochTicker;
use super::error::CallError;
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

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModule")
            .field("digest", &self.inner.digest)
            .field("load_source", &self.load_source)
            .finish_non_exhaustive()
    }
}
