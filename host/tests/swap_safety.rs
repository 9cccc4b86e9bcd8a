//! Swap never trusts a snapshot it should not: files are private to the host's user, damaged,
//! missing or foreign snapshots are refused before their data is used and the operator starts
//! fresh, snapshots are cleaned up, and what cannot be swapped stays resident and working.

mod runtime_support;
mod swap_support;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;

use wasm_operator::runtime::{
    remove_snapshots, CallError, LoadSource, RestoreMode, Runtime, RuntimeConfig, SwapError,
};

use runtime_support::*;
use swap_support::*;

const MIB: u64 = 1 << 20;

#[tokio::test]
async fn snapshots_are_private_to_the_host_user_and_gone_once_no_instance_maps_them() {
    let test = test_runtime();
    let module = load_stateful(&test.runtime).await;
    let parent = tempfile::tempdir().unwrap();
    let state_dir = parent.path().join("state");
    let services = FakeServices::new();
    let instance = mib_instance(&module, "private", &services).await;

    let swapped = swap_out(instance, &state_dir);
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(swapped.snapshot_path()), 0o600);
    assert_eq!(
        mode(&state_dir),
        0o700,
        "the state directory is created private"
    );
    assert_eq!(files_in(&state_dir).len(), 1, "{:?}", files_in(&state_dir));

    // The restored instance maps the snapshot, which stays for the next swap-out to build on,
    // and goes with the instance.
    let instance = swap_in(swapped, services, RestoreMode::Lazy).await;
    assert_eq!(files_in(&state_dir).len(), 1, "{:?}", files_in(&state_dir));
    drop(instance);
    assert!(
        files_in(&state_dir).is_empty(),
        "{:?}",
        files_in(&state_dir)
    );
}

/// For each restore mode: swaps out a stateful instance, damages its snapshot with `damage`,
/// and expects the swap-in to fail with `Corrupt`, the file to be gone, and a fresh instance of
/// the operator to work.
async fn damaged_snapshot_is_refused(what: &str, damage: impl Fn(&Path)) {
    let test = test_runtime();
    let module = load_stateful(&test.runtime).await;
    let state_dir = tempfile::tempdir().unwrap();
    let services = FakeServices::new();
    for mode in [RestoreMode::Lazy, RestoreMode::Eager] {
        let mut instance = mib_instance(&module, "damaged", &services).await;
        reconcile_ok(&mut instance, &services, "touch").await;
        let swapped = swap_out(instance, state_dir.path());
        let path = swapped.snapshot_path().to_owned();
        damage(&path);

        let error = swapped.swap_in_with(services.clone(), mode).await.err();
        match &error {
            Some(SwapError::Corrupt { reason, .. }) => {
                eprintln!("{what}, {mode:?}: refused because {reason}")
            }
            other => panic!("{what}, {mode:?}: expected Corrupt, got {other:?}"),
        }
        assert_eq!(error.unwrap().kind(), "corrupt");
        assert!(!path.exists(), "{what}: the unusable snapshot is removed");

        // The operator recovers fresh: a new instance, a new init, a new count.
        let mut fresh = mib_instance(&module, "damaged", &services).await;
        let report = reconcile_ok(&mut fresh, &services, "verify").await;
        assert_eq!(report.reconciles, 1, "{what}, {mode:?}");
    }
}

fn flip_byte(path: &Path, offset: u64) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).unwrap();
    file.write_all_at(&[byte[0] ^ 0x01], offset).unwrap();
}

/// Offset of a non-zero byte of stored memory: after the data offset (header bytes 40..48, see
/// the format in the swap module's docs), in the last chunk of the image, which holds the
/// guest's pseudo-random state.
fn offset_in_page_data(path: &Path) -> u64 {
    let bytes = fs::read(path).unwrap();
    let data_offset = u64::from_le_bytes(bytes[40..48].try_into().unwrap());
    let memory_bytes = u64::from_le_bytes(bytes[16..24].try_into().unwrap());
    assert_eq!(bytes.len() as u64, data_offset + memory_bytes);
    (data_offset as usize..bytes.len())
        .rev()
        .find(|&offset| bytes[offset] != 0)
        .map(|offset| offset as u64)
        .expect("the snapshot stores some non-zero memory")
}

