//! [`OperatorInstance`]: one live instance of an operator module in its own wasmtime `Store`,
//! the two calls the ABI defines on it (init and reconcile), and swapping it out to disk.
//!
//! Every stretch of guest execution (instantiation with `_initialize`, init, reconcile) has a
//! wall-clock deadline, enforced twice: running guest code yields its thread at every epoch tick
//! and is interrupted at the first tick past the deadline (`state::on_epoch_deadline`), and the
//! whole call is dropped at the deadline wherever it waits (a host call, a WASI `poll_oneoff`
//! sleep), see [`within_deadline`]. Both end as [`CallError::DeadlineExceeded`].

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_operator_abi::names::{
    INITIALIZE_EXPORT, INIT_EXPORT, MEMORY_EXPORT, RECONCILE_EXPORT, RETURN_ERROR, RETURN_OK,
};
use wasm_operator_abi::{GuestError, InitInput, ReconcileRequest, ReconcileResult, Registration};
use wasmtime::{Instance, Memory, Store, Trap, TypedFunc};

use super::engine::EpochTicker;
use super::error::{classify, CallError};
use super::limits::{InstanceLimits, MemoryLimiter};
use super::module::{LoadedModule, ModuleInner};
use super::services::HostServices;
use super::state::{
    deadline_from_now, on_epoch_deadline, CallState, StoreState, TICKS_BETWEEN_YIELDS,
};
use super::swap::clock::GuestClock;
use super::swap::{MappedSnapshot, SwapOutError, SwappedInstance};
use super::wasi;

/// A live operator instance. Calls are sequential (`&mut self`), matching the ABI's "one call at
/// a time per instance". After an error for which [`CallError::instance_unusable`] is true, every
/// further call fails with that same error without entering the guest: drop the instance and
/// instantiate a new one.
pub struct OperatorInstance {
    pub(super) module: LoadedModule,
    pub(super) store: Store<StoreState>,
    pub(super) instance: Instance,
    pub(super) memory: Memory,
    init_export: TypedFunc<i32, i32>,
    reconcile_export: TypedFunc<i32, i32>,
    limits: InstanceLimits,
    /// The failure after which the instance must not be called again; repeated to every later
    /// call, so a caller that checks [`CallError::instance_unusable`] recreates the instance.
    unusable: Option<CallError>,
    /// True while a call is running; still true at the next call if the previous call's future
    /// was dropped midway, which leaves the guest's state undefined.
    call_in_progress: bool,
    /// Set when the memory is a copy-on-write mapping of a snapshot (a lazy swap-in).
    pub(super) mapped: Option<MappedSnapshot>,
}

impl OperatorInstance {
    /// A fresh instance, initialised by `_initialize` if the module exports it.
    pub(crate) async fn new(
        module: LoadedModule,
        operator: &str,
        limits: InstanceLimits,
        services: Arc<dyn HostServices>,
    ) -> Result<OperatorInstance, CallError> {
        let mut instance = OperatorInstance::create(
            module,
            operator,
            limits,
            services,
            GuestClock::starting_now(),
        )
        .await?;
        instance.run_initialize().await?;
        Ok(instance)
    }

