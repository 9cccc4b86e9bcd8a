//! Reporting what the manager does with each operator: swap and failure Events from its
//! stream of state changes (a full resync when the stream lagged), the start of an operator
//! whose init the manager retried after its load failed (Ready from then on), and statuses
//! written promptly for the changes that matter and otherwise on the status timer.
use std::collections::HashMap;

use super::{Controller, Key};
use crate::cluster::status::{self, Observation};
use crate::operator::{OperatorState, StateChange};

impl Controller {
    /// An operator changed state: records swap and failure Events, and writes the status at
    /// once when the change is one to show promptly.
    pub(super) async fn state_changed(&mut self, change: StateChange) {
        if let Some(key) = self.operators.get(&change.operator).cloned() {
            self.report(&key, change.state).await;
        }
    }

    /// Some state changes were missed: compares every operator's current state with the one
    /// last reported (so a missed swap is reported as one), then refreshes every status.
    pub(super) async fn resync_states(&mut self) {
        let states: HashMap<String, OperatorState> = self
            .manager
            .list()
            .into_iter()
            .map(|operator| (operator.name, operator.state))
            .collect();
        let keys: Vec<Key> = self.entries.keys().cloned().collect();
        for key in keys {
            let state = self
                .entries
                .get(&key)
                .and_then(|entry| states.get(&entry.operator).cloned());
            if let Some(state) = state {
                self.report(&key, state).await;
            }
            self.refresh(&key).await;
        }
    }

    /// Records the Event of the operator of `key` entering `state`; writes the status now if
    /// it went to or from Swapped, or to Failed.
    pub(super) async fn report(&mut self, key: &Key, state: OperatorState) {
        let (Some(object), Some(entry)) = (self.objects.get(key), self.entries.get_mut(key)) else {
            return;
        };
        if entry.reported.as_ref() == Some(&state) {
            return;
        }
        let previous = entry.reported.replace(state.clone());
        // The manager's retry of a failed init succeeded: the module it held is running, and
        // the load failure recorded for it is over. Checked against the current state too: a
        // change may be a late one of the instance a reload replaced.
        let started_now = is_started(&state)
            && self
                .manager
                .state(&entry.operator)
                .is_some_and(|now| is_started(&now));
        let started = match (started_now, entry.pending.take()) {
            (false, pending) => {
                entry.pending = pending;
                None
            }
            (true, Some((module, failure))) => {
                let note = format!("loaded module {} once its init succeeded", module.digest);
                let clamped = module.notes.join("; ");
                entry.running = Some(module);
                if entry.problem.as_ref() == Some(&failure) {
                    entry.problem = None;
                    entry.last_warning = None;
                }
                Some((note, clamped))
            }
            (true, None) => None,
        };
        let was_swapped = previous == Some(OperatorState::Swapped);
        let was_failed = matches!(previous, Some(OperatorState::Failed { .. }));
        let event = match &state {
            OperatorState::Swapped => Some((
                false,
                "SwappedOut",
                "the idle operator was swapped out to disk".to_string(),
            )),
            // A load failure was reported when the load failed.
            OperatorState::Failed { reason } if !was_failed && entry.problem.is_none() => {
                Some((true, "Failed", reason.clone()))
            }
            _ if was_swapped => Some((
                false,
                "SwappedIn",
                "the operator was restored from its snapshot".to_string(),
            )),
            _ => None,
        };
        let prompt = was_swapped
            || started.is_some()
            || matches!(state, OperatorState::Swapped | OperatorState::Failed { .. });
        if let Some((note, clamped)) = started {
            let object = object.clone();
            self.counter.reset(&entry.operator);
            self.writer.event(&object, false, "Loaded", &note).await;
            if !clamped.is_empty() {
                self.writer
                    .event(&object, true, "LimitsClamped", &clamped)
                    .await;
            }
        }
        if let Some((warning, reason, note)) = event {
            let object = object.clone();
            self.writer.event(&object, warning, reason, &note).await;
        }
        if prompt {
            self.refresh(key).await;
        }
    }

    /// Recomputes the status of `key` from the manager's state and the reconcile counts, and
    /// writes it if it changed.
    pub(super) async fn refresh(&mut self, key: &Key) {
        // A retried init may have succeeded with its state change still on its way here: report
        // that first, or this status would show the operator Ready beside its load failure.
        let started = self.entries.get(key).and_then(|entry| {
            let state = self.manager.state(&entry.operator)?;
            (entry.pending.is_some() && is_started(&state)).then_some(state)
        });
        if let Some(state) = started {
            // Boxed: report() refreshes in turn (then with nothing pending).
            Box::pin(self.report(key, state)).await;
            if self
                .entries
                .get(key)
                .is_some_and(|entry| entry.pending.is_none())
            {
                return; // report() wrote the status of the started operator
            }
        }
        let (Some(object), Some(entry)) = (self.objects.get(key), self.entries.get(key)) else {
            return;
        };
        let observation = Observation {
            generation: object.metadata.generation,
            running: entry.running.as_ref(),
            state: self.manager.state(&entry.operator),
            problem: entry.problem.as_ref(),
            counts: self.counter.get(&entry.operator),
            host: &self.settings.identity,
        };
        let new_status = status::status(&observation, entry.written.as_ref());
        let changed = entry
            .written
            .as_ref()
            .is_none_or(|written| status::differs(written, &new_status));
        if !changed {
            return;
        }
        match self.writer.write(object, &new_status).await {
            Ok(()) => {
                if let Some(entry) = self.entries.get_mut(key) {
                    entry.written = Some(new_status);
                }
            }
            Err(error) => {
                tracing::warn!(wasmoperator = %format!("{}/{}", key.0, key.1), "cannot write the status: {error}")
            }
        }
    }
}

/// Whether an operator in `state` has an instance that finished init.
fn is_started(state: &OperatorState) -> bool {
    matches!(
        state,
        OperatorState::Idle | OperatorState::Running | OperatorState::Swapped
    )
}
