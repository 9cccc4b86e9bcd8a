//! The data each instance's wasmtime `Store` carries: WASI context, limiter, the operator's
//! services and the in-progress call's buffers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Memory;
use wasmtime_wasi::p1::WasiP1Ctx;

use super::error::outside_call;
use super::limits::MemoryLimiter;
use super::services::HostServices;
use super::swap::clock::GuestClock;

pub(crate) struct StoreState {
    pub wasi: WasiP1Ctx,
    pub limiter: MemoryLimiter,
    pub operator: Arc<str>,
    pub services: Arc<dyn HostServices>,
    /// The guest's exported memory, set once instantiation has finished.
    pub memory: Option<Memory>,
    /// Present exactly while the host is inside `wasm_operator_init` or `wasm_operator_reconcile`.
    pub call: Option<CallState>,
    /// The monotonic clock the WASI context reads; carried over to the instance's next
    /// incarnation when it is swapped out and in.
    pub clock: GuestClock,
}

/// The buffers of one export call. The ABI is pull-based: the host keeps the input and the last
/// host-call response here until the guest copies them into memory it allocated itself.
pub(crate) struct CallState {
    pub input: Vec<u8>,
    pub result: Option<Vec<u8>>,
    pub response: Vec<u8>,
    pub deadline_at: Instant,
}

impl CallState {
    pub fn new(input: Vec<u8>, deadline: Duration) -> CallState {
        CallState {
            input,
            result: None,
            response: Vec::new(),
            deadline_at: Instant::now() + deadline,
        }
    }
}

impl StoreState {
    /// The in-progress call, or the ABI violation of calling `import` outside one.
    pub fn active_call(&mut self, import: &str) -> wasmtime::Result<&mut CallState> {
        self.call.as_mut().ok_or_else(|| outside_call(import))
    }
}
