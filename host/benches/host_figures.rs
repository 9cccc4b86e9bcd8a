//! End-to-end figures of the host, against the real control plane with real guest modules:
//!
//! - resident memory (RSS) of the host with 1, 10 and 100 loaded operators, against the same
//!   host with none loaded (the baseline, measured first in the same run);
//! - the round trip of an empty reconcile into a resident instance, against a native no-op call
//!   and a native JSON encode/decode of the same messages (both measured in the same run).
//!
//! Run: `cargo bench -p wasm-operator --bench host_figures --profile release-host`
//! (needs `rustup target add wasm32-wasip1`; starts a control plane unless
//! `WASM_OPERATOR_KUBECONFIG` names one). Prints a Markdown report and writes it into
//! docs/benchmarks.md between the `host_figures` markers.
mod bench_support;
#[path = "../tests/e2e_support/mod.rs"]
mod e2e_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::json;
use wasm_operator::runtime::{HostServices, InstanceLimits, Runtime, RuntimeConfig};
use wasm_operator_abi::{InitInput, ReconcileRequest, ReconcileResult};
use wasm_operator_test_support::test_namespace;

use bench_support::{machine, median, mib, rss, write_report, NoServices};
use e2e_support::{guest, spec, TestHost};

const ROUND_TRIPS: usize = 5_000;
const WARM_UP: usize = 500;

/// Median of a few RSS readings, so one allocator hiccup does not make the figure.
async fn settled_rss() -> u64 {
    let mut readings = Vec::new();
    for _ in 0..5 {
        readings.push(rss());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    readings.sort_unstable();
    readings[readings.len() / 2]
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn micros(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1e6)
}

fn request() -> ReconcileRequest {
    ReconcileRequest {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some("default".into()),
        name: "bench".into(),
        object: Some(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bench", "namespace": "default"}, "data": {"k": "v"}}),
        ),
        absent_reason: None,
        attempt: 0,
    }
}

struct RoundTrips {
    wasm_median: Duration,
    wasm_p99: Duration,
    native_call_median: Duration,
    native_json_median: Duration,
}

async fn measure_round_trips() -> RoundTrips {
    let cache_dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: cache_dir.path().to_path_buf(),
        epoch_tick: Duration::from_millis(10),
    })
    .unwrap();
    let module = runtime
        .load(&guest("empty"))
        .await
        .expect("loading the empty guest");
    let services: Arc<dyn HostServices> = Arc::new(NoServices);
    let mut instance = module
        .instantiate("bench", InstanceLimits::default(), services)
        .await
        .unwrap();
    instance
        .init(&InitInput {
            abi_version: 1,
            operator_name: "bench".into(),
            config: json!({}),
        })
        .await
        .unwrap();
    let request = request();

    let mut wasm = Vec::with_capacity(ROUND_TRIPS);
    for round in 0..WARM_UP + ROUND_TRIPS {
        let started = Instant::now();
        let result = instance
            .reconcile(&request)
            .await
            .expect("an empty reconcile succeeds");
        let elapsed = started.elapsed();
        std::hint::black_box(result);
        if round >= WARM_UP {
            wasm.push(elapsed);
        }
    }

    // Baseline 1: a native operator's reconcile as an async call that does nothing.
    type NativeReconcile = Box<dyn Fn(&ReconcileRequest) -> BoxFuture<'static, ReconcileResult>>;
    let native: NativeReconcile = Box::new(|request| {
        std::hint::black_box(request);
        async { ReconcileResult::done() }.boxed()
    });
    let mut native_call = Vec::with_capacity(ROUND_TRIPS);
    for round in 0..WARM_UP + ROUND_TRIPS {
        let started = Instant::now();
        let result = native(std::hint::black_box(&request)).await;
        let elapsed = started.elapsed();
        std::hint::black_box(result);
        if round >= WARM_UP {
            native_call.push(elapsed);
        }
    }

    // Baseline 2: the JSON work of the round trip done natively (encode the request, decode it,
    // encode the result, decode it), to show how much of the Wasm figure is the message format.
    let mut native_json = Vec::with_capacity(ROUND_TRIPS);
    for round in 0..WARM_UP + ROUND_TRIPS {
        let started = Instant::now();
        let bytes = serde_json::to_vec(std::hint::black_box(&request)).unwrap();
        let decoded: ReconcileRequest = serde_json::from_slice(&bytes).unwrap();
        std::hint::black_box(decoded);
        let result = serde_json::to_vec(&ReconcileResult::done()).unwrap();
        let result: ReconcileResult = serde_json::from_slice(&result).unwrap();
        let elapsed = started.elapsed();
        std::hint::black_box(result);
        if round >= WARM_UP {
            native_json.push(elapsed);
        }
    }

    RoundTrips {
        wasm_median: median(&mut wasm),
        wasm_p99: percentile(&mut wasm, 0.99),
        native_call_median: median(&mut native_call),
        native_json_median: median(&mut native_json),
    }
}

