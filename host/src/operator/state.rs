//! The observable state of each operator, the "operators by state" metric kept in step, and a
//! stream of state changes for whoever reports them (the cluster mode's status and Events).
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::metrics::{HostMetrics, StateLabels};

/// What an operator is doing now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperatorState {
    /// Its module is being compiled (or taken from the cache), instantiated and initialised;
    /// also while its instance is recreated after a trap, deadline overrun, memory-cap hit or
    /// ABI violation.
    Loading,
    /// A reconcile is in progress.
    Running,
    /// Loaded and watching, waiting for work.
    Idle,
    /// Idle, with its instance state in a snapshot file instead of memory; the next event
    /// restores it before the reconcile is delivered.
    Swapped,
    /// It cannot run: loading or init failed, or its instance cannot be recreated (retried with
    /// backoff in that case). The reason says what happened and what to do.
    Failed { reason: String },
}

impl OperatorState {
    pub fn label(&self) -> &'static str {
        match self {
            OperatorState::Loading => "loading",
            OperatorState::Running => "running",
            OperatorState::Idle => "idle",
            OperatorState::Swapped => "swapped",
            OperatorState::Failed { .. } => "failed",
        }
    }
}

impl fmt::Display for OperatorState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OperatorState::Failed { reason } => write!(f, "failed: {reason}"),
            other => f.write_str(other.label()),
        }
    }
}

const ALL_LABELS: [&str; 5] = ["loading", "running", "idle", "swapped", "failed"];

/// An operator entered `state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateChange {
    pub operator: String,
    pub state: OperatorState,
}

/// How many changes a slow receiver may fall behind before it misses some (and is told so).
const CHANGES_BUFFERED: usize = 1024;

/// The state of every operator, shared by the manager and the operators' tasks.
#[derive(Clone)]
pub(crate) struct StateBoard {
    states: Arc<Mutex<BTreeMap<String, OperatorState>>>,
    metrics: HostMetrics,
    changes: broadcast::Sender<StateChange>,
}

impl StateBoard {
    pub fn new(metrics: HostMetrics) -> Self {
        let board = StateBoard {
            states: Arc::default(),
            metrics,
            changes: broadcast::channel(CHANGES_BUFFERED).0,
        };
        board.publish(&BTreeMap::new());
        board
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, OperatorState>> {
        self.states
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a new operator as Loading; false if the name is taken.
    pub fn claim(&self, name: &str) -> bool {
        let mut states = self.lock();
        if states.contains_key(name) {
            return false;
        }
        states.insert(name.to_string(), OperatorState::Loading);
        self.publish(&states);
        true
    }

    pub fn set(&self, name: &str, state: OperatorState) {
        let mut states = self.lock();
        // An operator being unloaded is removed first; its task must not bring it back.
        if let Some(current) = states.get_mut(name) {
            if *current == state {
                return;
            }
            *current = state.clone();
            self.publish(&states);
            // Nobody listening is fine.
            let _ = self.changes.send(StateChange {
                operator: name.to_string(),
                state,
            });
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<StateChange> {
        self.changes.subscribe()
    }

    pub fn get(&self, name: &str) -> Option<OperatorState> {
        self.lock().get(name).cloned()
    }

    pub fn remove(&self, name: &str) {
        let mut states = self.lock();
        states.remove(name);
        self.publish(&states);
    }

    pub fn all(&self) -> Vec<(String, OperatorState)> {
        self.lock()
            .iter()
            .map(|(name, state)| (name.clone(), state.clone()))
            .collect()
    }

    fn publish(&self, states: &BTreeMap<String, OperatorState>) {
        for label in ALL_LABELS {
            let count = states
                .values()
                .filter(|state| state.label() == label)
                .count();
            self.metrics
                .operators
                .get_or_create(&StateLabels {
                    state: label.to_string(),
                })
                .set(count as i64);
        }
    }
}
