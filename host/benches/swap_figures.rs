//! Swap figures, with real guests (the stateful Rust guest and its Go twin) holding about 1 MiB
//! and about 64 MiB of live state:
//!
//! - swap-out time and peak RSS during swap-out, the first time (everything written) and after a
//!   lazy swap-in and one reconcile (a delta layer of the pages written since);
//! - swap-out time for exactly 1, 64 and 1,024 written pages of a 64 MiB state, as a delta layer
//!   against a full snapshot (the baseline, in the same run);
//! - swap-in time, lazily mapped against eagerly copied (the baseline, in the same run), with the
//!   page cache warm and, for lazy restores, with the snapshot evicted from it first, with and
//!   without reading the previous working set ahead;
//! - event-to-reconcile latency: a reconcile into a resident instance (the baseline) against
//!   swap-in plus the same reconcile, and the RSS that reconcile makes resident again;
//! - host RSS per swapped-out operator, against the host with no operator (baseline).
//!
//! Run: `cargo bench -p wasm-operator --bench swap_figures --profile release-host`
//! (needs `rustup target add wasm32-wasip1` and Go >= 1.24). Prints a Markdown report and writes
//! it into docs/benchmarks.md between the `swap_figures` markers.
mod bench_support;
#[path = "../tests/runtime_support/mod.rs"]
mod runtime_support;

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use wasm_operator::runtime::HostServices;
use wasm_operator::runtime::{
    InstanceLimits, LoadedModule, OperatorInstance, RestoreMode, SwappedInstance,
};

use bench_support::{
    machine, median, mib, peak_rss, reset_peak_rss, rss, write_report, NoServices, KIB, MIB,
};
use runtime_support::{init_input, reconcile_request, test_runtime};

const RESIDENT_CALLS: usize = 201;

/// Drops the snapshot's pages (every layer's) from the page cache, as memory pressure would.
fn evict_from_page_cache(swapped: &SwappedInstance) {
    for path in swapped.snapshot_paths() {
        let file = std::fs::File::open(path).unwrap();
        // SAFETY: posix_fadvise only takes a descriptor (open for the call) and plain integers.
        let result =
            unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(result, 0, "posix_fadvise failed");
    }
}

fn ms(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1e3;
    if ms < 1.0 {
        format!("{ms:.3}")
    } else {
        format!("{ms:.1}")
    }
}

/// The filesystem type of `dir`, by statfs magic.
fn filesystem_of(dir: &Path) -> &'static str {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    // SAFETY: `path` is a NUL-terminated string and `stats` a writable statfs, both live for the
    // duration of the call.
    let (result, stats) = unsafe {
        let mut stats: libc::statfs = std::mem::zeroed();
        (libc::statfs(path.as_ptr(), &mut stats), stats)
    };
    if result != 0 {
        return "an unknown filesystem";
    }
    match stats.f_type as u64 {
        0xEF53 => "ext4",
        0x0102_1994 => "tmpfs",
        0x5846_5342 => "XFS",
        0x9123_683E => "Btrfs",
        _ => "another filesystem",
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|load| load.split(' ').next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

struct Guest {
    name: &'static str,
    module: LoadedModule,
    wasm_bytes: usize,
}

async fn instance_with_state(
    guest: &Guest,
    state_bytes: u64,
    services: Arc<dyn HostServices>,
) -> OperatorInstance {
    let limits = InstanceLimits {
        max_memory_bytes: 1 << 30,
        call_deadline: Duration::from_secs(60),
    };
    let mut instance = guest
        .module
        .instantiate("bench", limits, services)
        .await
        .unwrap();
    instance
        .init(&init_input(
            "bench",
            json!({ "stateBytes": state_bytes, "touchPerReconcile": 16 }),
        ))
        .await
        .unwrap();
    instance
}

async fn reconcile(instance: &mut OperatorInstance, name: &str) {
    instance.reconcile(&reconcile_request(name)).await.unwrap();
}

#[derive(Default)]
struct Cycle {
    swap_in: Vec<Duration>,
    first_reconcile: Vec<Duration>,
    /// Page faults that waited for the disk during the first reconcile.
    major_faults: Vec<u64>,
    swap_out: Vec<Duration>,
    /// RSS above the swapped-out baseline after swap-in and one reconcile.
    resident_after_reconcile: Vec<u64>,
    /// Peak RSS during swap-out over RSS just before it, both above the baseline.
    peak_ratio: Vec<f64>,
}

struct SizeFigures {
    guest: &'static str,
    state_bytes: u64,
    memory_bytes: usize,
    snapshot_bytes: u64,
    resident_bytes: u64,
    first_swap_out: Duration,
    first_peak_ratio: f64,
    resident_reconcile: Duration,
    lazy: Cycle,
    lazy_cold: Cycle,
    lazy_cold_no_readahead: Cycle,
    eager: Cycle,
}

/// Major page faults (those that read from disk) of this process so far.
fn major_faults() -> u64 {
    // SAFETY: getrusage fills the struct it is given; it is read only after it returned 0.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage.ru_majflt as u64
    }
}

