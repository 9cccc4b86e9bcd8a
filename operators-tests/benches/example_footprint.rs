//! Footprint of each example operator, in Rust and in Go: the module's size, and, once it has
//! reconciled one sample object in a fresh operator manager against the real control plane, its
//! linear memory (the host's `wasm_operator_memory_bytes` gauge) and how much the host process's
//! resident memory grew from just before the load.
//!
//! Operators are measured one at a time, each in a host of its own, unloaded before the next.
//!
//! ```sh
//! source scripts/lib.sh && cargo bench -p operators-tests --bench example_footprint
//! ```

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, PostParams};
use operators_tests::kinds::{self, Kind};
use operators_tests::metrics_api::MetricsApi;
use operators_tests::{spec, Harness, Lang, PROMPTLY};
use serde_json::json;
use wasm_operator::metrics::sample_value;
use wasm_operator::operator::{OperatorState, ReconcileOutcome};
use wasm_operator_test_support::{control_plane, test_namespace, wait_for, TestNamespace};

const EXAMPLES: [&str; 4] = ["webapp", "metrics-scaler", "ring", "counter"];

/// RSS readings taken for one figure; the median is used.
const RSS_READINGS: usize = 5;

/// The process's resident set size in bytes (`VmRSS` of /proc/self/status).
fn vm_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in kB");
    kib * 1024
}

/// The median of a few RSS readings, letting other tasks run between them.
async fn median_rss() -> u64 {
    let mut readings = Vec::with_capacity(RSS_READINGS);
    for _ in 0..RSS_READINGS {
        tokio::task::yield_now().await;
        readings.push(vm_rss());
    }
    readings.sort_unstable();
    readings[RSS_READINGS / 2]
}

struct Row {
    example: &'static str,
    lang: Lang,
    module_bytes: usize,
    linear_memory: u64,
    rss_before: u64,
    rss_after: u64,
}

/// What one example needs to reconcile one sample object: its namespaces (kept until the
/// operator is unloaded), its operator spec, and the key of the sample.
struct Setup {
    _namespaces: Vec<TestNamespace>,
    _metrics: Option<MetricsApi>,
    spec: wasm_operator::operator::OperatorSpec,
    sample_key: String,
}

async fn set_up(harness: &Harness, example: &'static str, lang: Lang) -> Setup {
    let client = &harness.client;
    let name = format!("footprint-{example}-{lang}");
    match example {
        "webapp" => {
            let namespace = test_namespace(client, &format!("fp-webapp-{lang}")).await;
            let registry = test_namespace(client, &format!("fp-registry-{lang}")).await;
            kinds::create(
                client,
                &namespace.name,
                Kind::WebApp,
                "shop",
                json!({"image": "nginx:1.27", "replicas": 0}),
            )
            .await;
            let config = json!({"registryNamespace": registry.name});
            Setup {
                sample_key: format!("{}/shop", namespace.name),
                spec: spec(&name, lang, example, config),
                _namespaces: vec![namespace, registry],
                _metrics: None,
            }
        }
        "metrics-scaler" => {
            let metrics = MetricsApi::start().await;
            metrics.answer_value("250");
            let namespace = test_namespace(client, &format!("fp-scaler-{lang}")).await;
            let deployment: Deployment = serde_json::from_value(json!({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
            }))
            .expect("a well-formed Deployment");
            Api::<Deployment>::namespaced(client.clone(), &namespace.name)
                .create(&PostParams::default(), &deployment)
                .await
                .expect("creating the target Deployment");
            let scaler = json!({"targetRef": {"name": "web"}, "metricsUrl": metrics.url("/"),
                                "query": "sum(rate(http_requests_total[1m]))", "targetValue": 100,
                                "minReplicas": 1, "maxReplicas": 10, "intervalSeconds": 30});
            kinds::create(client, &namespace.name, Kind::MetricScaler, "rps", scaler).await;
            let mut spec = spec(&name, lang, example, json!({}));
            spec.allow_http = vec![metrics.url("/")];
            Setup {
                sample_key: format!("{}/rps", namespace.name),
                spec,
                _namespaces: vec![namespace],
                _metrics: Some(metrics),
            }
        }
        "ring" => {
            let from = test_namespace(client, &format!("fp-ring-{lang}-in")).await;
            let to = test_namespace(client, &format!("fp-ring-{lang}-out")).await;
            kinds::create(
                client,
                &from.name,
                Kind::TestResource,
                "token",
                json!({"nonce": 1}),
            )
            .await;
            let config = json!({"inNamespace": from.name, "outNamespace": to.name});
            Setup {
                sample_key: format!("{}/token", from.name),
                spec: spec(&name, lang, example, config),
                _namespaces: vec![from, to],
                _metrics: None,
            }
        }
        "counter" => {
            let namespace = test_namespace(client, &format!("fp-counter-{lang}")).await;
            kinds::create(
                client,
                &namespace.name,
                Kind::Counter,
                "tally",
                json!({"step": 1}),
            )
            .await;
            Setup {
                sample_key: format!("{}/tally", namespace.name),
                spec: spec(&name, lang, example, json!({})),
                _namespaces: vec![namespace],
                _metrics: None,
            }
        }
        other => panic!("unknown example {other}"),
    }
}

