//! Shared set-up of the host's end-to-end tests: a host (runtime, operator manager, metrics)
//! against the test control plane, the Widget CRD the test operators reconcile, and a record of
//! every reconcile as the host saw it (timestamps taken on the host side).
#![allow(dead_code)] // each test binary uses a different part of this module

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::ApiResource;
use kube::Client;
use serde_json::{json, Value};
use wasm_operator::egress::AdminPolicy;
use wasm_operator::metrics::HostMetrics;
use wasm_operator::operator::{
    ManagerConfig, OperatorManager, OperatorSpec, ReconcileObserver, ReconcileOutcome,
    ReconcileRecord,
};
use wasm_operator::runtime::{InstanceLimits, Runtime, RuntimeConfig};
use wasm_operator::scheduler::workqueue::BackoffConfig;
use wasm_operator_test_support::{apply_crd, control_plane, guest_module, wait_for};

pub const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.e2e.wasm-operator.dev
spec:
  group: e2e.wasm-operator.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                data: {type: object, additionalProperties: {type: string}}
                requeueAfterMs: {type: integer}
                probeUrl: {type: string}
            status:
              type: object
              properties:
                configMapName: {type: string}
                observedGeneration: {type: integer}
                reconciles: {type: integer}
"#;

/// How long a test waits for something the host should do promptly.
pub const PROMPTLY: Duration = Duration::from_secs(30);

pub fn widget_resource() -> ApiResource {
    ApiResource {
        group: "e2e.wasm-operator.dev".into(),
        version: "v1".into(),
        api_version: "e2e.wasm-operator.dev/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    }
}

pub fn widgets(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &widget_resource())
}

pub async fn create_widget(
    client: &Client,
    namespace: &str,
    name: &str,
    spec: Value,
) -> DynamicObject {
    let widget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "e2e.wasm-operator.dev/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }))
    .unwrap();
    widgets(client, namespace)
        .create(&PostParams::default(), &widget)
        .await
        .expect("creating a Widget")
}

/// The Widget CRD, applied once per test process.
pub async fn ensure_widget_crd(client: &Client) {
    static APPLIED: OnceLock<tokio::sync::Mutex<bool>> = OnceLock::new();
    let mut applied = APPLIED.get_or_init(Default::default).lock().await;
    if !*applied {
        apply_crd(client, WIDGET_CRD)
            .await
            .expect("applying the Widget CRD");
        *applied = true;
    }
}

/// Every reconcile the host reported, in order.
#[derive(Clone, Default)]
pub struct Reconciles(Arc<Mutex<Vec<ReconcileRecord>>>);

impl Reconciles {
    pub fn observer(&self) -> ReconcileObserver {
        let records = self.0.clone();
        Arc::new(move |record: &ReconcileRecord| records.lock().unwrap().push(record.clone()))
    }

    pub fn of(&self, operator: &str) -> Vec<ReconcileRecord> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|record| record.operator == operator)
            .cloned()
            .collect()
    }

    pub fn of_key(&self, operator: &str, key: &str) -> Vec<ReconcileRecord> {
        self.of(operator)
            .into_iter()
            .filter(|record| record.key.to_string() == key)
            .collect()
    }

    pub fn failures(&self, operator: &str, reason: &str) -> Vec<ReconcileRecord> {
        self.of(operator)
            .into_iter()
            .filter(|record| matches!(&record.outcome, ReconcileOutcome::Failed { reason: r, .. } if *r == reason))
            .collect()
    }

    pub fn successes(&self, operator: &str) -> Vec<ReconcileRecord> {
        self.of(operator)
            .into_iter()
            .filter(|record| matches!(record.outcome, ReconcileOutcome::Succeeded { .. }))
            .collect()
    }
}

/// A host as a test drives it: the manager plus what the test observes.
pub struct TestHost {
    pub client: Client,
    pub manager: OperatorManager,
    pub metrics: HostMetrics,
    pub reconciles: Reconciles,
}

/// Precompiled modules are shared by the tests of a process, as in a real host.
fn module_cache_dir() -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("wasm-operator-e2e-modules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl TestHost {
    /// A host with the default egress policy (no non-public address reachable).
    pub async fn start() -> TestHost {
        TestHost::start_with(ManagerConfig::default()).await
    }

    /// A host whose operators' outbound HTTP is bounded by `egress`.
    pub async fn start_with_egress(egress: AdminPolicy) -> TestHost {
        TestHost::start_with(ManagerConfig {
            egress,
            ..ManagerConfig::default()
        })
        .await
    }

    /// A host whose manager uses `config` (the reconcile observer is the test's own).
    pub async fn start_with(config: ManagerConfig) -> TestHost {
        let client = control_plane().client().await;
        ensure_widget_crd(&client).await;
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: module_cache_dir(),
            epoch_tick: Duration::from_millis(10),
        })
        .expect("starting the Wasm runtime");
        let metrics = HostMetrics::new();
        let reconciles = Reconciles::default();
        let config = ManagerConfig {
            reconcile_observer: Some(reconciles.observer()),
            ..config
        };
        let manager = OperatorManager::new(runtime, client.clone(), metrics.clone(), config);
        TestHost {
            client,
            manager,
            metrics,
            reconciles,
        }
    }
}

/// The `.wasm` bytes of guest package `test-guest-<name>`, built from source once per process.
pub fn guest(name: &str) -> Arc<[u8]> {
    let path = guest_module(&format!("test-guest-{name}"));
    Arc::from(std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())))
}

/// Grants the `http` capability and reaches nothing (see its definition in test-support).
pub const GRANTS_HTTP_ONLY: &str = wasm_operator_test_support::GRANTS_HTTP_ONLY;

/// An operator spec with test-friendly limits and backoff.
pub fn spec(name: &str, wasm: Arc<[u8]>, config: Value) -> OperatorSpec {
    OperatorSpec {
        name: name.into(),
        wasm,
        // The test guests import `http_request`, and a module is only loaded for an operator
        // granted what it imports: a prefix that can never resolve grants HTTP and reaches nothing.
        allow_http: vec![GRANTS_HTTP_ONLY.to_owned()],
        limits: InstanceLimits {
            max_memory_bytes: 64 << 20,
            call_deadline: Duration::from_secs(5),
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

/// Waits until ConfigMap `namespace/name` exists and `check` accepts its data; returns the data.
pub async fn wait_for_config_map(
    client: &Client,
    namespace: &str,
    name: &str,
    what: &str,
    check: impl Fn(&serde_json::Map<String, Value>) -> bool,
) -> serde_json::Map<String, Value> {
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), namespace);
    wait_for(what, PROMPTLY, || {
        let config_maps = config_maps.clone();
        let check = &check;
        async move {
            let found = config_maps.get_opt(name).await.ok()??;
            let data: serde_json::Map<String, Value> = found
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            check(&data).then_some(data)
        }
    })
    .await
}

pub async fn wait_for_config_map_gone(client: &Client, namespace: &str, name: &str, what: &str) {
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), namespace);
    wait_for(what, PROMPTLY, || {
        let config_maps = config_maps.clone();
        async move { matches!(config_maps.get_opt(name).await, Ok(None)).then_some(()) }
    })
    .await
}