    /// A fresh instance without running `_initialize`: what swap-in restores state into.
    pub(super) async fn create(
        module: LoadedModule,
        operator: &str,
        limits: InstanceLimits,
        services: Arc<dyn HostServices>,
        clock: GuestClock,
    ) -> Result<OperatorInstance, CallError> {
        let inner = &module.inner;
        let limits = limits.bounded();
        let deadline_at = deadline_from_now(limits.call_deadline);
        let state = StoreState {
            wasi: wasi::build_context(operator, clock),
            limiter: MemoryLimiter::new(limits.max_memory_bytes),
            operator: operator.into(),
            services,
            memory: None,
            call: None,
            // Instantiation (the start function) and `_initialize` share one deadline.
            deadline_at: Some(deadline_at),
            clock,
        };
        let mut store = Store::new(&inner.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_callback(|store| Ok(on_epoch_deadline(store.data())));
        store.set_epoch_deadline(TICKS_BETWEEN_YIELDS);

        let instantiating = inner.instance_pre.instantiate_async(&mut store);
        let instance = match within_deadline(&inner.ticker, deadline_at, instantiating).await {
            Ok(instance) => instance,
            Err(error) => return Err(classify_in(&store, &limits, inner, error)),
        };
        let memory = instance
            .get_memory(&mut store, MEMORY_EXPORT)
            .ok_or_else(|| {
                CallError::AbiViolation(format!(
                    "the module does not export its memory as `{MEMORY_EXPORT}`"
                ))
            })?;
        store.data_mut().memory = Some(memory);
        let init_export = typed_export(&instance, &mut store, INIT_EXPORT)?;
        let reconcile_export = typed_export(&instance, &mut store, RECONCILE_EXPORT)?;

        Ok(OperatorInstance {
            module,
            store,
            instance,
            memory,
            init_export,
            reconcile_export,
            limits,
            unusable: None,
            call_in_progress: false,
            mapped: None,
        })
    }

    async fn run_initialize(&mut self) -> Result<(), CallError> {
        let Some(initialize) = self.instance.get_func(&mut self.store, INITIALIZE_EXPORT) else {
            return Ok(());
        };
        let initialize = initialize.typed::<(), ()>(&self.store).map_err(|error| {
            CallError::AbiViolation(format!(
                "`{INITIALIZE_EXPORT}` has the wrong signature: {error}"
            ))
        })?;
        let deadline_at = self
            .store
            .data()
            .deadline_at
            .unwrap_or_else(|| deadline_from_now(self.limits.call_deadline));
        let ticker = self.module.inner.ticker.clone();
        within_deadline(
            &ticker,
            deadline_at,
            initialize.call_async(&mut self.store, ()),
        )
        .await
        .map_err(|error| classify_in(&self.store, &self.limits, &self.module.inner, error))
    }

    /// Writes the instance's state (linear memory and mutable globals) to a snapshot in `dir`,
    /// then drops the instance so its memory returns to the operating system. After a lazy
    /// swap-in, only the pages written since go to disk, as a delta layer on the previous
    /// snapshot's files.
    ///
    /// Each file is written crash-safely (temporary name, fsync, rename) with mode 0600; `dir` is
    /// created (mode 0700) if missing. This does blocking file I/O proportional to what changed
    /// since the last swap-in (amortised: now and then the layers are merged or compacted): run
    /// it on a blocking thread (`tokio::task::spawn_blocking`). On failure the instance comes
    /// back unchanged in the error. See the `swap` module docs.
    pub fn swap_out(self, dir: &Path) -> Result<SwappedInstance, Box<SwapOutError>> {
        super::swap::swap_out(self, dir, false)
    }

    /// [`OperatorInstance::swap_out`], always writing a complete snapshot (what a swap-out does
    /// when the layers written since the last full snapshot must be compacted), never a delta
    /// layer: costs the state's size.
    pub fn swap_out_full(self, dir: &Path) -> Result<SwappedInstance, Box<SwapOutError>> {
        super::swap::swap_out(self, dir, true)
    }

    /// Whether this instance's memory is a copy-on-write mapping of a snapshot (it was swapped
    /// in lazily), as opposed to ordinary anonymous memory.
    pub fn maps_snapshot(&self) -> bool {
        self.mapped.is_some()
    }

    /// The error that makes this instance unusable, if any: its state is then not worth saving.
    pub(super) fn failure(&self) -> Option<CallError> {
        if self.call_in_progress {
            return Some(CallError::Trap(
                "an earlier call was cancelled before it finished".to_owned(),
            ));
        }
        self.unusable.clone()
    }

    pub(super) fn operator_name(&self) -> Arc<str> {
        self.store.data().operator.clone()
    }

    pub(super) fn clock(&self) -> GuestClock {
        self.store.data().clock
    }

    /// The memory limit, if a growth was refused for exceeding it.
    pub(super) fn memory_limit_hit(&self) -> Option<usize> {
        let limiter = &self.store.data().limiter;
        limiter.limit_was_hit().then(|| limiter.max_memory_bytes())
    }

    /// Calls `wasm_operator_init`: the guest answers with what it wants to watch.
    pub async fn init(&mut self, input: &InitInput) -> Result<Registration, CallError> {
        let export = self.init_export.clone();
        self.call(export, INIT_EXPORT, input).await
    }

    /// Calls `wasm_operator_reconcile` for one object.
    pub async fn reconcile(
        &mut self,
        request: &ReconcileRequest,
    ) -> Result<ReconcileResult, CallError> {
        let export = self.reconcile_export.clone();
        self.call(export, RECONCILE_EXPORT, request).await
    }

    /// The current size of the instance's linear memory, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory.data_size(&self.store)
    }

    /// The operator this instance runs for.
    pub fn operator(&self) -> &str {
        &self.store.data().operator
    }

    /// The module this is an instance of.
    pub fn module(&self) -> &LoadedModule {
        &self.module
    }

    /// The limits this instance runs under.
    pub fn limits(&self) -> InstanceLimits {
        self.limits
    }