struct RssFigures {
    baseline: u64,
    loaded: Vec<(usize, u64, u64)>, // (operators, RSS, sum of their linear memories)
    module_bytes: usize,
}

async fn measure_rss() -> RssFigures {
    let host = TestHost::start().await;
    let namespace = test_namespace(&host.client, "bench-rss").await;
    let wasm = guest("configmapper");
    let baseline = settled_rss().await;
    let mut loaded = Vec::new();
    let mut count = 0;
    for target in [1usize, 10, 100] {
        while count < target {
            let name = format!("bench-{count}");
            host.manager
                .load(spec(
                    &name,
                    wasm.clone(),
                    json!({"namespace": namespace.name, "suffix": name}),
                ))
                .await
                .unwrap_or_else(|error| panic!("loading {name}: {error}"));
            count += 1;
        }
        let metrics = host.metrics.encode();
        let linear_memory: f64 = metrics
            .lines()
            .filter(|line| line.starts_with("wasm_operator_memory_bytes{"))
            .filter_map(|line| line.split_whitespace().last()?.parse::<f64>().ok())
            .sum();
        loaded.push((target, settled_rss().await, linear_memory as u64));
    }
    host.manager.shutdown().await;
    RssFigures {
        baseline,
        loaded,
        module_bytes: wasm.len(),
    }
}

fn report(rss: &RssFigures, trips: &RoundTrips) -> String {
    let mut text = String::new();
    text.push_str("## Host figures (`host_figures`)\n\n");
    text.push_str(
        "Command: `cargo bench -p wasm-operator --bench host_figures --profile release-host`\n\n",
    );
    text.push_str(&format!(
        "Machine: {}. One run; the baselines are measured in the same process.\n\n",
        machine()
    ));
    text.push_str("### Resident memory with loaded operators\n\n");
    text.push_str(&format!(
        "Operator: `test-guest-configmapper` ({} KiB module; For Widget + Owns ConfigMap in one namespace, so all \
         operators share two watches). Baseline: the same host (runtime, Kubernetes client, operator manager) \
         before any operator is loaded. RSS is the median of 5 readings of VmRSS.\n\n",
        rss.module_bytes / 1024
    ));
    text.push_str("| operators | host RSS (MiB) | above baseline (MiB) | per operator (MiB) | per operator after the first (MiB) | guests' linear memory (MiB) |\n");
    text.push_str("|---:|---:|---:|---:|---:|---:|\n");
    text.push_str(&format!(
        "| 0 (baseline) | {} | 0 | - | - | 0 |\n",
        mib(rss.baseline)
    ));
    let first = rss
        .loaded
        .first()
        .map(|(_, resident, _)| *resident)
        .unwrap_or(rss.baseline);
    for (operators, resident, linear) in &rss.loaded {
        let above = resident.saturating_sub(rss.baseline);
        let marginal = match operators {
            1 => "-".to_string(),
            n => format!(
                "{:.2}",
                resident.saturating_sub(first) as f64 / (*n as f64 - 1.0) / (1024.0 * 1024.0)
            ),
        };
        text.push_str(&format!(
            "| {operators} | {} | {} | {:.2} | {marginal} | {} |\n",
            mib(*resident),
            mib(above),
            above as f64 / (*operators as f64) / (1024.0 * 1024.0),
            mib(*linear)
        ));
    }
    text.push_str(
        "\nThe first operator's figure includes compiling the module (Cranelift) and the first watch caches; \
         later operators reuse the compiled code and the watches, so \"per operator after the first\" is the cost \
         of one more operator. Linear memory is what the guests reserved; only the pages they touched are \
         resident.\n\n",
    );
    text.push_str("### Round trip of an empty reconcile\n\n");
    text.push_str(&format!(
        "`test-guest-empty` (reconcile decodes its input and returns `{{}}`, no host call), called {ROUND_TRIPS} times on \
         one resident instance after {WARM_UP} warm-up calls; the request carries a small ConfigMap.\n\n"
    ));
    text.push_str("| call | median (µs) | ratio to native call |\n|---|---:|---:|\n");
    let ratio = |d: Duration| d.as_secs_f64() / trips.native_call_median.as_secs_f64().max(1e-12);
    text.push_str(&format!(
        "| native no-op async call (baseline) | {} | 1 |\n",
        micros(trips.native_call_median)
    ));
    text.push_str(&format!(
        "| native JSON encode + decode of request and result | {} | {:.0} |\n",
        micros(trips.native_json_median),
        ratio(trips.native_json_median)
    ));
    text.push_str(&format!(
        "| Wasm reconcile into a resident instance | {} (p99 {}) | {:.0} |\n",
        micros(trips.wasm_median),
        micros(trips.wasm_p99),
        ratio(trips.wasm_median)
    ));
    text
}

fn main() {
    // `cargo bench` passes `--bench`; this binary takes no options.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (rss, trips) = runtime.block_on(async {
        let rss = measure_rss().await;
        let trips = measure_round_trips().await;
        (rss, trips)
    });
    let report = report(&rss, &trips);
    println!("{report}");
    write_report("host_figures", &report);
}
