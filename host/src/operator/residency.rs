//! The memory budget: which operators are resident, how much linear memory each holds and when
//! each last worked, so that when the resident ones together exceed the budget the least recently
//! used idle ones are asked to swap out.
//!
//! Workers report here; the decision is made under one lock so two workers finishing at the same
//! moment cannot both pick (or both skip) the same victim. The swap-out itself happens in the
//! victim's own task, which owns its instance: this module only sends it the request.
//!
//! A swap-out can fail (state directory unwritable, disk full): the victim then reports it
//! ([`Residency::swap_out_failed`]), counts as resident again, and is not picked again before a
//! backoff that doubles with each consecutive failure, so a persistently failing swap-out is not
//! retried in a hot loop and the budget picks another idle operator meanwhile.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::worker::Control;
use crate::scheduler::workqueue::BackoffConfig;

/// Backoff before an operator whose swap-out failed may be picked again.
const SWAP_RETRY: BackoffConfig = BackoffConfig {
    base: Duration::from_secs(1),
    max: Duration::from_secs(300),
};

struct Entry {
    control: mpsc::UnboundedSender<Control>,
    /// Linear memory of its resident instance; 0 while swapped out or not instantiated.
    resident_bytes: u64,
    /// A reconcile (or a swap) is in progress: never a victim.
    busy: bool,
    /// Its module cannot be swapped: never a victim, but its memory counts.
    swappable: bool,
    /// Asked to swap out and not yet done: counted as gone, not asked twice.
    evicting: bool,
    last_used: Instant,
    /// Consecutive failed swap-outs, and when it may be picked again after the last one.
    swap_failures: u32,
    retry_after: Option<Instant>,
}

/// Shared by the manager and every worker. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Residency {
    budget: Option<u64>,
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

impl Residency {
    pub fn new(budget: Option<u64>) -> Self {
        Residency {
            budget,
            entries: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn register(&self, name: &str, control: mpsc::UnboundedSender<Control>) {
        self.lock().insert(
            name.to_string(),
            Entry {
                control,
                resident_bytes: 0,
                busy: true,
                swappable: false,
                evicting: false,
                last_used: Instant::now(),
                swap_failures: 0,
                retry_after: None,
            },
        );
    }

    pub fn remove(&self, name: &str) {
        self.lock().remove(name);
    }

    /// The operator starts working (a reconcile, a swap-in): it is the most recently used.
    pub fn busy(&self, name: &str) {
        if let Some(entry) = self.lock().get_mut(name) {
            entry.busy = true;
            entry.last_used = Instant::now();
        }
    }

    /// The operator is idle now with `resident_bytes` of linear memory (0 = swapped out).
    /// Then enforces the budget, which may ask other operators, or this one, to swap out.
    pub fn idle(&self, name: &str, resident_bytes: u64, swappable: bool) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(name) {
            entry.busy = false;
            entry.resident_bytes = resident_bytes;
            entry.swappable = swappable;
            if resident_bytes == 0 {
                entry.evicting = false;
                entry.swap_failures = 0;
                entry.retry_after = None;
            }
        }
        self.enforce(&mut entries);
    }

    /// The operator's swap-out failed and it is still resident: it counts again, and is not
    /// picked before the backoff has passed. Then the budget is enforced with what remains.
    pub fn swap_out_failed(&self, name: &str) {
        self.swap_out_failed_at(name, Instant::now());
    }

    fn swap_out_failed_at(&self, name: &str, now: Instant) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(name) {
            entry.evicting = false;
            entry.swap_failures = entry.swap_failures.saturating_add(1);
            let delay = SWAP_RETRY.delay(entry.swap_failures);
            entry.retry_after = now.checked_add(delay);
            tracing::warn!(
                operator = name,
                failures = entry.swap_failures,
                retry_in_ms = delay.as_millis() as u64,
                "the memory budget could not swap this operator out; it stays resident and counts \
                 against the budget"
            );
        }
        self.enforce_at(&mut entries, now);
    }

    fn enforce(&self, entries: &mut HashMap<String, Entry>) {
        self.enforce_at(entries, Instant::now());
    }