    async fn call<I: Serialize, O: DeserializeOwned>(
        &mut self,
        export: TypedFunc<i32, i32>,
        export_name: &str,
        input: &I,
    ) -> Result<O, CallError> {
        if self.call_in_progress {
            // The guest was torn down mid-execution, which leaves its state as undefined as a trap.
            self.unusable.get_or_insert_with(|| {
                CallError::Trap("an earlier call was cancelled before it finished".to_owned())
            });
        }
        if let Some(failure) = &self.unusable {
            return Err(failure.clone());
        }
        let input = serde_json::to_vec(input).map_err(|error| {
            CallError::Host(format!("encoding the `{export_name}` input: {error}"))
        })?;
        let input_len = i32::try_from(input.len()).map_err(|_| {
            CallError::Host(format!(
                "the `{export_name}` input is {} bytes, too large for a 32-bit guest",
                input.len()
            ))
        })?;

        let deadline_at = deadline_from_now(self.limits.call_deadline);
        let state = self.store.data_mut();
        state.call = Some(CallState::new(input));
        state.limiter.forget_refusal();
        state.deadline_at = Some(deadline_at);
        self.store.set_epoch_deadline(TICKS_BETWEEN_YIELDS);
        self.call_in_progress = true;
        let ticker = self.module.inner.ticker.clone();
        let returned = within_deadline(
            &ticker,
            deadline_at,
            export.call_async(&mut self.store, input_len),
        )
        .await;
        self.call_in_progress = false;
        let call = self.store.data_mut().call.take();

        let outcome = match returned {
            Ok(code) => interpret_return(export_name, code, call.and_then(|call| call.result)),
            Err(error) => Err(classify_in(
                &self.store,
                &self.limits,
                &self.module.inner,
                error,
            )),
        };
        if let Err(error) = &outcome {
            if error.instance_unusable() {
                self.unusable = Some(error.clone());
            }
        }
        outcome
    }
}

/// Runs `guest` (a wasmtime async call) until it finishes or `deadline_at` passes, whatever it is
/// waiting for: epoch interruption only stops running guest code, not a guest blocked in a WASI
/// function (a `poll_oneoff` sleep of an hour) or a host call. At the deadline the call's future
/// is dropped, which wasmtime supports (the guest's fiber is unwound), and the outcome is the
/// same interrupt as an epoch deadline's, so it is classified the same way; like after any
/// deadline, the instance is then unusable. The epoch advances only while such a call runs.
async fn within_deadline<T>(
    ticker: &EpochTicker,
    deadline_at: Instant,
    guest: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    let _ticking = ticker.ticking();
    if tokio::runtime::Handle::try_current().is_err() {
        // No tokio timer to wait on (the host always runs on tokio; this only keeps a foreign
        // executor from panicking): the epoch deadline still stops running guest code.
        return guest.await;
    }
    match tokio::time::timeout_at(deadline_at.into(), guest).await {
        Ok(outcome) => outcome,
        Err(_elapsed) => Err(wasmtime::Error::new(Trap::Interrupt)),
    }
}

fn classify_in(
    store: &Store<StoreState>,
    limits: &InstanceLimits,
    module: &ModuleInner,
    error: wasmtime::Error,
) -> CallError {
    classify(
        error,
        limits.call_deadline,
        store.data().limiter.max_memory_bytes(),
        store.data().limiter.limit_was_hit(),
        &module.export_names,
    )
}

fn typed_export(
    instance: &wasmtime::Instance,
    store: &mut Store<StoreState>,
    name: &str,
) -> Result<TypedFunc<i32, i32>, CallError> {
    instance
        .get_typed_func::<i32, i32>(store, name)
        .map_err(|error| {
            CallError::AbiViolation(format!(
                "the module must export `{name}` as [i32] -> [i32]: {error}"
            ))
        })
}

/// Turns an export's return code and written result into the call's outcome.
fn interpret_return<O: DeserializeOwned>(
    export_name: &str,
    code: i32,
    result: Option<Vec<u8>>,
) -> Result<O, CallError> {
    let result_type = std::any::type_name::<O>()
        .rsplit("::")
        .next()
        .unwrap_or("result");
    match code {
        RETURN_OK => {
            let bytes = result.ok_or_else(|| {
                CallError::AbiViolation(format!(
                    "`{export_name}` returned {RETURN_OK} (ok) without calling `result_write`"
                ))
            })?;
            serde_json::from_slice(&bytes).map_err(|error| {
                CallError::AbiViolation(format!(
                    "`{export_name}` returned a result that is not a valid {result_type}: {error}"
                ))
            })
        }
        RETURN_ERROR => {
            // A failure the guest could not describe is still the guest's failure (docs/abi.md,
            // return codes): retried like any other, the instance kept.
            let Some(bytes) = result else {
                return Err(CallError::Guest(GuestError::new(format!(
                    "{export_name} returned {RETURN_ERROR} without a result"
                ))));
            };
            let error: GuestError = serde_json::from_slice(&bytes).map_err(|error| {
                CallError::AbiViolation(format!(
                    "`{export_name}` returned {RETURN_ERROR} (error) with a result that is not a \
                     valid GuestError: {error}"
                ))
            })?;
            Err(CallError::Guest(error))
        }
        other => Err(CallError::AbiViolation(format!(
            "`{export_name}` returned {other}; the ABI allows {RETURN_OK} (ok) or {RETURN_ERROR} (error)"
        ))),
    }
}
