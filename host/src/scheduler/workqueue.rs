//! The per-operator workqueue, with controller-runtime (client-go) semantics.
//!
//! - A key is queued at most once: adding a key that is already waiting is a no-op.
//! - A key being reconciled that is added again is not handed out twice at the same time; it is
//!   queued again when its reconcile is marked [`WorkQueue::done`], so the change is not lost.
//! - Delayed adds (RequeueAfter timers and error backoff) wait in a timer set owned by the queue;
//!   for one key only the earliest pending deadline is kept, like client-go's delaying queue.
//! - Failures back off exponentially per key (`base * 2^(failures-1)`, capped at `max`) until
//!   [`WorkQueue::forget`] resets the key after a successful reconcile.
//!
//! The queue is shared between the task that feeds it from watch events and the single task
//! that reconciles (one reconcile at a time per operator), so it is a `Mutex` plus a `Notify`.
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Longest delay a delayed add honours. Operators choose RequeueAfter freely; beyond this the
/// deadline would be meaningless for a running host (and could overflow the clock).
pub const MAX_DELAY: Duration = Duration::from_secs(365 * 24 * 3600);

/// Exponential backoff bounds for failed reconciles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Delay after the first failure.
    pub base: Duration,
    /// The delay never grows beyond this.
    pub max: Duration,
}

impl Default for BackoffConfig {
    /// controller-runtime's per-item defaults are 5 ms .. 1000 s; a host running many operators
    /// against one API server caps lower so a broken operator is retried within minutes.
    fn default() -> Self {
        BackoffConfig {
            base: Duration::from_millis(5),
            max: Duration::from_secs(300),
        }
    }
}

impl BackoffConfig {
    /// The delay before retrying after `failures` consecutive failures (1 = first failure).
    pub fn delay(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(63);
        let factor = 1u64.checked_shl(exponent).unwrap_or(u64::MAX);
        let nanos = (self.base.as_nanos() as u64).saturating_mul(factor);
        Duration::from_nanos(nanos).min(self.max)
    }
}

struct State<K> {
    /// Keys ready to be handed out, in order.
    ready: VecDeque<K>,
    /// Keys that need a reconcile: those in `ready`, and those added while being reconciled.
    dirty: HashSet<K>,
    /// Keys handed out and not yet marked done.
    processing: HashSet<K>,
    /// Pending delayed adds, ordered by deadline; the sequence number keeps entries distinct.
    timers: BTreeSet<(Instant, u64, K)>,
    /// The deadline and sequence of each key's pending delayed add (only the earliest is kept).
    timer_of: HashMap<K, (Instant, u64)>,
    next_sequence: u64,
    /// Consecutive failures per key, for backoff and the `attempt` number given to the guest.
    failures: HashMap<K, u32>,
    /// For keys a timer made ready: the deadline it was due, until the consumer asks
    /// ([`WorkQueue::take_timer_deadline`]), so the delay from deadline to reconcile is known.
    fired: HashMap<K, Instant>,
    shut_down: bool,
}

/// A deduplicating, delaying, rate-limited queue of reconcile keys.
pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    wake: Notify,
    backoff: BackoffConfig,
}