/// The page cache before each swap-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cache {
    Warm,
    /// The snapshot evicted; swap-in reads the working set ahead.
    Cold,
    /// The snapshot evicted, and the working set forgotten: pages fault in as touched.
    ColdNoReadahead,
}

/// Swap-in, one reconcile, swap-out: `cycles` times in `mode`.
async fn run_cycles(
    mut swapped: SwappedInstance,
    services: &Arc<dyn HostServices>,
    dir: &Path,
    mode: RestoreMode,
    cache: Cache,
    cycles: usize,
    baseline: u64,
) -> (SwappedInstance, Cycle) {
    let mut figures = Cycle::default();
    for _ in 0..cycles {
        if cache != Cache::Warm {
            evict_from_page_cache(&swapped);
        }
        if cache == Cache::ColdNoReadahead {
            swapped.forget_working_set();
        }
        let started = Instant::now();
        let mut instance = swapped.swap_in_with(services.clone(), mode).await.unwrap();
        let restored = Instant::now();
        let faults_before = major_faults();
        reconcile(&mut instance, "touch").await;
        figures.first_reconcile.push(restored.elapsed());
        figures.major_faults.push(major_faults() - faults_before);
        figures.swap_in.push(restored - started);
        let before = rss();
        figures
            .resident_after_reconcile
            .push(before.saturating_sub(baseline));
        reset_peak_rss();
        let started = Instant::now();
        swapped = instance.swap_out(dir).unwrap();
        figures.swap_out.push(started.elapsed());
        let peak = peak_rss();
        figures.peak_ratio.push(
            peak.saturating_sub(baseline) as f64 / before.saturating_sub(baseline).max(1) as f64,
        );
    }
    (swapped, figures)
}

async fn measure_size(guest: &Guest, state_bytes: u64, cycles: usize, dir: &Path) -> SizeFigures {
    let services: Arc<dyn HostServices> = Arc::new(NoServices);
    let mut instance = instance_with_state(guest, state_bytes, services.clone()).await;
    let mut resident_calls = Vec::new();
    for _ in 0..RESIDENT_CALLS {
        let started = Instant::now();
        reconcile(&mut instance, "touch").await;
        resident_calls.push(started.elapsed());
    }
    let memory_bytes = instance.memory_bytes();
    let before = rss();
    reset_peak_rss();
    let started = Instant::now();
    let swapped = instance.swap_out(dir).unwrap();
    let first_swap_out = started.elapsed();
    let peak = peak_rss();
    // The host without this operator resident: the baseline of every RSS figure below.
    let baseline = rss();
    let resident_bytes = before.saturating_sub(baseline);
    let first_peak_ratio = peak.saturating_sub(baseline) as f64 / resident_bytes.max(1) as f64;

    let (swapped, lazy) = run_cycles(
        swapped,
        &services,
        dir,
        RestoreMode::Lazy,
        Cache::Warm,
        cycles,
        baseline,
    )
    .await;
    let (swapped, lazy_cold) = run_cycles(
        swapped,
        &services,
        dir,
        RestoreMode::Lazy,
        Cache::Cold,
        cycles.min(11),
        baseline,
    )
    .await;
    let (swapped, lazy_cold_no_readahead) = run_cycles(
        swapped,
        &services,
        dir,
        RestoreMode::Lazy,
        Cache::ColdNoReadahead,
        cycles.min(11),
        baseline,
    )
    .await;
    let (swapped, eager) = run_cycles(
        swapped,
        &services,
        dir,
        RestoreMode::Eager,
        Cache::Warm,
        cycles,
        baseline,
    )
    .await;
    let snapshot_bytes = swapped.snapshot_bytes();
    swapped.discard().unwrap();
    SizeFigures {
        guest: guest.name,
        state_bytes,
        memory_bytes,
        snapshot_bytes,
        resident_bytes,
        first_swap_out,
        first_peak_ratio,
        resident_reconcile: median(&mut resident_calls),
        lazy,
        lazy_cold,
        lazy_cold_no_readahead,
        eager,
    }
}

