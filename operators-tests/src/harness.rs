//! One host per test: the runtime, an operator manager on the admin identity, the example CRDs,
//! a state directory for swapped-out operators, and every reconcile the host reports.
//!
//! Tests of one process run one at a time: the examples watch their kinds in every namespace, so
//! two hosts running the same example side by side would both reconcile each other's objects. For
//! the same reason a test starts only once the namespaces earlier tests deleted are gone: a test
//! that failed before cleaning up leaves its objects there until the namespace controller has
//! removed them, and the next test's operators would reconcile (and count) them.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use serde_json::Value;
use tokio::sync::OwnedMutexGuard;
use wasm_operator::egress::AdminPolicy;
use wasm_operator::metrics::HostMetrics;
use wasm_operator::operator::{
    ManagerConfig, OperatorManager, OperatorSpec, ReconcileOutcome, ReconcileRecord, SwapConfig,
};
use wasm_operator::runtime::{InstanceLimits, Runtime, RuntimeConfig};
use wasm_operator::scheduler::workqueue::BackoffConfig;
use wasm_operator_test_support::{apply_crd, control_plane, wait_for};

use crate::lang::Lang;

/// How long a test waits for something an operator should do promptly.
pub const PROMPTLY: Duration = Duration::from_secs(60);

const EXAMPLE_CRDS: [&str; 4] = [
    include_str!("../../crds/webapp.yaml"),
    include_str!("../../crds/metricscaler.yaml"),
    include_str!("../../crds/testresource.yaml"),
    include_str!("../../crds/counter.yaml"),
];

/// A host for one test. Dropping it ends the test's exclusive use of the examples' kinds;
/// [`Harness::stop`] unloads its operators first.
pub struct Harness {
    pub client: Client,
    pub manager: OperatorManager,
    reconciles: Arc<Mutex<Vec<ReconcileRecord>>>,
    state_dir: tempfile::TempDir,
    swap: SwapSettings,
    _one_test_at_a_time: OwnedMutexGuard<()>,
}

/// When a test's operators swap out on their own; forced swaps work either way.
#[derive(Clone, Copy, Debug, Default)]
pub struct SwapSettings {
    pub swap_after: Option<Duration>,
    pub memory_budget: Option<u64>,
}

impl Harness {
    /// A host whose operators swap only when the test forces it.
    pub async fn start() -> Harness {
        Self::start_with(SwapSettings::default()).await
    }

    pub async fn start_with(swap: SwapSettings) -> Harness {
        static ONE_TEST_AT_A_TIME: OnceLock<Arc<tokio::sync::Mutex<()>>> = OnceLock::new();
        let turn = ONE_TEST_AT_A_TIME
            .get_or_init(Default::default)
            .clone()
            .lock_owned()
            .await;
        let client = control_plane().client().await;
        apply_example_crds(&client).await;
        wait_until_no_namespace_terminates(&client).await;
        let reconciles: Arc<Mutex<Vec<ReconcileRecord>>> = Arc::default();
        let state_dir = tempfile::tempdir().expect("creating a state directory");
        let manager = new_manager(&client, &reconciles, state_dir.path(), swap);
        Harness {
            client,
            manager,
            reconciles,
            state_dir,
            swap,
            _one_test_at_a_time: turn,
        }
    }

    /// Shuts the host down as a host process ends (its operators swapped out and left for the
    /// next process), then starts a new one, with a runtime and manager of its own, on the same
    /// state directory, as a restarted process would. Operators must be loaded again.
    pub async fn restart(mut self) -> Harness {
        self.manager.shutdown().await;
        self.manager = new_manager(
            &self.client,
            &self.reconciles,
            self.state_dir.path(),
            self.swap,
        );
        self
    }

