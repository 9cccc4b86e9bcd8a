//! How big a run is: `full` (make bench-density, docs/benchmarks.md), `quick` (the same setups
//! and N with short windows, to try a change) and `test` (inside `make test`).

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Profile {
    pub name: &'static str,
    /// Ring instances per measurement.
    pub counts: Vec<usize>,
    /// The quiet window over which idle CPU is measured.
    pub idle_window: Duration,
    /// One-hop latency samples of a resident setup (one change at a time).
    pub resident_hops: usize,
    /// Samples of a swapped setup: every hop starts with its operator swapped out, so a ring
    /// of N yields N per round and rounds wait for every operator to be swapped out again.
    pub swapped_hops: usize,
    /// The host's idle period before a swap-out, in swapped setups.
    pub swap_after: &'static str,
    /// How long a setup may take to start and converge, or to swap everything out.
    pub converge_within: Duration,
    /// At most this long waiting for a setup's CPU use to drop after it converged.
    pub settle_within: Duration,
}

impl Profile {
    pub fn full() -> Profile {
        Profile {
            name: "full",
            counts: vec![1, 10, 50, 100],
            // 60 s windows: 32 of them make most of the run's ~40 minutes on 2 cores.
            idle_window: Duration::from_secs(60),
            resident_hops: 100,
            // Each round of a swapped setup waits for every operator to be swapped out again,
            // a second or two: at N=1 that is one round per sample.
            swapped_hops: 20,
            swap_after: "1s",
            converge_within: Duration::from_secs(300),
            settle_within: Duration::from_secs(30),
        }
    }

    pub fn quick() -> Profile {
        Profile {
            name: "quick",
            idle_window: Duration::from_secs(10),
            resident_hops: 30,
            swapped_hops: 10,
            ..Profile::full()
        }
    }

    pub fn test() -> Profile {
        Profile {
            name: "test",
            counts: vec![2],
            idle_window: Duration::from_secs(3),
            resident_hops: 6,
            swapped_hops: 4,
            swap_after: "1s",
            converge_within: Duration::from_secs(120),
            settle_within: Duration::from_secs(10),
        }
    }

    pub fn by_name(name: &str) -> Option<Profile> {
        match name {
            "full" => Some(Profile::full()),
            "quick" => Some(Profile::quick()),
            "test" => Some(Profile::test()),
            _ => None,
        }
    }
}
