mod runtime_support;
mod swap_support;
use runtime_support::*;
use swap_support::*;
use wasm_operator::runtime::{InstanceLimits, RestoreMode};
#[tokio::test]
async fn scratch() {
    let test = test_runtime();
    let module = load_stateful(&test.runtime).await;
    let dir = tempfile::tempdir().unwrap();
    let services = FakeServices::new();
    let limits = InstanceLimits { max_memory_bytes: 1 << 30, call_deadline: DEFAULT_DEADLINE };
    for size in [1u64 << 20, 64 << 20] {
        let mut instance = stateful_instance(&module, "s", size, limits, services.clone()).await;
        let mut totals = vec![];
        for _ in 0..12 {
            let swapped = swap_out(instance, dir.path());
            let t = std::time::Instant::now();
            instance = swap_in(swapped, services.clone(), RestoreMode::Lazy).await;
            totals.push(t.elapsed());
            reconcile_ok(&mut instance, &services, "touch").await;
        }
        wasm_operator::runtime::remove_snapshots(std::path::Path::new("/nonexistent")).unwrap();
        totals.sort();
        eprintln!("size {size}: median total {:?}", totals[6]);
    }
}
