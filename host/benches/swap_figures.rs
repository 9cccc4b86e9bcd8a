//! Swap figures, with real guests (the stateful Rust guest and its Go twin) holding about 1 MiB
//! and about 64 MiB of live state:
//!
//! - swap-out time and peak RSS during swap-out, the first time (everything written) and after a
//!   lazy swap-in and one reconcile (only what changed is read from memory);
//! - swap-in time, lazily mapped against eagerly copied (the baseline, in the same run), with the
//!   page cache warm and, for lazy restores, with the snapshot evicted from it first;
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

/// Drops the snapshot's pages from the page cache, as memory pressure would.
fn evict_from_page_cache(path: &Path) {
    let file = std::fs::File::open(path).unwrap();
    // SAFETY: posix_fadvise only takes a descriptor (open for the call) and plain integers.
    let result = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(result, 0, "posix_fadvise failed");
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
    eager: Cycle,
}

/// Swap-in, one reconcile, swap-out: `cycles` times in `mode`.
async fn run_cycles(
    mut swapped: SwappedInstance,
    services: &Arc<dyn HostServices>,
    dir: &Path,
    mode: RestoreMode,
    cold: bool,
    cycles: usize,
    baseline: u64,
) -> (SwappedInstance, Cycle) {
    let mut figures = Cycle::default();
    for _ in 0..cycles {
        if cold {
            evict_from_page_cache(swapped.snapshot_path());
        }
        let started = Instant::now();
        let mut instance = swapped.swap_in_with(services.clone(), mode).await.unwrap();
        let restored = Instant::now();
        reconcile(&mut instance, "touch").await;
        figures.first_reconcile.push(restored.elapsed());
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
        false,
        cycles,
        baseline,
    )
    .await;
    let (swapped, lazy_cold) = run_cycles(
        swapped,
        &services,
        dir,
        RestoreMode::Lazy,
        true,
        cycles.min(11),
        baseline,
    )
    .await;
    let (swapped, eager) = run_cycles(
        swapped,
        &services,
        dir,
        RestoreMode::Eager,
        false,
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
        eager,
    }
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
    format!(
        "| {} | {} | {label} | {} | {} | {} | {} | {} | {} | {:.2} (max {:.2}) |",
        figures.guest,
        mib(figures.state_bytes),
        swap_in.len(),
        ms(median(&mut swap_in)),
        ms(median(&mut first)),
        ms(median(&mut event)),
        mib(resident[resident.len() / 2]),
        ms(median(&mut swap_out)),
        peaks[peaks.len() / 2],
        peaks[peaks.len() - 1],
    )
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
fn targets(sizes: &[SizeFigures], populations: &[Population]) -> String {
    let warm = range_ms(sizes.iter().map(|size| median_of(&size.lazy.swap_in)));
    let cold = range_ms(sizes.iter().map(|size| median_of(&size.lazy_cold.swap_in)));
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
         - Swap-in (lazy, median per guest and size): {warm} with the snapshot in the page cache, {cold} with it evicted; \
         target under 0.5 ms whatever the state's size. The eager copy, measured alongside, takes {eager}.\n\
         - After a lazy swap-in of 64 MiB of state and one reconcile, {} of it is resident again.\n\
         - Peak RSS during swap-out, over every swap-out measured: at most {peak:.2}x the operator's resident memory; target under 1.2x.\n\
         - Host RSS per swapped-out operator, operators swapped out one at a time: {per_operator}; target under 64 KiB.\n\n",
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

    out.push_str(&targets(sizes, populations));
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
         the page cache before each swap-in (`POSIX_FADV_DONTNEED`), as under memory pressure. *eager*: the baseline, the whole image copied into \
         memory and every chunk's checksum verified. Event to reconcile = swap-in + the first reconcile. Resident after = RSS above the swapped-out \
         host after that reconcile. Swap-out here follows a swap-in: chunks not written since are copied file to file from the previous snapshot.\n\n",
    );
    out.push_str("| guest | live state (MiB) | restore | cycles | swap-in (ms) | first reconcile (ms) | event to reconcile (ms) | resident after (MiB) | swap-out (ms) | swap-out peak ratio |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for size in sizes {
        out.push_str(&cycle_row("lazy", size, &size.lazy));
        out.push('\n');
        out.push_str(&cycle_row("lazy, cold", size, &size.lazy_cold));
        out.push('\n');
        out.push_str(&cycle_row("eager (baseline)", size, &size.eager));
        out.push('\n');
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
        report(&guests, &sizes, &populations, &conditions)
    });
    println!("{report}");
    write_report("swap_figures", &report);
}
