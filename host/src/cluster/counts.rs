//! Reconcile counts per operator, fed by the manager's reconcile observer, for the
//! WasmOperator status (`reconciles`, `lastError`).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::operator::{ReconcileObserver, ReconcileOutcome, ReconcileRecord};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperatorCounts {
    pub succeeded: u64,
    pub failed: u64,
    /// The message of the latest failed reconcile, with its key.
    pub last_error: Option<String>,
}

#[derive(Clone, Default)]
pub struct ReconcileCounter {
    counts: Arc<Mutex<HashMap<String, OperatorCounts>>>,
}

impl ReconcileCounter {
    /// An observer that counts, then hands the record to `next` (if any).
    pub fn observer(&self, next: Option<ReconcileObserver>) -> ReconcileObserver {
        let counts = self.counts.clone();
        Arc::new(move |record: &ReconcileRecord| {
            {
                let mut counts = counts
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let entry = counts.entry(record.operator.clone()).or_default();
                match &record.outcome {
                    ReconcileOutcome::Succeeded { .. } => entry.succeeded += 1,
                    ReconcileOutcome::Failed { reason, message } => {
                        entry.failed += 1;
                        // Kept as the status will show it: the guest's text, bounded.
                        entry.last_error = Some(super::status::truncate_utf8(
                            &format!("reconcile {} failed ({reason}): {message}", record.key),
                            super::status::MAX_MESSAGE_BYTES,
                        ));
                    }
                }
            }
            if let Some(next) = &next {
                next(record);
            }
        })
    }

    pub fn get(&self, operator: &str) -> OperatorCounts {
        self.lock().get(operator).cloned().unwrap_or_default()
    }

    /// Starts counting afresh (a new module was loaded).
    pub fn reset(&self, operator: &str) {
        self.lock().remove(operator);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, OperatorCounts>> {
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