    /// The snapshot layer files in the host's state directory (each operator has a directory
    /// of its own there).
    pub fn snapshots(&self) -> Vec<std::path::PathBuf> {
        let entries =
            std::fs::read_dir(self.state_dir.path()).expect("reading the state directory");
        entries
            .map(|entry| entry.expect("reading the state directory").path())
            .filter(|path| path.is_dir())
            .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
            .map(|entry| entry.path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "wosnap")
            })
            .collect()
    }

    /// One sample of the host's metrics, e.g. `("wasm_operator_swap_outs_total", "operator=\"x\"")`.
    pub fn metric(&self, name: &str, labels: &str) -> Option<f64> {
        wasm_operator::metrics::sample_value(&self.manager.metrics().encode(), name, labels)
    }

    /// Loads `example` in `lang` as operator `name` with `config`, and no outbound HTTP.
    pub async fn load(&self, name: &str, lang: Lang, example: &str, config: Value) {
        self.load_spec(spec(name, lang, example, config)).await;
    }

    /// Loads an operator from a spec made with [`spec`] (to grant HTTP, for instance).
    pub async fn load_spec(&self, spec: OperatorSpec) {
        let name = spec.name.clone();
        // Shown with a failing test's output: which implementation it was running.
        eprintln!("loading operator {name}");
        self.manager
            .load(spec)
            .await
            .unwrap_or_else(|e| panic!("loading operator {name}: {e}"));
    }

    /// Every reconcile of `operator` so far, in order.
    pub fn reconciles_of(&self, operator: &str) -> Vec<ReconcileRecord> {
        let all = self.reconciles.lock().unwrap_or_else(|e| e.into_inner());
        all.iter()
            .filter(|record| record.operator == operator)
            .cloned()
            .collect()
    }

    /// Unloads every operator, so the next implementation or test has the kinds to itself.
    pub async fn stop(self) {
        self.manager.shutdown().await;
    }
}

/// A runtime and an operator manager on the admin identity, writing snapshots to `state_dir`
/// and every reconcile to `reconciles`.
fn new_manager(
    client: &Client,
    reconciles: &Arc<Mutex<Vec<ReconcileRecord>>>,
    state_dir: &std::path::Path,
    swap: SwapSettings,
) -> OperatorManager {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: module_cache_dir(),
        epoch_tick: Duration::from_millis(10),
    })
    .expect("starting the Wasm runtime");
    let record = reconciles.clone();
    let observer = Arc::new(move |reconcile: &ReconcileRecord| {
        // Printed as they happen: a test that times out shows why the operator did not get there.
        if let ReconcileOutcome::Failed { reason, message } = &reconcile.outcome {
            eprintln!(
                "{} failed to reconcile {} ({reason}): {message}",
                reconcile.operator, reconcile.key
            );
        }
        record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(reconcile.clone());
    });
    let config = ManagerConfig {
        reconcile_observer: Some(observer),
        // The tests' metrics servers are on loopback, which the host denies by default.
        egress: AdminPolicy::allowing_networks(&["127.0.0.0/8"]),
        swap: SwapConfig {
            state_dir: Some(state_dir.to_owned()),
            swap_after: swap.swap_after,
            memory_budget: swap.memory_budget,
            pre_wake: None,
            identity: "operators-tests".into(),
        },
        ..ManagerConfig::default()
    };
    OperatorManager::new(runtime, client.clone(), HostMetrics::new(), config)
}

/// An operator spec for `example` in `lang`, with limits and backoff suited to tests.
pub fn spec(name: &str, lang: Lang, example: &str, config: Value) -> OperatorSpec {
    module_spec(name, lang.module(example), config)
}

/// An operator spec for the module `wasm`, with limits and backoff suited to tests.
pub fn module_spec(name: &str, wasm: Arc<[u8]>, config: Value) -> OperatorSpec {
    OperatorSpec {
        name: name.to_owned(),
        wasm,
        allow_http: Vec::new(),
        limits: InstanceLimits {
            max_memory_bytes: 128 << 20,
            call_deadline: Duration::from_secs(10),
        },
        config,
        backoff: BackoffConfig {
            base: Duration::from_millis(50),
            max: Duration::from_secs(2),
        },
        client: None,
        swap_after: None,
        read_access: None,
    }
}

/// The example CRDs, applied once per test process.
async fn apply_example_crds(client: &Client) {
    static APPLIED: OnceLock<tokio::sync::Mutex<bool>> = OnceLock::new();
    let mut applied = APPLIED.get_or_init(Default::default).lock().await;
    if !*applied {
        for crd in EXAMPLE_CRDS {
            apply_crd(client, crd)
                .await
                .expect("applying an example CRD");
        }
        *applied = true;
    }
}

/// Waits until no namespace is being deleted.
async fn wait_until_no_namespace_terminates(client: &Client) {
    let namespaces: kube::Api<Namespace> = kube::Api::all(client.clone());
    wait_for(
        "the namespaces of earlier tests to be deleted",
        PROMPTLY,
        || async {
            let list = namespaces.list(&Default::default()).await.ok()?;
            let terminating = list
                .items
                .iter()
                .any(|namespace| namespace.metadata.deletion_timestamp.is_some());
            (!terminating).then_some(())
        },
    )
    .await;
}

/// Precompiled modules, shared by the tests of a process as in a real host.
fn module_cache_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wasm-operator-examples-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating the module cache directory");
    dir
}
