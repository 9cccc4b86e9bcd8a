//! The data each instance's wasmtime `Store` carries: WASI context, limiter, the operator's
//! services, the running call's wall-clock deadline and the in-progress call's buffers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Memory, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;

use super::error::outside_call;
use super::limits::{MemoryLimiter, MAX_CALL_DEADLINE};
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
    /// When the running guest code (instantiation, `_initialize`, init or reconcile) must stop;
    /// `None` before the first call, when no guest code may run.
    pub deadline_at: Option<Instant>,
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
}

impl CallState {
    pub fn new(input: Vec<u8>) -> CallState {
        CallState {
            input,
            result: None,
            response: Vec::new(),
        }
    }
}

/// The instant `deadline` from now, never panicking: the deadline is first bounded by
/// [`MAX_CALL_DEADLINE`], and should the clock still be unable to represent the sum, the bound
/// is halved until it can (an `Instant` near the end of its range is the only way that happens).
pub(crate) fn deadline_from_now(deadline: Duration) -> Instant {
    let now = Instant::now();
    let mut bounded = deadline.min(MAX_CALL_DEADLINE);
    loop {
        match now.checked_add(bounded) {
            Some(at) => return at,
            None => bounded /= 2,
        }
    }
}

/// Ticks of guest execution between two checks of the wall-clock deadline, each of which also
/// yields the guest's thread to other tasks (see [`on_epoch_deadline`]).
pub(crate) const TICKS_BETWEEN_YIELDS: u64 = 1;

/// What the store does when guest code reaches its epoch deadline (every
/// [`TICKS_BETWEEN_YIELDS`] ticks of running guest code): before the call's deadline, yield to
/// the tokio scheduler and carry on, so a spinning guest shares its worker thread with watches,
/// Lease renewal, /healthz and other operators; at or after it, interrupt the guest, which is
/// reported as [`CallError::DeadlineExceeded`](super::CallError::DeadlineExceeded) exactly as a
/// plain epoch deadline was.
pub(crate) fn on_epoch_deadline(state: &StoreState) -> UpdateDeadline {
    match state.deadline_at {
        Some(at) if Instant::now() < at => {
            // tokio's yield_now defers the wake-up until the worker has polled its I/O driver and
            // other ready tasks, which plain wake-and-return-Pending does not guarantee.
            UpdateDeadline::YieldCustom(TICKS_BETWEEN_YIELDS, Box::pin(tokio::task::yield_now()))
        }
        _ => UpdateDeadline::Interrupt,
    }
}

impl StoreState {
    /// The in-progress call, or the ABI violation of calling `import` outside one.
    pub fn active_call(&mut self, import: &str) -> wasmtime::Result<&mut CallState> {
        self.call.as_mut().ok_or_else(|| outside_call(import))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_deadline_does_not_overflow_the_clock() {
        let before = Instant::now();
        for huge in [
            Duration::MAX,
            Duration::from_secs(u64::MAX / 2),
            MAX_CALL_DEADLINE * 2,
        ] {
            let at = deadline_from_now(huge);
            assert!(at >= before + MAX_CALL_DEADLINE, "{huge:?} gave {at:?}");
            assert!(
                at <= Instant::now() + MAX_CALL_DEADLINE,
                "{huge:?} is bounded"
            );
        }
    }

    #[test]
    fn an_ordinary_deadline_is_kept() {
        let before = Instant::now();
        let at = deadline_from_now(Duration::from_secs(10));
        assert!(at >= before + Duration::from_secs(10));
        assert!(at <= Instant::now() + Duration::from_secs(10));
        assert!(deadline_from_now(Duration::ZERO) <= Instant::now());
    }
}