impl<K: Clone + Eq + Hash + Ord> WorkQueue<K> {
    pub fn new(backoff: BackoffConfig) -> Self {
        WorkQueue {
            state: Mutex::new(State {
                ready: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                timers: BTreeSet::new(),
                timer_of: HashMap::new(),
                next_sequence: 0,
                failures: HashMap::new(),
                fired: HashMap::new(),
                shut_down: false,
            }),
            wake: Notify::new(),
            backoff,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        // A poisoned lock only means another thread panicked while holding it; the state is a
        // set of keys that stays consistent between statements, so keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `key` now unless it is already queued.
    pub fn add(&self, key: K) {
        let mut state = self.lock();
        if Self::add_locked(&mut state, key) {
            drop(state);
            self.wake.notify_one();
        }
    }

    /// Returns true when the key became ready (so a waiting consumer must be woken).
    fn add_locked(state: &mut State<K>, key: K) -> bool {
        if state.shut_down || state.dirty.contains(&key) {
            return false;
        }
        state.dirty.insert(key.clone());
        if state.processing.contains(&key) {
            // Requeued by `done` once the running reconcile finishes.
            return false;
        }
        state.ready.push_back(key);
        true
    }

    /// Queues `key` after `delay`. A zero delay is an immediate add. If the key already has a
    /// pending delayed add with an earlier deadline, that one is kept.
    pub fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let deadline = Instant::now() + delay.min(MAX_DELAY);
        let mut state = self.lock();
        if state.shut_down {
            return;
        }
        if let Some(&(existing, sequence)) = state.timer_of.get(&key) {
            if existing <= deadline {
                return;
            }
            state.timers.remove(&(existing, sequence, key.clone()));
        }
        let sequence = state.next_sequence;
        state.next_sequence += 1;
        state.timers.insert((deadline, sequence, key.clone()));
        state.timer_of.insert(key, (deadline, sequence));
        drop(state);
        // The consumer may be sleeping until a later deadline.
        self.wake.notify_one();
    }

    /// Records a failure of `key` and queues it again after the backoff for its failure count.
    /// Returns the delay chosen.
    pub fn add_rate_limited(&self, key: K) -> Duration {
        let failures = {
            let mut state = self.lock();
            let failures = state.failures.entry(key.clone()).or_insert(0);
            *failures = failures.saturating_add(1);
            *failures
        };
        let delay = self.backoff.delay(failures);
        self.add_after(key, delay);
        delay
    }

    /// Records a failure of `key` and queues it again after `delay`, which the operator chose
    /// instead of the backoff (a GuestError with requeueAfterMs). The failure still counts for
    /// the `attempt` number and for the backoff of later failures.
    pub fn add_failed_after(&self, key: K, delay: Duration) {
        {
            let mut state = self.lock();
            let failures = state.failures.entry(key.clone()).or_insert(0);
            *failures = failures.saturating_add(1);
        }
        self.add_after(key, delay);
    }

    /// Clears the failure count of `key` (after a successful reconcile).
    pub fn forget(&self, key: &K) {
        self.lock().failures.remove(key);
    }

    /// Consecutive failures recorded for `key`.
    pub fn failures(&self, key: &K) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// Marks the reconcile of `key` finished; if the key was added meanwhile it is queued again.
    pub fn done(&self, key: &K) {
        let mut state = self.lock();
        state.processing.remove(key);
        if state.dirty.contains(key) && !state.shut_down {
            state.ready.push_back(key.clone());
            drop(state);
            self.wake.notify_one();
        }
    }

    /// Waits for the next key. The key is marked as being processed until [`WorkQueue::done`].
    /// Returns `None` once the queue is shut down.
    pub async fn next(&self) -> Option<K> {
        loop {
            // Register interest before looking at the state so an add between the check and the
            // wait is not missed (`notify_one` also stores a permit when nobody waits).
            let woken = self.wake.notified();
            let next_deadline = {
                let mut state = self.lock();
                if state.shut_down {
                    return None;
                }
                Self::promote_due_timers(&mut state, Instant::now());
                if let Some(key) = state.ready.pop_front() {
                    state.dirty.remove(&key);
                    state.processing.insert(key.clone());
                    return Some(key);
                }
                state.timers.first().map(|(deadline, _, _)| *deadline)
            };
            match next_deadline {
                Some(deadline) => {
                    tokio::select! {
                        _ = woken => {}
                        _ = tokio::time::sleep_until(deadline) => {}
                    }
                }
                None => woken.await,
            }
        }
    }

    fn promote_due_timers(state: &mut State<K>, now: Instant) {
        while let Some((deadline, _, _)) = state.timers.first() {
            if *deadline > now {
                break;
            }
            let Some((deadline, _, key)) = state.timers.pop_first() else {
                break;
            };
            state.timer_of.remove(&key);
            if Self::add_locked(state, key.clone()) {
                state.fired.insert(key, deadline);
            }
        }
    }

    /// The deadline of the timer that made `key` ready, if a timer did (rather than an add).
    /// Call it once per key handed out by [`WorkQueue::next`].
    pub fn take_timer_deadline(&self, key: &K) -> Option<Instant> {
        self.lock().fired.remove(key)
    }

    /// When the earliest pending delayed add is due.
    pub fn next_timer(&self) -> Option<Instant> {
        self.lock().timers.first().map(|(deadline, _, _)| *deadline)
    }

    /// Stops handing out keys: `next` returns `None` from now on and adds are ignored.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.wake.notify_waiters();
        self.wake.notify_one();
    }

    /// Keys ready to be reconciled now (the queue depth metric).
    pub fn depth(&self) -> usize {
        self.lock().ready.len()
    }

