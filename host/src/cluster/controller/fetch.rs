//! Module fetches off the controller task. Tenants choose module URLs, and a URL that accepts
//! and never answers holds its fetch for the whole `--module-fetch-timeout`: fetched one after
//! another in the controller's loop, N such sources delayed every other WasmOperator by N
//! timeouts on every resync. So each fetch is a task of its own, and its result comes back to
//! the controller on a channel; validation and loading stay in the controller, one at a time.
//!
//! One fetch is in flight per WasmOperator: a newer generation or module source version
//! supersedes (aborts) the one in flight, and a result whose fetch was superseded is dropped.
//! How many fetches run at once is bounded so the modules they hold stay within a memory
//! budget ([`FETCH_MEMORY_BUDGET_BYTES`]): a slot is held from the start of the download until
//! the controller has loaded (or refused) the module.
use std::sync::Arc;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::{AbortOnDrop, Key};
use crate::cluster::resource::ModuleSource;
use crate::cluster::source::{FetchedModule, SourceError, SourceFetcher};

/// The most module bytes fetches may hold at once (each up to `--max-module-size`), well
/// inside the 512 Mi pod together with the module being compiled and its transient copies.
pub const FETCH_MEMORY_BUDGET_BYTES: usize = 128 << 20;

/// However small modules are, no more fetches than this run at once.
pub const MAX_CONCURRENT_FETCHES: usize = 16;

/// However large modules may be, at least this many fetches run at once, so one slow source
/// never holds every other WasmOperator back.
pub const MIN_CONCURRENT_FETCHES: usize = 2;

/// How many fetches may run at once for modules of at most `max_module_bytes`.
pub fn concurrent_fetches(max_module_bytes: usize) -> usize {
    (FETCH_MEMORY_BUDGET_BYTES / max_module_bytes.max(1))
        .clamp(MIN_CONCURRENT_FETCHES, MAX_CONCURRENT_FETCHES)
}

/// The (generation, module source version) a fetch is for.
pub(super) type Target = (Option<i64>, Option<String>);

/// A fetch in flight for one WasmOperator; dropping it aborts the fetch.
pub(super) struct InFlight {
    id: u64,
    pub target: Target,
    _task: AbortOnDrop,
}

/// A fetch's result, on its way to the controller.
pub(super) struct Fetched {
    pub key: Key,
    id: u64,
    pub result: Result<FetchedModule, SourceError>,
    /// Held until the controller is done with the module.
    _slot: Option<OwnedSemaphorePermit>,
}

/// Starts fetches and hands their results to the controller.
pub(super) struct Fetches {
    fetcher: SourceFetcher,
    slots: Arc<Semaphore>,
    results: mpsc::UnboundedSender<Fetched>,
    next_id: u64,
}

impl Fetches {
    /// The fetcher's results arrive on the receiver.
    pub fn new(fetcher: SourceFetcher) -> (Self, mpsc::UnboundedReceiver<Fetched>) {
        let (results, receiver) = mpsc::unbounded_channel();
        let slots = concurrent_fetches(fetcher.limits().max_module_bytes);
        let fetches = Fetches {
            fetcher,
            slots: Arc::new(Semaphore::new(slots)),
            results,
            next_id: 0,
        };
        (fetches, receiver)
    }

    /// Fetches the module of WasmOperator `key` (in namespace `key.0`) for `target`.
    pub fn start(&mut self, key: &Key, target: Target, source: &ModuleSource) -> InFlight {
        self.next_id += 1;
        let id = self.next_id;
        let fetcher = self.fetcher.clone();
        let slots = self.slots.clone();
        let results = self.results.clone();
        let (key, source) = (key.clone(), source.clone());
        let task = tokio::spawn(async move {
            // The semaphore is never closed; without a slot the fetch would still be bounded
            // by its timeout.
            let slot = slots.acquire_owned().await.ok();
            // Bounded by --module-fetch-timeout, all requests included.
            let result = fetcher.fetch(&key.0, &source).await;
            let _ = results.send(Fetched {
                key,
                id,
                result,
                _slot: slot,
            });
        });
        InFlight {
            id,
            target,
            _task: AbortOnDrop(vec![task]),
        }
    }
}

impl InFlight {
    /// Whether `fetched` is this fetch's result (not one of a fetch it superseded).
    pub fn delivered(&self, fetched: &Fetched) -> bool {
        self.id == fetched.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_follows_the_module_size_cap_within_bounds() {
        assert_eq!(concurrent_fetches(64 << 20), 2);
        assert_eq!(concurrent_fetches(16 << 20), 8);
        assert_eq!(concurrent_fetches(1 << 20), MAX_CONCURRENT_FETCHES);
        assert_eq!(concurrent_fetches(1 << 30), MIN_CONCURRENT_FETCHES);
        assert_eq!(concurrent_fetches(0), MAX_CONCURRENT_FETCHES);
    }
}
