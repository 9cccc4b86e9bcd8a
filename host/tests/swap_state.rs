//! Swap keeps an operator's in-memory state: real guests (the stateful Rust guest, WAT operators
//! with every kind of global) are swapped out and in many times between reconciles, lazily
//! (mapped) and eagerly (copied), and must carry on exactly where they were, with their limits.

mod runtime_support;
mod swap_support;

use std::time::Duration;

use wasm_operator::runtime::{CallError, InstanceLimits, RestoreMode};

use runtime_support::*;
use swap_support::*;

const MIB: u64 = 1 << 20;

async fn state_survives_cycles(mode: RestoreMode) {
    let test = test_runtime();
    let module = load_stateful(&test.runtime).await;
    let state_dir = tempfile::tempdir().unwrap();
    let services = FakeServices::new();
    let mut instance = mib_instance(&module, "keeper", &services).await;
    let mut expected = reconcile_ok(&mut instance, &services, "verify").await;
    assert_eq!((expected.reconciles, expected.inits), (1, 1));

    for cycle in 0..20u64 {
        let swapped = swap_out(instance, state_dir.path());
        assert!(swapped.snapshot_path().exists());
        assert!(
            swapped.snapshot_bytes() >= MIB,
            "{} bytes stored",
            swapped.snapshot_bytes()
        );
        instance = swap_in(swapped, services.clone(), mode).await;
        assert_eq!(instance.maps_snapshot(), mode == RestoreMode::Lazy);

        // The state is the one swapped out: same checksum, call count continues, no new init.
        let report = reconcile_ok(&mut instance, &services, "verify").await;
        assert_eq!(report.sum, expected.sum, "cycle {cycle}");
        assert_eq!(report.reconciles, expected.reconciles + 1, "cycle {cycle}");
        assert_eq!(report.inits, 1, "cycle {cycle}: init ran again");

        // Events between swaps change the state; every third cycle grows it too.
        for _ in 0..=(cycle % 3) {
            reconcile_ok(&mut instance, &services, "touch").await;
        }
        if cycle % 3 == 2 {
            reconcile_ok(&mut instance, &services, "grow-200").await;
        }
        expected = reconcile_ok(&mut instance, &services, "verify").await;
        assert_ne!(expected.sum, report.sum, "the touches changed the state");
    }
    assert_eq!(expected.bytes, MIB + 6 * 200 * 1024);
    // A lazily restored instance keeps the files its memory maps; they go with it.
    drop(instance);
    assert!(
        files_in(state_dir.path()).is_empty(),
        "a dropped instance leaves no snapshot behind: {:?}",
        files_in(state_dir.path())
    );
}

#[tokio::test]
async fn state_survives_lazy_swap_cycles_interleaved_with_reconciles() {
    state_survives_cycles(RestoreMode::Lazy).await;
}

#[tokio::test]
async fn state_survives_eager_swap_cycles_interleaved_with_reconciles() {
    state_survives_cycles(RestoreMode::Eager).await;
}

#[tokio::test]
async fn the_same_state_survives_alternating_restore_modes() {
    let test = test_runtime();
    let module = load_stateful(&test.runtime).await;
    let state_dir = tempfile::tempdir().unwrap();
    let services = FakeServices::new();
    let mut instance = mib_instance(&module, "keeper", &services).await;
    let mut before = reconcile_ok(&mut instance, &services, "touch").await;
    for mode in [
        RestoreMode::Lazy,
        RestoreMode::Eager,
        RestoreMode::Lazy,
        RestoreMode::Lazy,
        RestoreMode::Eager,
    ] {
        instance = swap_in(swap_out(instance, state_dir.path()), services.clone(), mode).await;
        let after = reconcile_ok(&mut instance, &services, "verify").await;
        assert_eq!(
            (after.sum, after.reconciles),
            (before.sum, before.reconciles + 1),
            "{mode:?}"
        );
        before = reconcile_ok(&mut instance, &services, "touch").await;
    }
}

#[tokio::test]
async fn globals_of_every_value_type_survive_swaps() {
    let test = test_runtime();
    let module = test.runtime.load(&globals_operator()).await.unwrap();
    assert!(module.swappable(), "{:?}", module.swap_unsupported_reason());
    let state_dir = tempfile::tempdir().unwrap();
    let services = FakeServices::new();
    let mut instance = module
        .instantiate("globals", limits(DEFAULT_DEADLINE), services.clone())
        .await
        .unwrap();
    let mut call = 0;
    for mode in [RestoreMode::Lazy, RestoreMode::Eager, RestoreMode::Lazy] {
        for _ in 0..3 {
            call += 1;
            instance
                .reconcile(&numbered_request(call))
                .await
                .unwrap_or_else(|error| panic!("call {call}: {error}"));
        }
        instance = swap_in(swap_out(instance, state_dir.path()), services.clone(), mode).await;
    }
    call += 1;
    instance.reconcile(&numbered_request(call)).await.unwrap();
    // The guest checks itself: a call number that does not match its globals traps.
    let wrong = instance.reconcile(&numbered_request(call + 5)).await;
    assert!(matches!(wrong, Err(CallError::Trap(_))), "{wrong:?}");
}