#[tokio::test]
async fn a_flipped_header_byte_is_detected() {
    damaged_snapshot_is_refused("header", |path| flip_byte(path, 10)).await;
}

#[tokio::test]
async fn a_flipped_metadata_byte_is_detected() {
    // Inside the chunk table, past the fixed header: caught by the metadata checksum.
    damaged_snapshot_is_refused("chunk table", |path| flip_byte(path, 200)).await;
}

#[tokio::test]
async fn a_truncated_snapshot_is_detected() {
    damaged_snapshot_is_refused("truncated", |path| {
        let file = OpenOptions::new().write(true).open(path).unwrap();
        let len = file.metadata().unwrap().len();
        file.set_len(len - 4096).unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_flipped_byte_in_page_data_is_detected_before_it_is_used() {
    // The byte is flipped right after swap-out: however soon the file changes, and whatever the
    // filesystem's timestamp granularity, the change is noticed and the data verified.
    damaged_snapshot_is_refused("page data", |path| {
        flip_byte(path, offset_in_page_data(path));
    })
    .await;
}

#[tokio::test]
async fn a_rewrite_with_its_modification_time_put_back_is_detected() {
    // The attack on an identity of (inode, length, mtime): change a byte of page data, then set
    // the modification time back to what the host recorded. The status-change time moves anyway
    // and nobody can set it, so the image is verified instead of mapped, and refused.
    damaged_snapshot_is_refused("page data, mtime restored", |path| {
        let recorded = fs::metadata(path).unwrap().modified().unwrap();
        flip_byte(path, offset_in_page_data(path));
        let file = OpenOptions::new().write(true).open(path).unwrap();
        file.set_modified(recorded).unwrap();
        assert_eq!(fs::metadata(path).unwrap().modified().unwrap(), recorded);
    })
    .await;
}

#[tokio::test]
async fn a_state_directory_others_may_write_is_refused() {
    // Snapshots are mapped into guest memory: one in a directory another user can write could
    // be truncated under the mapping (SIGBUS) or replaced. The swap-out is refused, the instance
    // stays resident and working.
    let test = test_runtime();
    let module = load_stateful(&test.runtime).await;
    let state_dir = tempfile::tempdir().unwrap();
    fs::set_permissions(state_dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let services = FakeServices::new();
    let instance = mib_instance(&module, "shared-dir", &services).await;
    let Err(failure) = instance.swap_out(state_dir.path()) else {
        panic!("a swap-out into a world-writable directory must be refused");
    };
    assert!(
        failure.to_string().contains("writable by group or others"),
        "{failure}"
    );
    assert!(files_in(state_dir.path()).is_empty());
    let mut instance = failure.instance;
    let report = reconcile_ok(&mut instance, &services, "still-here").await;
    assert_eq!(report.reconciles, 1);
}

#[tokio::test]
async fn an_empty_file_is_detected() {
    damaged_snapshot_is_refused("empty", |path| fs::write(path, b"").unwrap()).await;
}

#[tokio::test]
async fn a_missing_snapshot_is_reported_as_missing() {
    let test = test_runtime();
    let module = load_stateful(&test.runtime).await;
    let state_dir = tempfile::tempdir().unwrap();
    let services = FakeServices::new();
    let instance = mib_instance(&module, "missing", &services).await;
    let swapped = swap_out(instance, state_dir.path());
    fs::remove_file(swapped.snapshot_path()).unwrap();
    let error = swapped.swap_in(services).await.err();
    assert!(
        matches!(error, Some(SwapError::Missing { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_identical_copy_of_a_snapshot_is_verified_then_restored() {
    // A copy has a new identity, so its data is verified (and copied, not mapped) first.
    let test = test_runtime();
    let module = load_stateful(&test.runtime).await;
    let state_dir = tempfile::tempdir().unwrap();
    let services = FakeServices::new();
    let mut instance = mib_instance(&module, "copied", &services).await;
    let before = reconcile_ok(&mut instance, &services, "touch").await;
    let swapped = swap_out(instance, state_dir.path());
    let path = swapped.snapshot_path().to_owned();
    let copy = path.with_extension("copy");
    fs::copy(&path, &copy).unwrap();
    fs::rename(&copy, &path).unwrap();

    let mut instance = swap_in(swapped, services.clone(), RestoreMode::Lazy).await;
    assert!(
        !instance.maps_snapshot(),
        "an unverified file is never mapped"
    );
    let after = reconcile_ok(&mut instance, &services, "verify").await;
    assert_eq!(after.sum, before.sum);
}

#[tokio::test]
async fn a_change_outside_the_stored_chunks_does_not_reach_the_guest() {
    // Bytes written into a hole (a chunk the table records as zero) change the file's identity,
    // so it is restored by verified copy, which never reads holes: the guest sees zeros there.
    let test = test_runtime();
    let module = test.runtime.load(&zeroed_segment_operator()).await.unwrap();
    let state_dir = tempfile::tempdir().unwrap();
    let services = FakeServices::new();
    let instance = zeroed_segment_instance(&module, "holes", &services).await;
    let swapped = swap_out(instance, state_dir.path());
    let bytes = fs::read(swapped.snapshot_path()).unwrap();
    let data_offset = u64::from_le_bytes(bytes[40..48].try_into().unwrap());
    let file = OpenOptions::new()
        .write(true)
        .open(swapped.snapshot_path())
        .unwrap();
    file.write_all_at(b"not zero", data_offset + 65536).unwrap();

    let mut instance = swap_in(swapped, services, RestoreMode::Lazy).await;
    instance
        .reconcile(&reconcile_request("check"))
        .await
        .unwrap();
}

#[tokio::test]
async fn another_operators_snapshot_is_refused() {
    let test = test_runtime();
    let module = load_stateful(&test.runtime).await;
    let state_dir = tempfile::tempdir().unwrap();
    let services = FakeServices::new();
    let first = mib_instance(&module, "first", &services).await;
    let second = mib_instance(&module, "second", &services).await;
    let first = swap_out(first, state_dir.path());
    let second = swap_out(second, state_dir.path());
    fs::copy(first.snapshot_path(), second.snapshot_path()).unwrap();

    let error = second.swap_in(services.clone()).await.err();
    match error {
        Some(SwapError::Corrupt { reason, .. }) => {
            assert!(
                reason.contains("not the snapshot this instance"),
                "{reason}"
            )
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // The first operator's own snapshot is untouched by all this.
    let _first = swap_in(first, services, RestoreMode::Lazy).await;
}

#[tokio::test]
async fn discarding_or_dropping_a_swapped_instance_removes_its_snapshot() {
    let test = test_runtime();
    let module = load_stateful(&test.runtime).await;
    let state_dir = tempfile::tempdir().unwrap();
    let services = FakeServices::new();

    let instance = mib_instance(&module, "discarded", &services).await;
    let swapped = swap_out(instance, state_dir.path());
    let path = swapped.snapshot_path().to_owned();
    assert!(path.exists());
    swapped.discard().unwrap();
    assert!(!path.exists());

    let instance = mib_instance(&module, "dropped", &services).await;
    let swapped = swap_out(instance, state_dir.path());
    let path = swapped.snapshot_path().to_owned();
    drop(swapped);
    assert!(!path.exists());
    assert!(files_in(state_dir.path()).is_empty());
}

#[tokio::test]
async fn leftover_snapshots_are_cleared_and_other_files_kept() {
    let test = test_runtime();
    let module = load_stateful(&test.runtime).await;
    let state_dir = tempfile::tempdir().unwrap();
    let services = FakeServices::new();
    for name in ["crashed-a", "crashed-b"] {
        let instance = stateful_instance(
            &module,
            name,
            MIB,
            limits(DEFAULT_DEADLINE),
            services.clone(),
        )
        .await;
        // As if the host had crashed: nothing removes the file.
        std::mem::forget(swap_out(instance, state_dir.path()));
    }
    fs::write(state_dir.path().join("notes.txt"), b"keep me").unwrap();
    assert_eq!(remove_snapshots(state_dir.path()).unwrap(), 2);
    assert_eq!(files_in(state_dir.path()), ["notes.txt"]);
    assert_eq!(
        remove_snapshots(&state_dir.path().join("absent")).unwrap(),
        0
    );
}

#[tokio::test]
async fn an_unusable_instance_is_not_swapped_out_and_comes_back() {
    let test = test_runtime();
    let module = load_stateful(&test.runtime).await;
    let state_dir = tempfile::tempdir().unwrap();
    let services = FakeServices::new();
    let limits = wasm_operator::runtime::InstanceLimits {
        max_memory_bytes: 64 << 20,
        call_deadline: std::time::Duration::from_millis(100),
    };
    let mut instance = stateful_instance(&module, "spinner", MIB, limits, services).await;
    let spun = instance.reconcile(&reconcile_request("spin")).await;
    assert!(
        matches!(spun, Err(CallError::DeadlineExceeded(_))),
        "{spun:?}"
    );

    let failure = instance
        .swap_out(state_dir.path())
        .expect_err("swap-out is refused");
    assert!(
        matches!(
            failure.error,
            SwapError::InstanceUnusable(CallError::DeadlineExceeded(_))
        ),
        "{failure}"
    );
    assert_eq!(failure.instance.operator(), "spinner");
    assert!(files_in(state_dir.path()).is_empty());
}

#[tokio::test]
async fn a_module_that_cannot_be_instrumented_runs_but_stays_resident() {
    let test = test_runtime();
    let module = test.runtime.load(&table_growing_operator()).await.unwrap();
    assert!(!module.swappable());
    let reason = module.swap_unsupported_reason().unwrap();
    assert!(reason.contains("table.grow"), "{reason}");

    let state_dir = tempfile::tempdir().unwrap();
    let mut instance = module
        .instantiate("tables", limits(DEFAULT_DEADLINE), FakeServices::new())
        .await
        .unwrap();
    instance.reconcile(&reconcile_request("a")).await.unwrap();
    let failure = instance
        .swap_out(state_dir.path())
        .expect_err("swap-out is refused");
    assert!(
        matches!(failure.error, SwapError::Unsupported(_)),
        "{failure}"
    );
    let mut instance = failure.instance;
    instance.reconcile(&reconcile_request("b")).await.unwrap();
    assert!(files_in(state_dir.path()).is_empty());
}

#[tokio::test]
async fn instrumented_code_is_cached_apart_and_restores_after_a_restart() {
    let test = test_runtime();
    let wasm = stateful_wasm();
    let first = test.runtime.load(&wasm).await.unwrap();
    assert_eq!(first.load_source(), LoadSource::Compiled);
    let artifacts: Vec<String> = files_in(test.cache_dir.path())
        .into_iter()
        .filter(|name| name.ends_with(".cwasm"))
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    assert!(artifacts[0].ends_with("-swap1.cwasm"), "{artifacts:?}");

    let restarted = Runtime::new(RuntimeConfig {
        cache_dir: test.cache_dir.path().to_path_buf(),
        epoch_tick: EPOCH_TICK,
    })
    .unwrap();
    let module = restarted.load(&wasm).await.unwrap();
    assert_eq!(module.load_source(), LoadSource::Cache);
    assert!(module.swappable());

    let state_dir = tempfile::tempdir().unwrap();
    let services = FakeServices::new();
    let mut instance = mib_instance(&module, "cached", &services).await;
    let before = reconcile_ok(&mut instance, &services, "touch").await;
    let mut instance = swap_in(
        swap_out(instance, state_dir.path()),
        services.clone(),
        RestoreMode::Lazy,
    )
    .await;
    assert_eq!(
        reconcile_ok(&mut instance, &services, "verify").await.sum,
        before.sum
    );
}