async fn measure(example: &'static str, lang: Lang, module_bytes: usize) -> Row {
    let harness = Harness::start().await;
    let setup = set_up(&harness, example, lang).await;
    let operator = setup.spec.name.clone();
    let rss_before = median_rss().await;
    harness.load_spec(setup.spec.clone()).await;

    // The first successful reconcile of the sample, and the worker back to Idle: the memory
    // gauge is published between the two.
    wait_for(
        &format!("{operator} to reconcile {}", setup.sample_key),
        PROMPTLY,
        || async {
            let reconciled = harness.reconciles_of(&operator).iter().any(|r| {
                r.key.to_string() == setup.sample_key
                    && matches!(r.outcome, ReconcileOutcome::Succeeded { .. })
            });
            (reconciled && harness.manager.state(&operator) == Some(OperatorState::Idle))
                .then_some(())
        },
    )
    .await;
    let rss_after = median_rss().await;
    let metrics = harness.manager.metrics().encode();
    let linear_memory = sample_value(
        &metrics,
        "wasm_operator_memory_bytes",
        &format!("operator=\"{operator}\""),
    )
    .unwrap_or_else(|| panic!("no wasm_operator_memory_bytes for {operator}"))
        as u64;

    harness.stop().await;
    drop(setup);
    Row {
        example,
        lang,
        module_bytes,
        linear_memory,
        rss_before,
        rss_after,
    }
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(async {
        // Modules built and read, and the control plane up, before the baseline.
        let mut modules = Vec::new();
        for example in EXAMPLES {
            for lang in Lang::available(example) {
                modules.push((example, lang, lang.module(example).len()));
            }
        }
        let _ = control_plane().client().await;
        let baseline = median_rss().await;

        let mut rows = Vec::new();
        for (example, lang, size) in modules {
            eprintln!("measuring {example} ({lang})");
            rows.push(measure(example, lang, size).await);
        }
        let end = median_rss().await;

        println!();
        println!("| operator | language | module bytes | linear memory after first reconcile (KiB) | host RSS delta (MiB) |");
        println!("|---|---|---:|---:|---:|");
        for row in &rows {
            let language = match row.lang {
                Lang::Rust => "Rust",
                Lang::Go => "Go",
                Lang::TinyGo => "TinyGo",
            };
            println!(
                "| {} | {} | {} | {} | {:.1} |",
                row.example,
                language,
                row.module_bytes,
                row.linear_memory / 1024,
                mib(row.rss_after as i64 - row.rss_before as i64),
            );
        }
        println!();
        println!(
            "Host RSS before loading anything: {:.1} MiB; after all were measured and unloaded: {:.1} MiB.",
            mib(baseline as i64),
            mib(end as i64)
        );
        for row in &rows {
            eprintln!(
                "{} ({}): RSS {:.1} -> {:.1} MiB (vs run baseline {:+.1} MiB)",
                row.example,
                row.lang,
                mib(row.rss_before as i64),
                mib(row.rss_after as i64),
                mib(row.rss_after as i64 - baseline as i64),
            );
        }
    });
    // Keep the runtime's drop from waiting on the loopback servers.
    runtime.shutdown_timeout(Duration::from_secs(1));
}
