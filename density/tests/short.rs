//! The density benchmark in its `test` profile, as part of `cargo test`: two ring instances as
//! native kube-rs processes, as native controller-runtime processes, and in one host (Rust
//! module, resident and swapped), each converging on a real API server and yielding sane
//! figures. (`make bench-density` runs the full profile and writes docs/benchmarks.md.)

use std::time::Duration;

use operators_tests::Lang;
use wasm_operator_density::report::{self, RunInfo};
use wasm_operator_density::setup::Setup;
use wasm_operator_density::{binaries, run, Profile};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_host_rings_converge_and_measure_sanely() {
    let binaries = tokio::task::spawn_blocking(binaries::binaries)
        .await
        .unwrap()
        .expect("building the host and the native ring operators");
    let profile = Profile::test();
    let setups = [
        Setup::KubeRs,
        Setup::ControllerRuntime,
        Setup::Host {
            lang: Lang::Rust,
            swapped: false,
        },
        Setup::Host {
            lang: Lang::Rust,
            swapped: true,
        },
    ];
    let outcomes = run::run(&profile, &binaries, &setups, |outcome| {
        eprintln!("{}", report::summary_line(outcome))
    })
    .await
    .expect("setting up the run");
    assert_eq!(outcomes.len(), setups.len());
    for outcome in &outcomes {
        let m = match &outcome.result {
            Ok(m) => m,
            Err(error) => panic!("{}, N={}: {error}", outcome.setup, outcome.n),
        };
        let what = format!("{}, N={}", outcome.setup, outcome.n);
        assert_eq!(m.n, 2, "{what}");
        let processes = if outcome.setup.is_native() { 2 } else { 1 };
        assert_eq!(m.processes, processes, "{what}: processes");
        // Any of these programs maps well over a MiB; none needs a GiB for two rings.
        assert!(
            (1 << 20..1 << 30).contains(&m.pss),
            "{what}: PSS {} bytes",
            m.pss
        );
        // Idle: far below one core (60 s of CPU per minute).
        assert!(
            m.idle_cpu_per_minute < Duration::from_secs(6),
            "{what}: idle CPU {:?}/min",
            m.idle_cpu_per_minute
        );
        assert!(
            m.window >= profile.idle_window,
            "{what}: window {:?}",
            m.window
        );
        let wanted = if matches!(outcome.setup, Setup::Host { swapped: true, .. }) {
            profile.swapped_hops
        } else {
            profile.resident_hops
        };
        assert_eq!(m.hops, wanted, "{what}: hops");
        assert!(
            m.hop_p50 > Duration::ZERO && m.hop_p50 <= m.hop_p99,
            "{what}: hops {:?} {:?}",
            m.hop_p50,
            m.hop_p99
        );
        assert!(
            m.hop_p99 < Duration::from_secs(30),
            "{what}: hop p99 {:?}",
            m.hop_p99
        );
        assert!(
            m.startup_first > Duration::ZERO && m.startup_first <= m.startup_all,
            "{what}: startup {:?} {:?}",
            m.startup_first,
            m.startup_all
        );
        if let Some(swap_ins) = m.swap_ins_in_hops {
            // Every hop found its operator swapped out.
            assert!(
                swap_ins >= m.hops as f64,
                "{what}: {swap_ins} swap-ins for {} hops",
                m.hops
            );
        }
    }
    let info = RunInfo {
        command: "cargo test -p wasm-operator-density",
        machine: "test",
        load_at_end: "?".into(),
        took: Duration::ZERO,
    };
    let section = report::markdown(&outcomes, &profile, &info);
    for setup in setups {
        let row = format!("| {setup} | ");
        assert!(section.contains(&row), "no row for {setup} in:\n{section}");
    }
    assert!(
        section.contains("| 1.00x |"),
        "a native setup compares as 1.00x with itself:\n{section}"
    );
}
