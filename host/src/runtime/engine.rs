//! The process-wide wasmtime [`Engine`] configuration and the epoch ticker thread that drives
//! per-call deadlines.
//!
//! Deadlines use epoch interruption rather than fuel: checking an epoch costs a load and a
//! compare at loop headers and function entries, whereas fuel metering slows every basic block.
//! One thread increments the engine's epoch every `epoch_tick` while guest code may be running
//! (a [`Ticking`] guard is held around every call into a guest) and sleeps otherwise, so a host
//! whose operators all wait costs no CPU for deadlines. Running guest code reaches its
//! store's epoch deadline at every tick; the store's callback (`state::on_epoch_deadline`) then
//! either yields the thread and continues or, once the call's wall-clock deadline has passed,
//! interrupts the guest. Deadlines are therefore precise to one tick, and no tick count is ever
//! derived from a (possibly huge) deadline, so nothing can overflow or wrap.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, Strategy};

/// Whether every linear memory is a mapping of its own, as the on-demand allocator below makes
/// it. Lazy swap-in maps snapshot files over linear memory and relies on this; with a pooling
/// allocator, a recycled slot could keep a snapshot's pages, so swap-in copies instead. Keep this
/// in step with the allocation strategy.
pub(crate) const MEMORIES_HAVE_OWN_MAPPINGS: bool = true;

/// Builds the engine every operator module is compiled for and runs on.
pub(crate) fn build_engine() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config
        .strategy(Strategy::Cranelift)
        .cranelift_opt_level(OptLevel::Speed)
        .epoch_interruption(true)
        // On-demand allocation gives every linear memory its own mapping, which is what lets a
        // swapped-out instance's memory be restored by mapping a file over it; the pooling
        // allocator reuses slots and would mix foreign mappings with recycled ones.
        .allocation_strategy(InstanceAllocationStrategy::OnDemand)
        // Data segments are mapped copy-on-write from the (file-backed) module image, so a fresh
        // instance does not copy its initial memory.
        .memory_init_cow(true);
    Engine::new(&config)
        .map_err(super::error::to_anyhow)
        .context("configuring the wasmtime engine")
}

/// Increments the engine's epoch every tick while at least one [`Ticking`] guard is held, until
/// dropped.
///
/// Every [`LoadedModule`](super::LoadedModule) and instance holds an `Arc` to the ticker, so
/// deadlines keep firing for as long as anything can still run guest code.
pub(crate) struct EpochTicker {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<TickerState>,
    changed: Condvar,
}

#[derive(Default)]
struct TickerState {
    /// Guest calls in flight (held [`Ticking`] guards).
    calls: usize,
    stopped: bool,
    /// Epoch increments so far.
    ticks: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, TickerState> {
        // The state is two plain counters, consistent whatever a panicking holder was doing.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl EpochTicker {
    pub fn start(engine: Engine, tick: Duration) -> anyhow::Result<EpochTicker> {
        anyhow::ensure!(!tick.is_zero(), "the epoch tick must be longer than zero");
        let shared = Arc::new(Shared {
            state: Mutex::new(TickerState::default()),
            changed: Condvar::new(),
        });
        let thread_shared = shared.clone();
        thread::Builder::new()
            .name("wasm-epoch-ticker".into())
            .spawn(move || tick_while_calls_run(&engine, &thread_shared, tick))
            .context("starting the epoch ticker thread")?;
        Ok(EpochTicker { shared })
    }

    /// Keeps the epoch advancing until the guard is dropped: held around every call into guest
    /// code (instantiation, `_initialize`, every export).
    pub fn ticking(&self) -> Ticking {
        let mut state = self.shared.lock();
        state.calls += 1;
        if state.calls == 1 {
            self.shared.changed.notify_all();
        }
        Ticking {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.changed.notify_all();
    }
}

/// A guest call in flight: the epoch advances while any of these exists.
pub(crate) struct Ticking {
    shared: Arc<Shared>,
}

impl Drop for Ticking {
    fn drop(&mut self) {
        self.shared.lock().calls -= 1;
    }
}

/// The ticker thread: asleep while no call runs, otherwise one increment per tick. A call that
/// starts while it sleeps wakes it; its first tick then comes one tick later, as it would have
/// with a free-running ticker at worst.
fn tick_while_calls_run(engine: &Engine, shared: &Shared, tick: Duration) {
    let mut state = shared.lock();
    loop {
        state = shared
            .changed
            .wait_while(state, |s| s.calls == 0 && !s.stopped)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.stopped {
            return;
        }
        // A full tick, unless the ticker is dropped meanwhile.
        let (after, _) = shared
            .changed
            .wait_timeout_while(state, tick, |s| !s.stopped)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state = after;
        if state.stopped {
            return;
        }
        state.ticks += 1;
        engine.increment_epoch();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn ticks(ticker: &EpochTicker) -> u64 {
        ticker.shared.lock().ticks
    }

    fn wait_for_ticks(ticker: &EpochTicker, at_least: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while ticks(ticker) < at_least {
            assert!(
                Instant::now() < deadline,
                "the epoch did not advance while a call ran"
            );
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn the_epoch_advances_only_while_a_call_runs() {
        let engine = build_engine().unwrap();
        let ticker = EpochTicker::start(engine, Duration::from_millis(1)).unwrap();
        let call = ticker.ticking();
        wait_for_ticks(&ticker, 3);
        let second_call = ticker.ticking();
        drop(call);
        let still_running = ticks(&ticker);
        wait_for_ticks(&ticker, still_running + 3);
        drop(second_call);
        // At most the tick under way when the last call ended completes; then nothing, over a
        // window of a hundred ticks.
        let idle_from = ticks(&ticker);
        thread::sleep(Duration::from_millis(100));
        assert!(
            ticks(&ticker) <= idle_from + 1,
            "the epoch advanced with no call running"
        );
        // A new call wakes the ticker.
        let _call = ticker.ticking();
        wait_for_ticks(&ticker, ticks(&ticker) + 3);
    }
}