/// State of the WAT operator that writes an exact number of pages.
const DIRTY_STATE: u64 = 64 * MIB;
const DIRTY_CYCLES: usize = 11;

struct DirtyRow {
    pages: usize,
    page_bytes: u64,
    delta_bytes: u64,
    delta: Vec<Duration>,
    full: Vec<Duration>,
}

/// A module whose init fills 64 MiB (from 64 KiB on) with non-zero bytes and whose reconcile
/// writes one byte in each of `n` host pages spread over it, `n` being the request's length
/// beyond that of a request with an empty name.
fn dirty_pages_module(empty_input_len: usize, page_bytes: u64) -> Vec<u8> {
    let registration = r#"{"for":{"apiVersion":"v1","kind":"ConfigMap"}}"#;
    let state_pages = DIRTY_STATE / page_bytes;
    wat::parse_str(format!(
        r#"(module
  (import "wasm_operator" "result_write" (func $result_write (param i32 i32)))
  (memory (export "memory") {memory_pages})
  (data (i32.const 0) "{registration_escaped}")
  (data (i32.const 1024) "{{}}")
  (global $calls (mut i32) (i32.const 0))
  (func (export "wasm_operator_abi_v1"))
  (func (export "wasm_operator_init") (param i32) (result i32)
    (memory.fill (i32.const 65536) (i32.const 0x5a) (i32.const {state}))
    (call $result_write (i32.const 0) (i32.const {registration_len}))
    (i32.const 0))
  (func (export "wasm_operator_reconcile") (param $input_len i32) (result i32)
    (local $n i32) (local $i i32) (local $stride i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (local.set $n (i32.sub (local.get $input_len) (i32.const {empty_input_len})))
    (if (i32.gt_s (local.get $n) (i32.const 0))
      (then
        (local.set $stride (i32.mul (i32.div_u (i32.const {state_pages}) (local.get $n)) (i32.const {page_bytes})))
        (loop $write
          (i32.store8
            (i32.add (i32.const 65552) (i32.mul (local.get $i) (local.get $stride)))
            (global.get $calls))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $write (i32.lt_u (local.get $i) (local.get $n))))))
    (call $result_write (i32.const 1024) (i32.const 2))
    (i32.const 0)))"#,
        memory_pages = DIRTY_STATE / (64 * KIB) + 1,
        registration_escaped = registration.replace('"', "\\\""),
        registration_len = registration.len(),
        state = DIRTY_STATE,
    ))
    .unwrap()
}

async fn measure_dirty(runtime: &wasm_operator::runtime::Runtime, dir: &Path) -> Vec<DirtyRow> {
    // SAFETY: sysconf only reads a configuration value.
    let page_bytes = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    let empty_input_len = serde_json::to_vec(&reconcile_request("")).unwrap().len();
    let module = runtime
        .load(&dirty_pages_module(empty_input_len, page_bytes))
        .await
        .unwrap();
    let services: Arc<dyn HostServices> = Arc::new(NoServices);
    let limits = InstanceLimits {
        max_memory_bytes: 1 << 30,
        call_deadline: Duration::from_secs(60),
    };
    let mut rows = Vec::new();
    for pages in [1, 64, 1024] {
        let mut instance = module
            .instantiate("dirty", limits, services.clone())
            .await
            .unwrap();
        instance
            .init(&init_input("dirty", json!({})))
            .await
            .unwrap();
        let mut swapped = instance.swap_out(dir).unwrap();
        let full_bytes = swapped.snapshot_bytes();
        let mut row = DirtyRow {
            pages,
            page_bytes,
            delta_bytes: 0,
            delta: Vec::new(),
            full: Vec::new(),
        };
        let name = "x".repeat(pages);
        for cycle in 0..2 * DIRTY_CYCLES {
            let mut instance = swapped
                .swap_in_with(services.clone(), RestoreMode::Lazy)
                .await
                .unwrap();
            reconcile(&mut instance, &name).await;
            let started = Instant::now();
            if cycle % 2 == 0 {
                swapped = instance.swap_out(dir).unwrap();
                row.delta.push(started.elapsed());
                assert_eq!(
                    swapped.snapshot_paths().count(),
                    2,
                    "a delta on the full snapshot"
                );
                row.delta_bytes = swapped.snapshot_bytes() - full_bytes;
            } else {
                swapped = instance.swap_out_full(dir).unwrap();
                row.full.push(started.elapsed());
            }
        }
        swapped.discard().unwrap();
        rows.push(row);
    }
    rows
}

