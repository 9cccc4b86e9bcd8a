//! The Wasm runtime: one wasmtime engine for all operators, the module cache, operator instances
//! and the ABI's host functions.
//!
//! [`Runtime::load`] validates a module against the ABI, compiles it (or maps it from the
//! precompiled cache) and resolves its imports once, and hands operators loading the same bytes
//! the same compiled module while any of them holds it; [`LoadedModule::check_grants`] refuses it
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

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::{Engine, Linker};

pub use cache::LoadSource;
pub use error::{CallError, LoadError};
pub use grants::granted_capabilities;
pub use instance::OperatorInstance;
pub use limits::{InstanceLimits, MAX_CALL_DEADLINE};
pub use module::{initial_memory_over_limit, LoadedModule};
pub use services::HostServices;
pub use swap::{
    remove_snapshots, RestoreMode, SnapshotManifest, SnapshotMismatch, SwapError, SwapOutError,
    SwappedInstance,
};

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
    /// Modules loaded now, by SHA-256 of their bytes. A hundred operators running one module
    /// then hold one copy of its compiled code's mapping and metadata (tens of KiB of heap
    /// and a mapping per copy otherwise), and only the first pays for loading it.
    loaded: Mutex<HashMap<String, Weak<ModuleInner>>>,
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
                loaded: Mutex::default(),
            }),
        })
    }

    /// Validates `wasm` against the ABI, then compiles it or loads its precompiled code from the
    /// cache. CPU-heavy work runs on tokio's blocking pool.
    pub async fn load(&self, wasm: &[u8]) -> Result<LoadedModule, LoadError> {
        let runtime = self.inner.clone();
        let wasm = wasm.to_vec();
        tokio::task::spawn_blocking(move || runtime.load(&wasm))
            .await
            .map_err(|error| LoadError::Compile(format!("the compile task failed: {error}")))?
    }
}

impl RuntimeInner {
    fn load(&self, wasm: &[u8]) -> Result<LoadedModule, LoadError> {
        let sha256 = hex::encode(Sha256::digest(wasm));
        if let Some(inner) = self.already_loaded(&sha256) {
            return Ok(LoadedModule {
                inner,
                load_source: LoadSource::AlreadyLoaded,
                load_time: Duration::ZERO,
            });
        }
        let info = wasm_operator_abi::validate(wasm)
            .map_err(|error| LoadError::Invalid(error.to_string()))?;
        let started = Instant::now();
        let (module, load_source, swap) =
            swap::instrument::load_module(&self.cache, &self.engine, wasm, &sha256)
                .map_err(|error| LoadError::Compile(format!("{error:#}")))?;
        let load_time = started.elapsed();
        let instance_pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|error| LoadError::Link(format!("{error:#}")))?;
        let inner = Arc::new(ModuleInner {
            export_names: module::function_export_names(wasm),
            info,
            digest: format!("sha256:{sha256}"),
            engine: self.engine.clone(),
            instance_pre,
            ticker: self.ticker.clone(),
            swap,
        });
        Ok(LoadedModule {
            inner: self.share(sha256, inner),
            load_source,
            load_time,
        })
    }

    fn loaded(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<ModuleInner>>> {
        self.loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn already_loaded(&self, sha256: &str) -> Option<Arc<ModuleInner>> {
        self.loaded().get(sha256).and_then(Weak::upgrade)
    }

    /// Records `inner` as the module for `sha256`, unless a concurrent load of the same bytes
    /// got there first: then that one is used and this copy dropped, so every operator ends up
    /// on one module.
    fn share(&self, sha256: String, inner: Arc<ModuleInner>) -> Arc<ModuleInner> {
        let mut loaded = self.loaded();
        loaded.retain(|_, module| module.strong_count() > 0);
        if let Some(existing) = loaded.get(&sha256).and_then(Weak::upgrade) {
            return existing;
        }
        loaded.insert(sha256, Arc::downgrade(&inner));
        inner
    }
}