    fn enforce_at(&self, entries: &mut HashMap<String, Entry>, now: Instant) {
        let Some(budget) = self.budget else { return };
        let mut resident: u64 = entries
            .values()
            .filter(|entry| !entry.evicting)
            .map(|entry| entry.resident_bytes)
            .sum();
        if resident <= budget {
            return;
        }
        let mut candidates: Vec<(&String, Instant)> = entries
            .iter()
            .filter(|(_, entry)| {
                !entry.busy
                    && !entry.evicting
                    && entry.swappable
                    && entry.resident_bytes > 0
                    && entry.retry_after.is_none_or(|retry| retry <= now)
            })
            .map(|(name, entry)| (name, entry.last_used))
            .collect();
        candidates.sort_by_key(|(_, last_used)| *last_used);
        let mut victims = Vec::new();
        for (name, _) in candidates {
            if resident <= budget {
                break;
            }
            resident -= entries[name].resident_bytes;
            victims.push(name.clone());
        }
        for name in victims {
            if let Some(entry) = entries.get_mut(&name) {
                tracing::info!(
                    operator = %name,
                    budget,
                    "resident operators exceed the memory budget; swapping out the least recently used idle one"
                );
                entry.evicting = entry.control.send(Control::SwapOut { reply: None }).is_ok();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn residency(
        budget: u64,
        operators: &[&str],
    ) -> (Residency, Vec<mpsc::UnboundedReceiver<Control>>) {
        let residency = Residency::new(Some(budget));
        let receivers = operators
            .iter()
            .map(|name| {
                let (sender, receiver) = mpsc::unbounded_channel();
                residency.register(name, sender);
                receiver
            })
            .collect();
        (residency, receivers)
    }

    fn asked_to_swap(receiver: &mut mpsc::UnboundedReceiver<Control>) -> bool {
        matches!(receiver.try_recv(), Ok(Control::SwapOut { .. }))
    }

    #[test]
    fn the_least_recently_used_idle_operators_go_first_until_under_budget() {
        let (residency, mut receivers) = residency(250, &["a", "b", "c", "d"]);
        for name in ["a", "b", "c"] {
            residency.busy(name);
            residency.idle(name, 100, true);
        }
        // a, b, c resident (300 > 250): a was used longest ago and is asked; b and c stay.
        assert!(asked_to_swap(&mut receivers[0]));
        assert!(!asked_to_swap(&mut receivers[1]));
        assert!(!asked_to_swap(&mut receivers[2]));
        residency.idle("a", 0, true);
        // b is used again, then d arrives: c is now the least recently used.
        residency.busy("b");
        residency.idle("b", 100, true);
        residency.busy("d");
        residency.idle("d", 100, true);
        assert!(asked_to_swap(&mut receivers[2]));
        assert!(!asked_to_swap(&mut receivers[1]));
        assert!(!asked_to_swap(&mut receivers[3]));
    }

    #[test]
    fn busy_unswappable_and_already_evicting_operators_are_never_picked() {
        let (residency, mut receivers) = residency(100, &["busy", "pinned", "idle"]);
        residency.busy("pinned");
        residency.idle("pinned", 100, false);
        residency.busy("idle");
        residency.idle("idle", 100, true);
        assert!(asked_to_swap(&mut receivers[2]));
        residency.busy("busy");
        residency.idle("pinned", 100, false);
        // "idle" was asked already and "busy" is working: nobody else is asked.
        assert!(!asked_to_swap(&mut receivers[0]));
        assert!(!asked_to_swap(&mut receivers[1]));
        assert!(!asked_to_swap(&mut receivers[2]));
    }

    #[test]
    fn a_failed_swap_out_counts_again_and_is_retried_after_a_growing_backoff() {
        let (residency, mut receivers) = residency(150, &["stuck", "other"]);
        residency.busy("stuck");
        residency.idle("stuck", 100, true);
        residency.busy("other");
        residency.idle("other", 100, true);
        // "stuck" is the least recently used: asked, and counted as gone meanwhile.
        assert!(asked_to_swap(&mut receivers[0]));
        assert!(!asked_to_swap(&mut receivers[1]));
        let start = Instant::now();
        residency.swap_out_failed_at("stuck", start);
        // It counts again (200 > 150) but is in backoff: the other one is asked instead.
        assert!(asked_to_swap(&mut receivers[1]));
        assert!(!asked_to_swap(&mut receivers[0]));
        residency.swap_out_failed_at("other", start);
        let mut entries = residency.lock();
        // Within the first backoff (1 s) nobody is asked again: no hot loop.
        residency.enforce_at(&mut entries, start + Duration::from_millis(900));
        assert!(!asked_to_swap(&mut receivers[0]));
        assert!(!asked_to_swap(&mut receivers[1]));
        // After it, the least recently used one is asked again.
        residency.enforce_at(&mut entries, start + Duration::from_millis(1100));
        assert!(asked_to_swap(&mut receivers[0]));
        drop(entries);
        // "other" goes; "stuck" alone is now over the budget, and fails a second time: the
        // backoff doubles.
        residency.idle("other", 0, true);
        residency.idle("stuck", 200, true);
        residency.swap_out_failed_at("stuck", start + Duration::from_secs(2));
        assert!(!asked_to_swap(&mut receivers[0]));
        let mut entries = residency.lock();
        residency.enforce_at(&mut entries, start + Duration::from_millis(3900));
        assert!(!asked_to_swap(&mut receivers[0]));
        residency.enforce_at(&mut entries, start + Duration::from_millis(4100));
        assert!(asked_to_swap(&mut receivers[0]));
        drop(entries);
        // Swapped out at last: the failures are forgotten.
        residency.idle("stuck", 0, true);
        let entries = residency.lock();
        assert_eq!(entries["stuck"].swap_failures, 0);
        assert!(entries["stuck"].retry_after.is_none());
    }

    #[test]
    fn without_a_budget_nobody_is_asked() {
        let residency = Residency::new(None);
        let (sender, mut receiver) = mpsc::unbounded_channel();
        residency.register("a", sender);
        residency.idle("a", u64::MAX / 2, true);
        assert!(receiver.try_recv().is_err());
    }
}
