//! Module fetches off the controller task. Tenants choose module URLs, and a URL that accepts
//! and never answers holds its fetch for the whole `--module-fetch-timeout`: fetched one after
//! another in the controller's loop, N such sources delayed every other WasmOperator by N
//! timeouts on every resync. So each fetch is a task of its own, and its result comes back to
//! the controller on a channel; validation and loading stay in the controller, one at a time.
//!
//! One fetch is in flight per WasmOperator: a newer generation or module source version
//! supersedes (aborts) the one in flight, and a result whose fetch was superseded is dropped.
//! The module bytes fetches hold are bounded by the fetcher's module slots (see
//! [`crate::cluster::source`]): a fetched module keeps its slot until the controller drops it.
use tokio::sync::mpsc;

use super::{AbortOnDrop, Key};
use crate::cluster::resource::ModuleSource;
use crate::cluster::source::{FetchedModule, SourceError, SourceFetcher};

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
}

/// Starts fetches and hands their results to the controller.
pub(super) struct Fetches {
    fetcher: SourceFetcher,
    results: mpsc::UnboundedSender<Fetched>,
    next_id: u64,
}

impl Fetches {
    /// The fetcher's results arrive on the receiver.
    pub fn new(fetcher: SourceFetcher) -> (Self, mpsc::UnboundedReceiver<Fetched>) {
        let (results, receiver) = mpsc::unbounded_channel();
        let fetches = Fetches {
            fetcher,
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
        let results = self.results.clone();
        let (key, source) = (key.clone(), source.clone());
        let task = tokio::spawn(async move {
            // Bounded by --module-fetch-timeout, all requests included.
            let result = fetcher.fetch(&key.0, &source).await;
            let _ = results.send(Fetched { key, id, result });
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