struct Population {
    guest: &'static str,
    operators: usize,
    /// Created, reconciled and swapped out one after another, as idle operators are.
    one_at_a_time: u64,
    one_at_a_time_baseline: u64,
    /// All resident at once, then all swapped out.
    all_at_once_baseline: u64,
    all_resident: u64,
    all_swapped: u64,
    all_swapped_trimmed: u64,
}

fn trim_heap() {
    // SAFETY: malloc_trim only returns free heap memory to the operating system.
    unsafe { libc::malloc_trim(0) };
}

async fn measure_population(guest: &Guest, operators: usize, dir: &Path) -> Population {
    let services: Arc<dyn HostServices> = Arc::new(NoServices);
    let resident_operator = || async {
        let mut instance = instance_with_state(guest, MIB, services.clone()).await;
        reconcile(&mut instance, "touch").await;
        instance
    };
    // Warm up the allocator and wasmtime's per-thread state with one full cycle first.
    resident_operator()
        .await
        .swap_out(dir)
        .unwrap()
        .discard()
        .unwrap();

    trim_heap();
    let one_at_a_time_baseline = rss();
    let mut swapped = Vec::new();
    for _ in 0..operators {
        swapped.push(resident_operator().await.swap_out(dir).unwrap());
    }
    let one_at_a_time = rss();
    for instance in swapped.drain(..) {
        instance.discard().unwrap();
    }

    trim_heap();
    let all_at_once_baseline = rss();
    let mut instances = Vec::new();
    for _ in 0..operators {
        instances.push(resident_operator().await);
    }
    let all_resident = rss();
    swapped.extend(
        instances
            .into_iter()
            .map(|instance| instance.swap_out(dir).unwrap()),
    );
    let all_swapped = rss();
    trim_heap();
    let all_swapped_trimmed = rss();
    for instance in swapped {
        instance.discard().unwrap();
    }
    Population {
        guest: guest.name,
        operators,
        one_at_a_time,
        one_at_a_time_baseline,
        all_at_once_baseline,
        all_resident,
        all_swapped,
        all_swapped_trimmed,
    }
}

fn cycle_row(label: &str, figures: &SizeFigures, cycle: &Cycle) -> String {
    let mut swap_in = cycle.swap_in.clone();
    let mut first = cycle.first_reconcile.clone();
    let mut swap_out = cycle.swap_out.clone();
    let swap_out_mean = mean(&swap_out);
    let mut event: Vec<Duration> = cycle
        .swap_in
        .iter()
        .zip(&cycle.first_reconcile)
        .map(|(a, b)| *a + *b)
        .collect();
    let mut resident = cycle.resident_after_reconcile.clone();
    resident.sort_unstable();
    let mut peaks = cycle.peak_ratio.clone();
    peaks.sort_by(f64::total_cmp);
    let mut faults = cycle.major_faults.clone();
    faults.sort_unstable();
    format!(
        "| {} | {} | {label} | {} | {} | {} | {} | {} | {} | {} ({}) | {:.2} (max {:.2}) |",
        figures.guest,
        mib(figures.state_bytes),
        swap_in.len(),
        ms(median(&mut swap_in)),
        ms(median(&mut first)),
        faults[faults.len() / 2],
        ms(median(&mut event)),
        mib(resident[resident.len() / 2]),
        ms(median(&mut swap_out)),
        ms(swap_out_mean),
        peaks[peaks.len() / 2],
        peaks[peaks.len() - 1],
    )
}

fn mean(samples: &[Duration]) -> Duration {
    samples.iter().sum::<Duration>() / samples.len().max(1) as u32
}

fn median_of(samples: &[Duration]) -> Duration {
    median(&mut samples.to_vec())
}

