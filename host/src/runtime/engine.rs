//! The process-wide wasmtime [`Engine`] configuration and the epoch ticker thread that drives
//! per-call deadlines.
//!
//! Deadlines use epoch interruption rather than fuel: checking an epoch costs a load and a
//! compare at loop headers and function entries, whereas fuel metering slows every basic block.
//! One thread increments the engine's epoch every `epoch_tick`. Running guest code reaches its
//! store's epoch deadline at every tick; the store's callback (`state::on_epoch_deadline`) then
//! either yields the thread and continues or, once the call's wall-clock deadline has passed,
//! interrupts the guest. Deadlines are therefore precise to one tick, and no tick count is ever
//! derived from a (possibly huge) deadline, so nothing can overflow or wrap.

use std::sync::mpsc;
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

/// Increments the engine's epoch every tick until dropped.
///
/// Every [`LoadedModule`](super::LoadedModule) and instance holds an `Arc` to the ticker, so
/// deadlines keep firing for as long as anything can still run guest code.
pub(crate) struct EpochTicker {
    // Dropping the sender disconnects the channel, which is how the thread learns to stop
    // without waiting for a sleep to finish.
    _stop: mpsc::Sender<()>,
}

impl EpochTicker {
    pub fn start(engine: Engine, tick: Duration) -> anyhow::Result<EpochTicker> {
        anyhow::ensure!(!tick.is_zero(), "the epoch tick must be longer than zero");
        let (stop, stopped) = mpsc::channel::<()>();
        thread::Builder::new()
            .name("wasm-epoch-ticker".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engine.increment_epoch();
                }
            })
            .context("starting the epoch ticker thread")?;
        Ok(EpochTicker { _stop: stop })
    }
}
