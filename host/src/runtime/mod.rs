//! The Wasm runtime: one wasmtime engine for all operators, the module cache, operator instances
//! and the ABI's host functions.
//!
//! [`Runtime::load`] validates a module against the ABI, compiles it (or maps it from the
//! precompiled cache) and resolves its imports once; [`LoadedModule::check_grants`] refuses it
//! for an operator not granted the capabilities it imports; [`LoadedModule::instantiate`] creates an
//! isolated [`OperatorInstance`] with its own memory cap and call deadline; calls on it run the
//! guest on a fiber so host calls can be awaited without blocking a thread.
//! [`OperatorInstance::swap_out`] and [`SwappedInstance::swap_in`] move an idle instance's state
//! to disk and back (see the `swap` module).

mod cache;
mod engine;
mod error;
mod grants;
pub(crate) mod guest_log;
mod host_functions;
mod instance;
mod limits;
mod module;
mod private_dir;
pub use private_dir::ensure_private_dir;
mod services;
mod state;
mod swap;
mod wasi;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::{Engine, Linker};

pub use cache::LoadSource;
pub use error::{CallError, LoadError};
pub use grants::granted_capabilities;
pub use instance::OperatorInstance;
pub use limits::{InstanceLimits, MAX_CALL_DEADLINE};
pub use module::LoadedModule;
pub use services::HostServices;
pub use swap::{remove_snapshots, RestoreMode, SwapError, SwapOutError, SwappedInstance};

use cache::ModuleCache;
use engine::EpochTicker;
use module::ModuleInner;
use state::StoreState;

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory for precompiled modules; created if missing.
    pub cache_dir: PathBuf,
    /// How often the epoch advances: the granularity of call deadlines.
    pub epoch_tick: Duration,
}

/// The shared Wasm runtime. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    linker: Linker<StoreState>,
    cache: ModuleCache,
    ticker: Arc<EpochTicker>,
}

impl Runtime {
    /// Creates the engine and linker and starts the epoch ticker thread.
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Runtime> {
        let engine = engine::build_engine()?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |state: &mut StoreState| {
            &mut state.wasi
        })
        .map_err(error::to_anyhow)
        .context("adding WASI preview 1 to the linker")?;
        host_functions::add_to_linker(&mut linker)
            .map_err(error::to_anyhow)
            .context("adding the wasm_operator host functions to the linker")?;
        let cache = ModuleCache::new(&engine, config.cache_dir.clone()).with_context(|| {
            format!(
                "creating the module cache directory {}: choose a writable --cache-dir",
                config.cache_dir.display()
            )
        })?;
        let ticker = Arc::new(EpochTicker::start(engine.clone(), config.epoch_tick)?);
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                cache,
                ticker,
            }),
        })
    }

    /// Validates `wasm` against the ABI, then compiles it or loads its precompiled code from the
    /// cache. CPU-heavy work runs on tokio's blocking pool.
    pub async fn load(&self, wasm: &[u8]) -> Result<LoadedModule, LoadError> {
        let runtime = self.inner.clone();
        let wasm = wasm.to_vec();
        let loaded = tokio::task::spawn_blocking(move || {
            let info = wasm_operator_abi::validate(&wasm)
                .map_err(|error| LoadError::Invalid(error.to_string()))?;
            let sha256 = hex::encode(Sha256::digest(&wasm));
            let started = Instant::now();
            let (module, load_source, swap) =
                swap::instrument::load_module(&runtime.cache, &runtime.engine, &wasm, &sha256)
                    .map_err(|error| LoadError::Compile(format!("{error:#}")))?;
            let load_time = started.elapsed();
            let instance_pre = runtime
                .linker
                .instantiate_pre(&module)
                .map_err(|error| LoadError::Link(format!("{error:#}")))?;
            Ok(ModuleInner {
                export_names: module::function_export_names(&wasm),
                info,
                digest: format!("sha256:{sha256}"),
                engine: runtime.engine.clone(),
                instance_pre,
                ticker: runtime.ticker.clone(),
                load_source,
                load_time,
                swap,
            })
        })
        .await
        .map_err(|error| LoadError::Compile(format!("the compile task failed: {error}")))??;
        Ok(LoadedModule {
            inner: Arc::new(loaded),
        })
    }
}
