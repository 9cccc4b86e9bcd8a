//! A token bucket: the per-operator bound on guest-requested requeues (which are delayed until a
//! token is free) and on guest log lines (which are dropped when none is). Time is passed in, so
//! the arithmetic is tested without sleeping.
use std::time::{Duration, Instant};

/// `rate` tokens per second refill a bucket of `burst` tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained tokens per second; must be positive (non-positive is treated as 1/s).
    pub per_second: f64,
    /// Tokens available at once after a quiet period (at least 1).
    pub burst: u32,
}

#[derive(Debug)]
pub struct TokenBucket {
    limit: RateLimit,
    /// Tokens available at `updated`; negative when future tokens are already reserved.
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        let limit = RateLimit {
            per_second: if limit.per_second > 0.0 && limit.per_second.is_finite() {
                limit.per_second
            } else {
                1.0
            },
            burst: limit.burst.max(1),
        };
        TokenBucket {
            limit,
            tokens: f64::from(limit.burst),
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens =
            (self.tokens + elapsed * self.limit.per_second).min(f64::from(self.limit.burst));
        self.updated = self.updated.max(now);
    }

    /// Takes a token if one is free now; false (and nothing taken) otherwise.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Reserves the next token, free or not, and returns how long until it is due (zero when one
    /// is free now). Reservations queue up, so N callers at once are spread 1/rate apart.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            // Bounded: a reservation is only made per reconcile, so the debt stays small.
            Duration::from_secs_f64((-self.tokens / self.limit.per_second).min(1e9))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        per_second: 10.0,
        burst: 5,
    };

    #[test]
    fn a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(LIMIT, start);
        assert_eq!((0..20).filter(|_| bucket.try_take(start)).count(), 5);
        // 300 ms later: three more (10/s).
        let later = start + Duration::from_millis(300);
        assert_eq!((0..20).filter(|_| bucket.try_take(later)).count(), 3);
        // A long pause refills to the burst, not beyond.
        let much_later = later + Duration::from_secs(3600);
        assert_eq!((0..20).filter(|_| bucket.try_take(much_later)).count(), 5);
    }

    #[test]
    fn reservations_are_spread_at_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(LIMIT, start);
        let delays: Vec<Duration> = (0..8).map(|_| bucket.reserve(start)).collect();
        assert!(delays[..5].iter().all(Duration::is_zero), "{delays:?}");
        for (index, delay) in delays[5..].iter().enumerate() {
            let expected = Duration::from_millis(100 * (index as u64 + 1));
            assert!(
                delay.abs_diff(expected) < Duration::from_millis(1),
                "{delays:?}"
            );
        }
    }

    #[test]
    fn nonsense_limits_are_made_safe() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(
            RateLimit {
                per_second: 0.0,
                burst: 0,
            },
            start,
        );
        assert!(bucket.try_take(start));
        assert!(!bucket.try_take(start));
        assert!(bucket.reserve(start) <= Duration::from_secs(2));
    }
}
