//! Swap with a Go reactor (standard Go, `GOOS=wasip1 -buildmode=c-shared`): the Go runtime's
//! heap, its eight mutable globals, a map and the monotonic clock survive swap cycles interleaved
//! with reconciles, without `_initialize` or init running again.

mod runtime_support;
mod swap_support;

use wasm_operator::runtime::{InstanceLimits, LoadedModule, RestoreMode, Runtime};

use runtime_support::*;
use swap_support::*;

const MIB: u64 = 1 << 20;

async fn load_go_stateful(runtime: &Runtime) -> LoadedModule {
    let path = wasm_operator_test_support::go_guest_module("host/tests/guests/go-stateful");
    let module = runtime
        .load(&std::fs::read(path).unwrap())
        .await
        .expect("the Go guest loads");
    assert!(module.swappable(), "{:?}", module.swap_unsupported_reason());
    module
}

fn distinct_names(services: &FakeServices) -> u64 {
    let messages = services.log_messages();
    messages
        .iter()
        .rev()
        .find_map(|message| {
            message
                .split(' ')
                .find_map(|pair| pair.strip_prefix("names="))
        })
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("the Go guest reported no names; its log: {messages:?}"))
}

#[tokio::test]
async fn a_go_operator_keeps_its_heap_map_and_clock_across_swap_cycles() {
    let test = test_runtime();
    let module = load_go_stateful(&test.runtime).await;
    let state_dir = tempfile::tempdir().unwrap();
    let services = FakeServices::new();
    let limits = InstanceLimits {
        max_memory_bytes: 256 << 20,
        call_deadline: DEFAULT_DEADLINE,
    };
    let mut instance = stateful_instance(&module, "gopher", MIB, limits, services.clone()).await;
    let mut expected = reconcile_ok(&mut instance, &services, "verify").await;
    assert_eq!((expected.reconciles, expected.inits), (1, 1));

    for cycle in 0..12u64 {
        let mode = if cycle % 3 == 1 {
            RestoreMode::Eager
        } else {
            RestoreMode::Lazy
        };
        instance = swap_in(swap_out(instance, state_dir.path()), services.clone(), mode).await;
        let report = reconcile_ok(&mut instance, &services, "verify").await;
        assert_eq!(
            (report.sum, report.reconciles, report.inits),
            (expected.sum, expected.reconciles + 1, 1),
            "cycle {cycle} ({mode:?})"
        );
        reconcile_ok(&mut instance, &services, &format!("object-{cycle}")).await;
        reconcile_ok(&mut instance, &services, "grow-128").await;
        expected = reconcile_ok(&mut instance, &services, "verify").await;
        // "verify", "object-0".."object-<cycle>" and "grow-128".
        assert_eq!(distinct_names(&services), cycle + 3, "cycle {cycle}");
    }
    assert_eq!(expected.bytes, MIB + 12 * 128 * 1024);
}
