//! Hostile guests against the real host and API server: as many spinning guests as there are
//! cores must not starve a neighbour operator or the operations endpoint (`wasm-operator run`,
//! the real binary), and a module importing a capability its operator was not granted is
//! refused by the operator manager.
mod e2e_support;
mod runtime_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::json;
use wasm_operator::operator::{OperatorError, OperatorState};
use wasm_operator::runtime::LoadError;
use wasm_operator_test_support::{control_plane, guest_module, test_namespace, wait_for};

use e2e_support::{create_widget, ensure_widget_crd, spec, TestHost, GRANTS_HTTP_ONLY, PROMPTLY};

/// The bound the neighbour's event -> reconcile latency and /healthz must stay within while
/// every core's worth of guests spins (the median; every single sample gets `WORST_BOUND`).
const MEDIAN_BOUND: Duration = Duration::from_secs(2);
const WORST_BOUND: Duration = Duration::from_secs(5);
/// The spinning guests' call deadline: far longer than the measurement, so they spin throughout.
const SPIN_DEADLINE_SECS: u64 = 180;

/// Kills the host however the test ends.
struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn healthz_latency(http: &reqwest::Client, addr: &str) -> Duration {
    let started = Instant::now();
    let response = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .expect("/healthz answers");
    assert_eq!(response.status().as_u16(), 200);
    started.elapsed()
}

/// Creates Widget `name` and times until the neighbour's ConfigMap for it exists.
async fn neighbour_latency(client: &kube::Client, namespace: &str, name: &str) -> Duration {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let started = Instant::now();
    create_widget(client, namespace, name, json!({"data": {"k": "v"}})).await;
    let output = format!("{name}-config");
    loop {
        if config_maps.get_opt(&output).await.unwrap().is_some() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < PROMPTLY,
            "the neighbour never reconciled {name}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn measure(
    client: &kube::Client,
    namespace: &str,
    http: &reqwest::Client,
    addr: &str,
    label: &str,
    rounds: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let mut neighbour = Vec::new();
    let mut healthz = Vec::new();
    for round in 0..rounds {
        neighbour.push(neighbour_latency(client, namespace, &format!("{label}-{round}")).await);
        for _ in 0..4 {
            healthz.push(healthz_latency(http, addr).await);
        }
    }
    (neighbour, healthz)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinning_guests_on_every_core_do_not_starve_the_neighbour_or_healthz() {
    let spinners = std::thread::available_parallelism().map_or(2, usize::from);
    let client = control_plane().client().await;
    ensure_widget_crd(&client).await;
    let namespace = test_namespace(&client, "spin").await;
    let ns = namespace.name.as_str();
    let dir = tempfile::tempdir().unwrap();
    let mut config = format!(
        "metricsAddr: 127.0.0.1:0\ncacheDir: modules\nshutdownDeadline: 5s\noperators:\n  - name: mapper\n    module: {}\n    allowHttp: [{GRANTS_HTTP_ONLY}]\n    config: {{namespace: {ns}}}\n",
        guest_module("test-guest-configmapper").display()
    );
    let behaviours = guest_module("test-guest-behaviours");
    for spinner in 0..spinners {
        config.push_str(&format!(
            "  - name: spin-{spinner}\n    module: {}\n    callDeadline: {SPIN_DEADLINE_SECS}s\n    allowHttp: [{GRANTS_HTTP_ONLY}]\n    config: {{onReconcile: loop, registration: {{for: {{apiVersion: v1, kind: ConfigMap, namespace: {ns}, labelSelector: spin=yes}}}}}}\n",
            behaviours.display()
        ));
    }
    let config_path = dir.path().join("run.yaml");
    std::fs::write(&config_path, config).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_wasm-operator"))
        .args(["run", "--config"])
        .arg(&config_path)
        .arg("--kubeconfig")
        .arg(control_plane().kubeconfig_path())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting wasm-operator run");
    let stderr = child.stderr.take().unwrap();
    let _host = Host(child);
    let (lines_sender, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_sender.send(line);
        }
    });
    let mut log = Vec::new();
    let mut wait_for_line = |what: &str, matches: &dyn Fn(&str) -> bool| -> String {
        let until = Instant::now() + PROMPTLY;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let Ok(line) = lines.recv_timeout(left) else {
                panic!("no log line for {what}; log:\n{}", log.join("\n"));
            };
            log.push(line.clone());
            if matches(&line) {
                return line;
            }
        }
    };
    let line = wait_for_line("the metrics address", &|line| {
        line.contains("listening on ")
    });
    let addr: String = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    wait_for("/readyz to answer 200", PROMPTLY, || async {
        let response = http
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .ok()?;
        (response.status().as_u16() == 200).then_some(())
    })
    .await;

    let (mut quiet_neighbour, mut quiet_healthz) =
        measure(&client, ns, &http, &addr, "quiet", 3).await;

    // The trigger every spinner reconciles, and spins on.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let trigger = ConfigMap {
        metadata: ObjectMeta {
            name: Some("trigger".into()),
            labels: Some([("spin".to_owned(), "yes".to_owned())].into()),
            ..Default::default()
        },
        ..Default::default()
    };
    config_maps
        .create(&PostParams::default(), &trigger)
        .await
        .unwrap();
    let spin_started = Instant::now();
    let key = format!("{ns}/trigger");
    let mut waiting: Vec<String> = (0..spinners)
        .map(|spinner| format!("\"spin-{spinner}\""))
        .collect();
    while !waiting.is_empty() {
        let line = wait_for_line("every spinner to start spinning", &|line| {
            line.contains(&key)
        });
        waiting.retain(|operator| !line.contains(operator.as_str()));
    }

    let (mut spin_neighbour, mut spin_healthz) =
        measure(&client, ns, &http, &addr, "spinning", 5).await;
    let measured_within = spin_started.elapsed();

    // The spinners were still inside their reconcile for the whole measurement.
    let metrics = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.contains("reconciles_total{operator=\"spin-"),
        "a spinner's reconcile ended during the measurement:\n{metrics}"
    );
    assert!(measured_within < Duration::from_secs(SPIN_DEADLINE_SECS));

    let worst_neighbour = *spin_neighbour.iter().max().unwrap();
    let worst_healthz = *spin_healthz.iter().max().unwrap();
    let report = format!(
        "{spinners} spinning guests ({spinners} cores); medians (worst) quiet -> spinning: \
         neighbour event->reconcile {:?} ({:?}) -> {:?} ({worst_neighbour:?}), \
         /healthz {:?} ({:?}) -> {:?} ({worst_healthz:?})",
        median(&mut quiet_neighbour),
        quiet_neighbour.iter().max().unwrap(),
        median(&mut spin_neighbour),
        median(&mut quiet_healthz),
        quiet_healthz.iter().max().unwrap(),
        median(&mut spin_healthz),
    );
    println!("{report}");
    assert!(median(&mut spin_neighbour) < MEDIAN_BOUND, "{report}");
    assert!(median(&mut spin_healthz) < MEDIAN_BOUND, "{report}");
    assert!(worst_neighbour < WORST_BOUND, "{report}");
    assert!(worst_healthz < WORST_BOUND, "{report}");
}