fn range_ms(values: impl Iterator<Item = Duration>) -> String {
    let values: Vec<Duration> = values.collect();
    let low = values.iter().min().copied().unwrap_or_default();
    let high = values.iter().max().copied().unwrap_or_default();
    format!("{}-{} ms", ms(low), ms(high))
}

/// The figures against the targets set for swap, in a few lines.
fn targets(sizes: &[SizeFigures], dirty: &[DirtyRow], populations: &[Population]) -> String {
    let warm = range_ms(sizes.iter().map(|size| median_of(&size.lazy.swap_in)));
    let cold = range_ms(sizes.iter().map(|size| median_of(&size.lazy_cold.swap_in)));
    let large_sizes = || sizes.iter().filter(|size| size.state_bytes >= 64 * MIB);
    let delta_out = large_sizes()
        .map(|size| {
            format!(
                "{} ms median, {} ms mean ({})",
                ms(median_of(&size.lazy.swap_out)),
                ms(mean(&size.lazy.swap_out)),
                size.guest
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let by_pages = dirty
        .iter()
        .map(|row| {
            format!(
                "{} ms for {} pages (full snapshot {} ms)",
                ms(median_of(&row.delta)),
                row.pages,
                ms(median_of(&row.full))
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let first_cold = |cycle: fn(&SizeFigures) -> &Cycle| {
        large_sizes()
            .map(|size| {
                format!(
                    "{} ms ({})",
                    ms(median_of(&cycle(size).first_reconcile)),
                    size.guest
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let eager = range_ms(sizes.iter().map(|size| median_of(&size.eager.swap_in)));
    let peak = sizes
        .iter()
        .flat_map(|size| {
            [size.first_peak_ratio]
                .into_iter()
                .chain(size.lazy.peak_ratio.iter().copied())
                .chain(size.lazy_cold.peak_ratio.iter().copied())
                .chain(size.eager.peak_ratio.iter().copied())
        })
        .fold(0.0f64, f64::max);
    let large: Vec<String> = sizes
        .iter()
        .filter(|size| size.state_bytes >= 64 * MIB)
        .map(|size| {
            let mut resident = size.lazy.resident_after_reconcile.clone();
            resident.sort_unstable();
            format!("{} MiB ({})", mib(resident[resident.len() / 2]), size.guest)
        })
        .collect();
    let per_operator = populations
        .iter()
        .map(|population| {
            let per = (population.one_at_a_time as f64 - population.one_at_a_time_baseline as f64)
                / population.operators as f64
                / KIB as f64;
            format!(
                "{per:.1} KiB ({}, {} operators)",
                population.guest, population.operators
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "Against the targets:\n\n\
         - Swap-in (lazy, median per guest and size): {warm} with the snapshot in the page cache, {cold} with it evicted (readahead requests included); \
         target under 0.5 ms whatever the state's size. The eager copy, measured alongside, takes {eager}.\n\
         - Swap-out after a lazy swap-in and a reconcile that changes 16 bytes of 64 MiB: {delta_out}; target 2 ms. By pages written: {by_pages}.\n\
         - First reconcile after a cold lazy swap-in of 64 MiB: {} with the working set read ahead, {} without; target 5 ms.\n\
         - After a lazy swap-in of 64 MiB of state and one reconcile, {} of it is resident again.\n\
         - Peak RSS during swap-out, over every swap-out measured: at most {peak:.2}x the operator's resident memory; target under 1.2x.\n\
         - Host RSS per swapped-out operator, operators swapped out one at a time: {per_operator}; target under 64 KiB.\n\n",
        first_cold(|size| &size.lazy_cold),
        first_cold(|size| &size.lazy_cold_no_readahead),
        large.join(" and ")
    )
}

struct Conditions {
    filesystem: &'static str,
    load_average: String,
}

fn report(
    guests: &[Guest],
    sizes: &[SizeFigures],
    dirty: &[DirtyRow],
    populations: &[Population],
    conditions: &Conditions,
) -> String {
    let mut out = String::new();
    out.push_str("## Swap (`swap_figures`)\n\n");
    out.push_str(
        "Command: `cargo bench -p wasm-operator --bench swap_figures --profile release-host`\n\n",
    );
    out.push_str(&format!(
        "Machine: {} (1-minute load average {} when the run started); the state directory is on {}. \
         One run; every baseline is measured in the same process.\n\n",
        machine(),
        conditions.load_average,
        conditions.filesystem
    ));
    let modules: Vec<String> = guests
        .iter()
        .map(|guest| format!("`{}` ({} KiB module)", guest.name, guest.wasm_bytes / 1024))
        .collect();
    out.push_str(&format!(
        "Guests: {}. Each holds the given amount of pseudo-random live state; an ordinary reconcile changes 16 bytes at random places in it. \
         Every swap-out writes a new file and fsyncs it (and its directory) before returning.\n\n",
        modules.join(" and ")
    ));

    out.push_str(&targets(sizes, dirty, populations));
    out.push_str("### Swap-out from a fresh instance\n\n");
    out.push_str("Everything the instance holds is written. Peak ratio: peak RSS during swap-out over RSS before it, both above the host's RSS once the operator is swapped out.\n\n");
    out.push_str("| guest | live state (MiB) | linear memory (MiB) | resident (MiB) | snapshot on disk (MiB) | swap-out (ms) | peak ratio |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for size in sizes {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.2} |\n",
            size.guest,
            mib(size.state_bytes),
            mib(size.memory_bytes as u64),
            mib(size.resident_bytes),
            mib(size.snapshot_bytes),
            ms(size.first_swap_out),
            size.first_peak_ratio
        ));
    }

    out.push_str("\n### Swap cycles: swap-in, one reconcile, swap-out\n\n");
    out.push_str(
        "Medians over the cycles. *lazy*: the snapshot is mapped copy-on-write (the default). *lazy, cold*: the same with the snapshot evicted from \
         the page cache before each swap-in (`POSIX_FADV_DONTNEED` on every layer), as under memory pressure: swap-in asks the kernel to read the pages \
         the instance had resident at its last swap-out ahead (`MADV_WILLNEED`), *no readahead* is the baseline without that. *eager*: the baseline, the \
         whole image copied into memory and every checksum verified. Disk reads = major page faults during the first reconcile (median). Event to reconcile = swap-in + the first reconcile. Resident after = RSS above \
         the swapped-out host after that reconcile. Swap-out here follows a lazy swap-in: it writes a delta layer of the pages written since (merging \
         the newest deltas no larger than it, and compacting the chain into a full snapshot once the deltas exceed a quarter of memory, which the mean \
         in brackets includes); after an eager swap-in, memory is no mapping and everything is written.\n\n",
    );
    out.push_str("| guest | live state (MiB) | restore | cycles | swap-in (ms) | first reconcile (ms) | disk reads in it | event to reconcile (ms) | resident after (MiB) | swap-out (ms, median (mean)) | swap-out peak ratio |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for size in sizes {
        out.push_str(&cycle_row("lazy", size, &size.lazy));
        out.push('\n');
        out.push_str(&cycle_row("lazy, cold", size, &size.lazy_cold));
        out.push('\n');
        out.push_str(&cycle_row(
            "lazy, cold, no readahead (baseline)",
            size,
            &size.lazy_cold_no_readahead,
        ));
        out.push('\n');
        out.push_str(&cycle_row("eager (baseline)", size, &size.eager));
        out.push('\n');
    }

    out.push_str("\n### Swap-out cost by pages written\n\n");
    out.push_str(&format!(
        "A WAT operator holding {} MiB of non-zero state writes one byte in each of exactly *n* host pages ({} KiB) spread over it per \
         reconcile, after a lazy swap-in. Medians of {DIRTY_CYCLES} swap-outs each, alternating: a delta layer (what swap-out does) and a full snapshot \
         (the baseline: what every swap-out after a swap-in did before delta layers, its unchanged chunks copied file to file from the previous \
         snapshot). Both fsync the file and the directory.\n\n",
        DIRTY_STATE / MIB,
        dirty.first().map_or(4, |row| row.page_bytes / 1024),
    ));
    out.push_str("| pages written | delta layer on disk (KiB) | swap-out, delta (ms) | swap-out, full snapshot (baseline, ms) |\n|---:|---:|---:|---:|\n");
    for row in dirty {
        out.push_str(&format!(
            "| {} | {:.1} | {} | {} |\n",
            row.pages,
            row.delta_bytes as f64 / KIB as f64,
            ms(median_of(&row.delta)),
            ms(median_of(&row.full)),
        ));
    }

    out.push_str(
        "\n### A reconcile into a resident instance (baseline for event to reconcile)\n\n",
    );
    out.push_str(&format!("Median of {RESIDENT_CALLS} reconciles into the resident instance before its first swap-out.\n\n"));
    out.push_str("| guest | live state (MiB) | resident reconcile (ms) | lazy swap-in + reconcile (ms) | ratio |\n|---|---:|---:|---:|---:|\n");
    for size in sizes {
        let mut event: Vec<Duration> = size
            .lazy
            .swap_in
            .iter()
            .zip(&size.lazy.first_reconcile)
            .map(|(a, b)| *a + *b)
            .collect();
        let event = median(&mut event);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} |\n",
            size.guest,
            mib(size.state_bytes),
            ms(size.resident_reconcile),
            ms(event),
            event.as_secs_f64() / size.resident_reconcile.as_secs_f64().max(1e-9)
        ));
    }

    out.push_str("\n### Host memory per swapped-out operator\n\n");
    out.push_str(&format!(
        "What the host keeps per swapped-out operator is a `SwappedInstance` ({} bytes) and its snapshot's path. Each operator holds 1 MiB \
         of live state and has done one reconcile before it is swapped out. *One at a time*: operators created, reconciled and swapped out \
         one after another, as idle operators are; heap freed by one swap-out is reused by the next instance. *All at once*: all resident \
         together first, then all swapped out; the allocator keeps the heap the instances freed until `malloc_trim(0)` (*trimmed*) or \
         later instances reuse it. Baselines: the host, heap trimmed, before the operators were created.\n\n",
        std::mem::size_of::<SwappedInstance>()
    ));
    out.push_str(
        "| guest | operators | one at a time: RSS above baseline, per operator (KiB) | all at once: resident (MiB above baseline) | \
         all at once: swapped out, per operator (KiB) | all at once: swapped out and trimmed, per operator (KiB) |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for population in populations {
        let per = |rss: u64, baseline: u64| {
            (rss as f64 - baseline as f64) / population.operators as f64 / KIB as f64
        };
        out.push_str(&format!(
            "| {} | {} | {:.1} | {} | {:.1} | {:.1} |\n",
            population.guest,
            population.operators,
            per(population.one_at_a_time, population.one_at_a_time_baseline),
            mib(population
                .all_resident
                .saturating_sub(population.all_at_once_baseline)),
            per(population.all_swapped, population.all_at_once_baseline),
            per(
                population.all_swapped_trimmed,
                population.all_at_once_baseline
            ),
        ));
    }
    out
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(async {
        let test = test_runtime();
        let state_dir = tempfile::tempdir().unwrap();
        let conditions = Conditions {
            filesystem: filesystem_of(state_dir.path()),
            load_average: load_average(),
        };
        let rust_wasm = std::fs::read(wasm_operator_test_support::guest_module(
            "test-guest-stateful",
        ))
        .unwrap();
        let go_wasm = std::fs::read(wasm_operator_test_support::go_guest_module(
            "host/tests/guests/go-stateful",
        ))
        .unwrap();
        let guests = vec![
            Guest {
                name: "Rust",
                module: test.runtime.load(&rust_wasm).await.unwrap(),
                wasm_bytes: rust_wasm.len(),
            },
            Guest {
                name: "Go",
                module: test.runtime.load(&go_wasm).await.unwrap(),
                wasm_bytes: go_wasm.len(),
            },
        ];
        let mut sizes = Vec::new();
        for guest in &guests {
            for (state_bytes, cycles) in [(MIB, 51), (64 * MIB, 11)] {
                eprintln!("{}: {} MiB of state", guest.name, state_bytes / MIB);
                sizes.push(measure_size(guest, state_bytes, cycles, state_dir.path()).await);
            }
        }
        let mut populations = Vec::new();
        for guest in &guests {
            for operators in [100, 1_000] {
                eprintln!("{}: {operators} swapped-out operators", guest.name);
                populations.push(measure_population(guest, operators, state_dir.path()).await);
            }
        }
        eprintln!("swap-out by pages written");
        let dirty = measure_dirty(&test.runtime, state_dir.path()).await;
        report(&guests, &sizes, &dirty, &populations, &conditions)
    });
    println!("{report}");
    write_report("swap_figures", &report);
}
