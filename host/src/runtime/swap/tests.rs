//! Swap cycles driven byte by byte: a WAT operator whose memory the tests write directly, checked
//! against a model of what it must hold after every swap-in, through delta layers, their merges,
//! compaction, memory growth, injected failures and damaged layers.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use wasm_operator_abi::{HostError, HostResponse, HttpRequest, KubeRequest, LogRecord};

use super::test_hooks::FAIL_AFTER;
use super::{RestoreMode, SwapError, SwappedInstance};
use crate::runtime::{
    HostServices, InstanceLimits, LoadedModule, OperatorInstance, Runtime, RuntimeConfig,
};

const PAGES: usize = 64; // Wasm pages: 4 MiB

struct NoServices;

impl HostServices for NoServices {
    fn kube(&self, _request: KubeRequest) -> BoxFuture<'static, HostResponse> {
        futures::future::ready(HostResponse::Error(HostError::capability_denied("none"))).boxed()
    }
    fn http(&self, _request: HttpRequest) -> BoxFuture<'static, HostResponse> {
        futures::future::ready(HostResponse::Error(HostError::capability_denied("none"))).boxed()
    }
    fn log(&self, _record: LogRecord) {}
}

fn services() -> Arc<dyn HostServices> {
    Arc::new(NoServices)
}

async fn setup() -> (tempfile::TempDir, Runtime, LoadedModule) {
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: cache.path().join("cache"),
        epoch_tick: Duration::from_millis(10),
    })
    .unwrap();
    let wasm = wat::parse_str(format!(
        r#"(module
  (import "wasm_operator" "result_write" (func $result_write (param i32 i32)))
  (memory (export "memory") {PAGES})
  (data (i32.const 0) "seed data")
  (func (export "wasm_operator_abi_v1"))
  (func (export "wasm_operator_init") (param i32) (result i32) (i32.const 0))
  (func (export "wasm_operator_reconcile") (param i32) (result i32) (i32.const 0)))"#
    ))
    .unwrap();
    let module = runtime.load(&wasm).await.unwrap();
    assert!(module.swappable());
    (cache, runtime, module)
}

async fn fresh(module: &LoadedModule) -> OperatorInstance {
    let limits = InstanceLimits {
        max_memory_bytes: 1 << 30,
        call_deadline: Duration::from_secs(10),
    };
    module
        .instantiate("model", limits, services())
        .await
        .unwrap()
}

/// A deterministic xorshift stream, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// Writes `pages` random host pages of memory, and the model likewise: some bytes, some whole
/// pages of zeros.
fn scribble(instance: &mut OperatorInstance, model: &mut [u8], rng: &mut Rng, pages: usize) {
    let page = super::sys::host_page_bytes();
    let memory = instance.memory.data_mut(&mut instance.store);
    assert_eq!(memory.len(), model.len());
    for _ in 0..pages {
        let start = rng.below(model.len() / page) * page;
        if rng.below(8) == 0 {
            memory[start..start + page].fill(0);
            model[start..start + page].fill(0);
        } else {
            for _ in 0..4 {
                let at = start + rng.below(page);
                let value = rng.next() as u8;
                memory[at] = value;
                model[at] = value;
            }
        }
    }
}

fn memory_of(instance: &OperatorInstance) -> &[u8] {
    instance.memory.data(&instance.store)
}