const HTTP_REQUEST: &str =
    r#"(import "wasm_operator" "http_request" (func $http_request (param i32 i32) (result i32)))"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_importing_http_request_is_refused_without_an_http_grant() {
    let host = TestHost::start().await;
    let wasm: std::sync::Arc<[u8]> =
        runtime_support::wat_operator(HTTP_REQUEST, "(i32.const 0)", "").into();

    let mut ungranted = spec("fetcher", wasm.clone(), json!({}));
    ungranted.allow_http.clear();
    let refused = host
        .manager
        .load(ungranted)
        .await
        .expect_err("loading without an HTTP grant fails");
    let OperatorError::Load {
        source: LoadError::NotGranted(message),
        ..
    } = &refused
    else {
        panic!("expected a NotGranted load error, got {refused:?}");
    };
    assert!(
        message.contains("`http_request` (capability `http`)"),
        "{message}"
    );
    assert!(message.contains("allowHttp"), "{message}");
    match host.manager.state("fetcher") {
        Some(OperatorState::Failed { reason }) => {
            assert!(reason.contains("was not granted"), "{reason}")
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    host.manager.unload("fetcher").await.unwrap();

    let mut granted = spec("fetcher", wasm, json!({}));
    granted.allow_http = vec!["http://127.0.0.1:9/".to_owned()];
    host.manager
        .load(granted)
        .await
        .expect("with an HTTP allowlist the module loads");
    host.manager.unload("fetcher").await.unwrap();
}

/// A module whose initial memory (257 pages: what Zig's default 16 MiB stack gives a C module)
/// exceeds a 16 MiB memory limit could never be instantiated. Its load fails at once with both
/// sizes and what to change, instead of a generic init failure retried forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_whose_initial_memory_exceeds_the_memory_limit_is_refused_at_load() {
    let host = TestHost::start().await;
    let wasm: std::sync::Arc<[u8]> = wat::parse_str(
        r#"(module
             (memory (export "memory") 257)
             (func (export "wasm_operator_abi_v1"))
             (func (export "wasm_operator_init") (param i32) (result i32) (i32.const 1))
             (func (export "wasm_operator_reconcile") (param i32) (result i32) (i32.const 1)))"#,
    )
    .expect("the test module parses")
    .into();
    let mut over = spec("big-stack", wasm.clone(), json!({}));
    over.limits.max_memory_bytes = 16 << 20;
    let refused = host
        .manager
        .load(over)
        .await
        .expect_err("a 16 MiB limit cannot hold 257 pages");
    let OperatorError::Load {
        source: LoadError::MemoryLimitTooSmall(message),
        ..
    } = &refused
    else {
        panic!("expected a MemoryLimitTooSmall load error, got {refused:?}");
    };
    for part in [
        "the module's initial memory is 257 pages (16.06 MiB)",
        "operator `big-stack`'s memory limit of 16 MiB",
        "spec.limits.memory",
        "--memory-limit",
        "to at least 17 MiB",
        "stack-size",
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    match host.manager.state("big-stack") {
        Some(OperatorState::Failed { reason }) => {
            assert!(reason.contains("257 pages"), "{reason}")
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    host.manager.unload("big-stack").await.unwrap();

    // With 17 MiB the module is instantiated and init runs (and fails as this module's init
    // does, returning 1 without a result).
    let mut enough = spec("big-stack", wasm, json!({}));
    enough.limits.max_memory_bytes = 17 << 20;
    let started = host.manager.load(enough).await;
    match &started {
        Err(OperatorError::Start { reason, .. }) => assert!(
            reason.contains("wasm_operator_init returned 1 without a result"),
            "{reason}"
        ),
        other => panic!("expected init's own failure, got {other:?}"),
    }
    host.manager.unload("big-stack").await.unwrap();
}
