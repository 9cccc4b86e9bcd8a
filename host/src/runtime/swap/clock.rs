//! The monotonic clock an operator's WASI context reads, continuous across swap-out and swap-in.
//!
//! wasmtime-wasi's default monotonic clock counts from the moment its WASI context was created.
//! A swapped-in instance gets a new WASI context, so with the default clock the guest's monotonic
//! time would jump back to zero while its memory still holds readings from before the swap: Go's
//! scheduler and timers, and any `Instant` kept by a Rust guest, would see time run backwards.
//! [`GuestClock`] is a plain value (an origin and an offset) that the instance keeps and hands to
//! the next WASI context, so guest time keeps advancing with the host's, swapped or not.

use std::time::Instant;

use wasmtime_wasi::HostMonotonicClock;

/// Monotonic nanoseconds since an operator's first instance was created.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuestClock {
    origin: Instant,
    /// What the clock read at `origin` (nonzero for a clock continued from another process).
    offset_nanos: u64,
}

impl GuestClock {
    /// A clock that reads zero now: for a fresh instance.
    pub fn starting_now() -> GuestClock {
        GuestClock {
            origin: Instant::now(),
            offset_nanos: 0,
        }
    }

    /// A clock that reads `nanos` now: for an instance restored from a snapshot another
    /// process wrote, so guest time continues from where it was (not counting the time the
    /// operator spent without a host).
    pub fn continuing_from(nanos: u64) -> GuestClock {
        GuestClock {
            origin: Instant::now(),
            offset_nanos: nanos,
        }
    }

    /// Nanoseconds since the clock started; saturates after 584 years.
    pub fn now_nanos(&self) -> u64 {
        let elapsed = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.offset_nanos.saturating_add(elapsed)
    }
}

impl HostMonotonicClock for GuestClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.now_nanos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copied_clock_continues_from_the_same_origin() {
        let clock = GuestClock::starting_now();
        let first = clock.now_nanos();
        let resumed = clock;
        assert!(resumed.now_nanos() >= first);
        assert!(HostMonotonicClock::now(&resumed) >= first);
    }
}