fn files_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn names(swapped: &SwappedInstance) -> BTreeSet<String> {
    swapped
        .snapshot_paths()
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn swap_cycles_with_random_writes_restore_exactly_what_was_written() {
    let (_cache, _runtime, module) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let mut instance = fresh(&module).await;
    let mut model = memory_of(&instance).to_vec();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut deepest, mut compactions, mut merges) = (1, 0, 0);
    let mut last_layers = 0;
    for cycle in 0..60 {
        let pages = [1, 3, 20, 200][rng.below(4)];
        scribble(&mut instance, &mut model, &mut rng, pages);
        if cycle % 17 == 16 {
            instance.memory.grow(&mut instance.store, 3).unwrap();
            model.resize(model.len() + 3 * 65536, 0);
            scribble(&mut instance, &mut model, &mut rng, 2);
        }
        let was_mapped = instance.maps_snapshot();
        let swapped = instance.swap_out(dir.path()).unwrap();
        let layers = swapped.snapshot_paths().count();
        assert!(layers <= super::policy::MAX_DELTAS + 1, "{layers} layers");
        assert_eq!(
            files_in(dir.path()),
            names(&swapped),
            "cycle {cycle}: stray files"
        );
        if was_mapped && layers == 1 && last_layers >= 1 {
            compactions += 1;
        }
        if was_mapped && layers > 1 && layers <= last_layers {
            merges += 1;
        }
        deepest = deepest.max(layers);
        last_layers = layers;
        let mode = if cycle % 7 == 6 {
            RestoreMode::Eager
        } else {
            RestoreMode::Lazy
        };
        instance = swapped.swap_in_with(services(), mode).await.unwrap();
        assert_eq!(instance.maps_snapshot(), mode == RestoreMode::Lazy);
        assert!(
            memory_of(&instance) == &model[..],
            "cycle {cycle}: memory differs"
        );
        if mode == RestoreMode::Eager {
            assert!(
                files_in(dir.path()).is_empty(),
                "a copied snapshot is removed"
            );
            last_layers = 0;
        }
    }
    assert!(deepest >= 3, "deltas stacked up to {deepest} layers");
    assert!(merges > 0, "deltas were merged");
    assert!(compactions > 0, "the chain was compacted");
    drop(instance);
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

#[tokio::test]
async fn a_swap_out_that_fails_at_any_layer_write_loses_nothing() {
    let (_cache, _runtime, module) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let mut instance = fresh(&module).await;
    let mut model = memory_of(&instance).to_vec();
    let mut rng = Rng(7);
    for cycle in 0..12 {
        scribble(&mut instance, &mut model, &mut rng, 5 + cycle * 10);
        let before = files_in(dir.path());
        // The first layer write fails: before its fsync and rename.
        FAIL_AFTER.with(|fail| fail.set(Some(0)));
        let failure = instance.swap_out(dir.path()).unwrap_err();
        FAIL_AFTER.with(|fail| fail.set(None));
        assert_eq!(failure.error.kind(), "io");
        instance = failure.instance;
        assert_eq!(files_in(dir.path()), before, "cycle {cycle}: files changed");
        assert!(memory_of(&instance) == &model[..]);
        let swapped = instance.swap_out(dir.path()).unwrap();
        instance = swapped
            .swap_in_with(services(), RestoreMode::Lazy)
            .await
            .unwrap();
        assert!(memory_of(&instance) == &model[..], "cycle {cycle}");
    }
    // A temporary file a crash left behind is recognised and cleared.
    let swapped = instance.swap_out(dir.path()).unwrap();
    let leftover = format!("{}.tmp", swapped.snapshot_path().display());
    std::fs::write(&leftover, b"half written").unwrap();
    drop(swapped);
    assert_eq!(super::remove_snapshots(dir.path()).unwrap(), 1);
    assert!(files_in(dir.path()).is_empty());
}

/// A swapped-out instance with a full layer and at least one delta.
async fn chained(module: &LoadedModule, dir: &Path, seed: u64) -> SwappedInstance {
    let mut instance = fresh(module).await;
    let mut model = memory_of(&instance).to_vec();
    let mut rng = Rng(seed);
    scribble(&mut instance, &mut model, &mut rng, 100);
    let swapped = instance.swap_out(dir).unwrap();
    let mut instance = swapped
        .swap_in_with(services(), RestoreMode::Lazy)
        .await
        .unwrap();
    scribble(&mut instance, &mut model, &mut rng, 10);
    let swapped = instance.swap_out(dir).unwrap();
    assert_eq!(swapped.snapshot_paths().count(), 2);
    swapped
}

async fn refused(swapped: SwappedInstance, mode: RestoreMode) -> String {
    let paths: Vec<_> = swapped.snapshot_paths().map(Path::to_owned).collect();
    let error = swapped.swap_in_with(services(), mode).await.err();
    for path in paths {
        assert!(!path.exists(), "an unusable snapshot's files are removed");
    }
    match error {
        Some(SwapError::Corrupt { reason, .. }) => reason,
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn damaged_truncated_or_foreign_layers_are_refused() {
    use std::os::unix::fs::FileExt;
    let (_cache, _runtime, module) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    for mode in [RestoreMode::Lazy, RestoreMode::Eager] {
        // A flipped byte in a delta's page data: verified because the file changed.
        let swapped = chained(&module, dir.path(), 3).await;
        let delta = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(swapped.snapshot_path())
            .unwrap();
        let len = delta.metadata().unwrap().len();
        let mut byte = [0u8];
        delta.read_exact_at(&mut byte, len - 1).unwrap();
        delta.write_all_at(&[byte[0] ^ 1], len - 1).unwrap();
        let reason = refused(swapped, mode).await;
        assert!(reason.contains("checksum"), "{mode:?}: {reason}");

        // A flipped byte in a delta's page table.
        let swapped = chained(&module, dir.path(), 3).await;
        let delta = std::fs::OpenOptions::new()
            .write(true)
            .open(swapped.snapshot_path())
            .unwrap();
        delta.write_all_at(&[0xff], 140).unwrap();
        let reason = refused(swapped, mode).await;
        assert!(reason.contains("metadata"), "{mode:?}: {reason}");

        // A truncated delta.
        let swapped = chained(&module, dir.path(), 3).await;
        let delta = std::fs::OpenOptions::new()
            .write(true)
            .open(swapped.snapshot_path())
            .unwrap();
        delta.set_len(len - 4096).unwrap();
        let reason = refused(swapped, mode).await;
        assert!(reason.contains("long"), "{mode:?}: {reason}");

        // Another chain's full layer under this delta.
        let first = chained(&module, dir.path(), 3).await;
        let second = chained(&module, dir.path(), 4).await;
        let bases: Vec<_> = [&first, &second]
            .iter()
            .map(|swapped| swapped.snapshot_paths().next().unwrap().to_owned())
            .collect();
        std::fs::copy(&bases[0], &bases[1]).unwrap();
        let reason = refused(second, mode).await;
        assert!(reason.contains("not the snapshot"), "{mode:?}: {reason}");
        drop(first);
    }
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

#[tokio::test]
async fn a_delta_costs_the_pages_written_and_the_working_set_is_remembered() {
    let (_cache, _runtime, module) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let mut instance = fresh(&module).await;
    let mut model = memory_of(&instance).to_vec();
    let mut rng = Rng(11);
    scribble(&mut instance, &mut model, &mut rng, 300);
    let swapped = instance.swap_out(dir.path()).unwrap();
    let full_bytes = swapped.snapshot_bytes();
    let mut instance = swapped
        .swap_in_with(services(), RestoreMode::Lazy)
        .await
        .unwrap();
    // Touch 3 pages: one written, two read.
    let page = super::sys::host_page_bytes();
    instance.memory.data_mut(&mut instance.store)[5 * page] ^= 1;
    let memory = memory_of(&instance);
    let read = memory[40 * page] ^ memory[90 * page];
    std::hint::black_box(read);
    let swapped = instance.swap_out(dir.path()).unwrap();
    let delta = swapped.snapshot_bytes() - full_bytes;
    assert!(
        delta <= 65536 + page as u64,
        "a one-page delta takes {delta} bytes"
    );
    // The pages touched since the swap-in (and the kernel's fault-around neighbours).
    let working_set = swapped.working_set_pages();
    assert!((3..=64).contains(&working_set), "{working_set} pages");
}