    /// Keys waiting for a RequeueAfter or backoff timer.
    pub fn delayed(&self) -> usize {
        self.lock().timers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> WorkQueue<&'static str> {
        WorkQueue::new(BackoffConfig {
            base: Duration::from_millis(10),
            max: Duration::from_millis(100),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_made_ready_by_a_timer_carries_its_deadline_and_an_added_one_does_not() {
        let queue = queue();
        assert_eq!(queue.next_timer(), None);
        let before = Instant::now();
        queue.add_after("timed", Duration::from_millis(40));
        queue.add_after("later", Duration::from_millis(90));
        assert_eq!(queue.next_timer(), Some(before + Duration::from_millis(40)));
        queue.add("added");
        assert_eq!(queue.next().await, Some("added"));
        assert_eq!(queue.take_timer_deadline(&"added"), None);
        assert_eq!(queue.next().await, Some("timed"));
        assert_eq!(
            queue.take_timer_deadline(&"timed"),
            Some(before + Duration::from_millis(40))
        );
        assert_eq!(queue.take_timer_deadline(&"timed"), None, "taken once");
        assert_eq!(queue.next_timer(), Some(before + Duration::from_millis(90)));
    }

    #[tokio::test]
    async fn keys_are_deduplicated_while_queued() {
        let queue = queue();
        queue.add("a");
        queue.add("b");
        queue.add("a");
        assert_eq!(queue.depth(), 2);
        assert_eq!(queue.next().await, Some("a"));
        assert_eq!(queue.next().await, Some("b"));
        assert_eq!(queue.depth(), 0);
    }

    #[tokio::test]
    async fn key_added_while_processing_is_handed_out_again_only_after_done() {
        let queue = queue();
        queue.add("a");
        assert_eq!(queue.next().await, Some("a"));
        queue.add("a");
        queue.add("a");
        assert_eq!(
            queue.depth(),
            0,
            "a key being reconciled must not be handed out twice at once"
        );
        queue.done(&"a");
        assert_eq!(queue.depth(), 1);
        assert_eq!(queue.next().await, Some("a"));
        queue.done(&"a");
        assert_eq!(
            queue.depth(),
            0,
            "one re-add during processing gives exactly one more reconcile"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_add_is_handed_out_at_its_deadline() {
        let queue = queue();
        let start = Instant::now();
        queue.add_after("a", Duration::from_millis(250));
        assert_eq!(queue.depth(), 0);
        assert_eq!(queue.delayed(), 1);
        assert_eq!(queue.next().await, Some("a"));
        assert_eq!(start.elapsed(), Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn earliest_delayed_add_for_a_key_wins() {
        let queue = queue();
        let start = Instant::now();
        queue.add_after("a", Duration::from_secs(10));
        queue.add_after("a", Duration::from_secs(2));
        queue.add_after("a", Duration::from_secs(5));
        assert_eq!(queue.delayed(), 1);
        assert_eq!(queue.next().await, Some("a"));
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_consumer_wakes_for_an_earlier_timer_added_later() {
        let queue = std::sync::Arc::new(queue());
        let start = Instant::now();
        queue.add_after("late", Duration::from_secs(60));
        let consumer = tokio::spawn({
            let queue = queue.clone();
            async move { queue.next().await }
        });
        tokio::task::yield_now().await;
        queue.add_after("early", Duration::from_secs(1));
        assert_eq!(consumer.await.unwrap(), Some("early"));
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially_up_to_the_cap_and_reset_on_forget() {
        let queue = queue();
        let delays: Vec<Duration> = (0..6).map(|_| queue.add_rate_limited("a")).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(
            delays,
            vec![ms(10), ms(20), ms(40), ms(80), ms(100), ms(100)]
        );
        assert_eq!(queue.failures(&"a"), 6);
        queue.forget(&"a");
        assert_eq!(queue.failures(&"a"), 0);
        assert_eq!(queue.add_rate_limited("a"), ms(10));
    }

    #[tokio::test]
    async fn immediate_add_is_not_delayed_by_a_pending_timer() {
        let queue = queue();
        queue.add_after("a", Duration::from_secs(3600));
        queue.add("a");
        assert_eq!(queue.next().await, Some("a"));
    }

    #[tokio::test]
    async fn shut_down_releases_a_waiting_consumer_and_refuses_new_work() {
        let queue = std::sync::Arc::new(queue());
        let consumer = tokio::spawn({
            let queue = queue.clone();
            async move { queue.next().await }
        });
        tokio::task::yield_now().await;
        queue.shut_down();
        assert_eq!(consumer.await.unwrap(), None);
        queue.add("a");
        assert_eq!(queue.depth(), 0);
    }

    #[tokio::test]
    async fn absurd_delays_are_capped_instead_of_overflowing_the_clock() {
        let queue = queue();
        queue.add_after("a", Duration::MAX);
        assert_eq!(queue.delayed(), 1);
        queue.add("b");
        assert_eq!(queue.next().await, Some("b"));
    }

    #[test]
    fn backoff_delay_saturates_instead_of_overflowing() {
        let backoff = BackoffConfig {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        };
        assert_eq!(backoff.delay(1), Duration::from_secs(1));
        assert_eq!(backoff.delay(200), Duration::from_secs(60));
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(60));
    }
}