#[tokio::test]
async fn a_page_zeroed_over_a_data_segment_stays_zero_after_restore() {
    let test = test_runtime();
    let module = test.runtime.load(&zeroed_segment_operator()).await.unwrap();
    let state_dir = tempfile::tempdir().unwrap();
    let services = FakeServices::new();
    for mode in [RestoreMode::Lazy, RestoreMode::Eager] {
        let mut instance = zeroed_segment_instance(&module, "segments", &services).await;
        instance
            .reconcile(&reconcile_request("check"))
            .await
            .unwrap();
        let swapped = swap_out(instance, state_dir.path());
        // One page of registration and scratch data; the zeroed page is a hole.
        assert!(
            swapped.snapshot_bytes() < 2 * 64 * 1024,
            "{mode:?}: {}",
            swapped.snapshot_bytes()
        );
        let mut instance = swap_in(swapped, services.clone(), mode).await;
        instance
            .reconcile(&reconcile_request("check"))
            .await
            .unwrap_or_else(|error| {
                panic!("{mode:?}: the zeroed page came back non-zero: {error}")
            });
    }
}

#[tokio::test]
async fn a_lazily_restored_instance_keeps_working_while_its_memory_grows() {
    let test = test_runtime();
    let module = load_stateful(&test.runtime).await;
    let state_dir = tempfile::tempdir().unwrap();
    let services = FakeServices::new();
    let limits = InstanceLimits {
        max_memory_bytes: 256 << 20,
        call_deadline: DEFAULT_DEADLINE,
    };
    let mut instance =
        stateful_instance(&module, "grower", 4 * MIB, limits, services.clone()).await;
    for cycle in 0..6 {
        instance = swap_in(
            swap_out(instance, state_dir.path()),
            services.clone(),
            RestoreMode::Lazy,
        )
        .await;
        assert!(instance.maps_snapshot());
        let mapped_bytes = instance.memory_bytes();
        for _ in 0..40 {
            reconcile_ok(&mut instance, &services, "grow-64").await;
            reconcile_ok(&mut instance, &services, "touch").await;
        }
        assert!(
            instance.memory_bytes() > mapped_bytes,
            "cycle {cycle}: memory grew past the mapped snapshot"
        );
        let report = reconcile_ok(&mut instance, &services, "verify").await;
        assert_eq!(report.bytes, 4 * MIB + (cycle + 1) * 40 * 64 * 1024);
    }
}

#[tokio::test]
async fn deadline_and_memory_limit_still_hold_after_restore() {
    let test = test_runtime();
    let module = load_stateful(&test.runtime).await;
    let state_dir = tempfile::tempdir().unwrap();
    let services = FakeServices::new();
    let deadline = Duration::from_millis(200);
    let limits = InstanceLimits {
        max_memory_bytes: 16 << 20,
        call_deadline: deadline,
    };
    for mode in [RestoreMode::Lazy, RestoreMode::Eager] {
        let instance = stateful_instance(&module, "bounded", MIB, limits, services.clone()).await;
        let swapped = swap_out(instance, state_dir.path());
        assert_eq!(swapped.limits(), limits);

        let mut instance = swap_in(swapped, services.clone(), mode).await;
        assert_eq!(instance.limits(), limits);
        let spun = instance.reconcile(&reconcile_request("spin")).await;
        assert_eq!(spun, Err(CallError::DeadlineExceeded(deadline)), "{mode:?}");

        let instance = stateful_instance(&module, "bounded", MIB, limits, services.clone()).await;
        let mut instance =
            swap_in(swap_out(instance, state_dir.path()), services.clone(), mode).await;
        let hoarded = instance.reconcile(&reconcile_request("hoard")).await;
        assert_eq!(
            hoarded,
            Err(CallError::MemoryLimitExceeded { limit: 16 << 20 }),
            "{mode:?}"
        );
        assert!(instance.memory_bytes() <= 16 << 20);
    }
}

#[tokio::test]
async fn the_guest_clock_keeps_advancing_across_swaps() {
    // The guest fails any reconcile whose monotonic reading is earlier than the previous one. A
    // restored instance has a new WASI context; if its clock restarted from zero, the first
    // reconcile after the swap would read earlier than the init and reconcile before it.
    let test = test_runtime();
    let module = load_stateful(&test.runtime).await;
    let state_dir = tempfile::tempdir().unwrap();
    let services = FakeServices::new();
    let mut instance = stateful_instance(
        &module,
        "clock",
        8 * MIB,
        limits(DEFAULT_DEADLINE),
        services.clone(),
    )
    .await;
    reconcile_ok(&mut instance, &services, "verify").await;
    for mode in [RestoreMode::Lazy, RestoreMode::Eager] {
        instance = swap_in(swap_out(instance, state_dir.path()), services.clone(), mode).await;
        reconcile_ok(&mut instance, &services, "touch").await;
    }
}
