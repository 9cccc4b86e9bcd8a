//! Bounds on guest-controlled log text: every line a guest produces (the `log` host call and its
//! stdout/stderr) is truncated on a UTF-8 boundary to [`MAX_LOG_LINE_BYTES`], and each operator
//! may emit at most [`LOG_RATE`] lines (both sources together). Lines beyond the rate are dropped,
//! counted in the `guest_log_lines_dropped` metric and summarised by the host in one warning
//! ("dropped K log lines") when logging resumes, or every [`SUMMARY_INTERVAL`] while it does not.
//! A guest in a logging loop therefore costs the host a bounded number of formatted log lines.
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;

use crate::scheduler::ratelimit::{RateLimit, TokenBucket};

/// Longest guest log message (and, separately, its serialised fields) the host emits, in bytes.
pub const MAX_LOG_LINE_BYTES: usize = 4096;

/// Lines per second one operator may log, with a burst for start-up chatter.
pub const LOG_RATE: RateLimit = RateLimit {
    per_second: 50.0,
    burst: 200,
};

/// How often, at most, the "dropped K log lines" warning is repeated during a flood.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// `text` cut to at most `max` bytes on a character boundary, with a marker saying how much
/// was cut; unchanged when it fits.
pub fn truncate_utf8(text: &str, max: usize) -> Cow<'_, str> {
    let kept = crate::text::prefix_within(text, max);
    if kept.len() == text.len() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(format!(
        "{kept}… [{} bytes truncated]",
        text.len() - kept.len()
    ))
}

/// The log budget of one operator, shared by its host calls and every instance's stdio.
pub struct GuestLog {
    operator: String,
    state: Mutex<LogState>,
}

struct LogState {
    bucket: TokenBucket,
    /// Dropped since the last summary.
    pending_dropped: u64,
    last_summary: Option<Instant>,
    dropped_counter: Option<Counter>,
}

/// One budget per operator name in this process. Weak, so an unloaded operator's budget goes
/// with its last instance; a reloaded operator gets a fresh one.
fn registry() -> &'static Mutex<HashMap<String, Weak<GuestLog>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Weak<GuestLog>>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

impl GuestLog {
    /// The budget of `operator`, created at [`LOG_RATE`] if it has none yet.
    pub fn for_operator(operator: &str) -> Arc<GuestLog> {
        let mut registry = registry()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(existing) = registry.get(operator).and_then(Weak::upgrade) {
            return existing;
        }
        registry.retain(|_, log| log.strong_count() > 0);
        let log = Arc::new(GuestLog::new(operator, LOG_RATE));
        registry.insert(operator.to_string(), Arc::downgrade(&log));
        log
    }

    fn new(operator: &str, rate: RateLimit) -> GuestLog {
        GuestLog {
            operator: operator.to_string(),
            state: Mutex::new(LogState {
                bucket: TokenBucket::new(rate, Instant::now()),
                pending_dropped: 0,
                last_summary: None,
                dropped_counter: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts dropped lines in `counter` too (the operator's metric).
    pub fn count_dropped_in(&self, counter: Counter) {
        self.lock().dropped_counter = Some(counter);
    }

    /// Whether the next line may be emitted now. A refused line is counted as dropped.
    pub fn admit(&self) -> bool {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> bool {
        let mut state = self.lock();
        let admitted = state.bucket.try_take(now);
        if !admitted {
            state.pending_dropped += 1;
            if let Some(counter) = &state.dropped_counter {
                counter.inc();
            }
        }
        let due = state
            .last_summary
            .is_none_or(|last| now.saturating_duration_since(last) >= SUMMARY_INTERVAL);
        if state.pending_dropped > 0 && (admitted || due) {
            tracing::warn!(
                operator = %self.operator,
                dropped = state.pending_dropped,
                "dropped {} log lines of this operator: it logs faster than {} lines/s",
                state.pending_dropped,
                LOG_RATE.per_second
            );
            state.pending_dropped = 0;
            state.last_summary = Some(now);
        }
        admitted
    }

    /// Dropped lines not yet summarised (tests).
    #[cfg(test)]
    fn pending_dropped(&self) -> u64 {
        self.lock().pending_dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters_and_says_how_much_went() {
        assert_eq!(truncate_utf8("short", 10), "short");
        // "é" is two bytes: a cut at byte 3 of "aéé" must fall back to byte 3 = after "aé".
        assert_eq!(truncate_utf8("aéé", 4), "aé… [2 bytes truncated]");
        assert_eq!(truncate_utf8("aéé", 2), "a… [4 bytes truncated]");
        let long = "€".repeat(10_000);
        let cut = truncate_utf8(&long, MAX_LOG_LINE_BYTES);
        assert!(cut.len() < MAX_LOG_LINE_BYTES + 40, "{}", cut.len());
        assert!(cut.starts_with("€€"));
    }

    #[test]
    fn a_flood_is_bounded_and_the_drops_are_counted() {
        let log = GuestLog::new("flood", LOG_RATE);
        let counter = Counter::default();
        log.count_dropped_in(counter.clone());
        let start = Instant::now();
        let admitted = (0..10_000).filter(|_| log.admit_at(start)).count();
        assert_eq!(admitted, LOG_RATE.burst as usize);
        assert_eq!(counter.get(), 10_000 - u64::from(LOG_RATE.burst));
        // The first drop was summarised at once; the rest wait for the next summary.
        assert_eq!(
            log.pending_dropped(),
            10_000 - u64::from(LOG_RATE.burst) - 1
        );
        // A second later, 50 more lines; the first admitted one carries the summary.
        let later = start + Duration::from_secs(1);
        let admitted = (0..1000).filter(|_| log.admit_at(later)).count();
        assert_eq!(admitted, 50);
        assert_eq!(log.pending_dropped(), 950);
    }

    #[test]
    fn one_budget_per_operator_shared_by_its_sources() {
        let first = GuestLog::for_operator("shared-budget-test");
        let second = GuestLog::for_operator("shared-budget-test");
        assert!(Arc::ptr_eq(&first, &second));
        let other = GuestLog::for_operator("another-budget-test");
        assert!(!Arc::ptr_eq(&first, &other));
    }
}
