//! How big each experiment is. `full` is what `make soak` runs and docs/reliability.md reports
//! (about ten minutes on a 2-core machine); `short` exercises every experiment inside `make test`.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Profile {
    pub name: &'static str,
    /// Ring operators, Rust, Go and TinyGo in turn, and the TestResources each one serves.
    pub rings: usize,
    pub objects_per_ring: usize,
    /// The sustained-load experiment: changes offered per second, and for how long.
    pub load_rate: f64,
    pub load_for: Duration,
    /// The load kept up while a fault is injected.
    pub background_rate: f64,
    /// How long the API server stays down; how long each egress phase lasts.
    pub outage_for: Duration,
    pub egress_phase_for: Duration,
    /// How long objects may take to converge after an experiment before it counts as failed.
    pub converge_within: Duration,
    /// The live state of the operator killed mid-swap-out: big enough that writing its
    /// snapshot takes long enough to be caught in the act.
    pub big_state_bytes: u64,
    /// The memory budget as a fraction of the operators' resident total.
    pub budget_fraction: f64,
}

impl Profile {
    pub fn full() -> Profile {
        Profile {
            name: "full",
            rings: 100,
            objects_per_ring: 10,
            load_rate: 1000.0,
            load_for: Duration::from_secs(60),
            background_rate: 100.0,
            outage_for: Duration::from_secs(30),
            egress_phase_for: Duration::from_secs(15),
            converge_within: Duration::from_secs(180),
            big_state_bytes: 256 << 20,
            budget_fraction: 0.1,
        }
    }

    pub fn short() -> Profile {
        Profile {
            name: "short",
            rings: 6,
            objects_per_ring: 3,
            load_rate: 60.0,
            load_for: Duration::from_secs(5),
            background_rate: 20.0,
            outage_for: Duration::from_secs(3),
            egress_phase_for: Duration::from_secs(3),
            converge_within: Duration::from_secs(120),
            big_state_bytes: 128 << 20,
            budget_fraction: 0.3,
        }
    }

    pub fn by_name(name: &str) -> Option<Profile> {
        match name {
            "full" => Some(Profile::full()),
            "short" => Some(Profile::short()),
            _ => None,
        }
    }
}
