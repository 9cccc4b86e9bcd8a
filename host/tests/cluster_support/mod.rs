//! Shared set-up of the cluster-mode tests: the WasmOperator and WebApp CRDs, a namespace per
//! test with ServiceAccounts and RBAC, a module in a ConfigMap, an in-process `ClusterHost`
//! scoped to the test's namespace, and what it observed (reconciles, host calls).
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod processes;
pub mod proxy;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::ByteString;
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};
pub use wasm_operator::cluster::source::SourceLimits;
use wasm_operator::cluster::{
    ClusterHost, ClusterSettings, ControllerSettings, LeaseSettings, WasmOperator,
};
use wasm_operator::metrics::HostMetrics;
use wasm_operator::operator::{HostCallObserver, HostCallRecord, ManagerConfig, OperatorManager};
use wasm_operator::runtime::{InstanceLimits, Runtime, RuntimeConfig};
use wasm_operator::scheduler::workqueue::BackoffConfig;
use wasm_operator_test_support::{
    apply_crd, control_plane, guest_module, wait_for, workspace_root,
};
/// Grants the `http` capability and reaches nothing (see its definition in test-support).
pub const GRANTS_HTTP_ONLY: &str = wasm_operator_test_support::GRANTS_HTTP_ONLY;

/// How long a test waits for something the host should do promptly (module compilation
/// included).
pub const PROMPTLY: Duration = Duration::from_secs(60);

pub const FIELD_MANAGER: &str = "wasm-operator-cluster-tests";

/// The WasmOperator and WebApp CRDs from `crds/`, applied once per test process.
pub async fn ensure_crds(client: &Client) {
    static APPLIED: OnceLock<tokio::sync::Mutex<bool>> = OnceLock::new();
    let mut applied = APPLIED.get_or_init(Default::default).lock().await;
    if !*applied {
        for file in ["wasmoperator.yaml", "webapp.yaml"] {
            let yaml = std::fs::read_to_string(workspace_root().join("crds").join(file)).unwrap();
            apply_crd(client, &yaml)
                .await
                .unwrap_or_else(|e| panic!("applying crds/{file}: {e}"));
        }
        *applied = true;
    }
}

/// The Rust webapp example, built from source.
pub fn webapp_module() -> Vec<u8> {
    std::fs::read(guest_module("operator-webapp")).unwrap()
}

/// `wasm` with a custom section appended: another digest, the same behaviour.
pub fn with_custom_section(wasm: &[u8], payload: &str) -> Vec<u8> {
    let name = b"wasm-operator-test";
    let mut content = vec![name.len() as u8];
    content.extend_from_slice(name);
    content.extend_from_slice(payload.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    let mut size = content.len();
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        if size == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(&content);
    out
}

pub fn sha256(bytes: &[u8]) -> String {
    wasm_operator::cluster::source::sha256_digest(bytes)
}

/// Creates ServiceAccount `namespace/name`.
pub async fn create_service_account(client: &Client, namespace: &str, name: &str) {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    accounts
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
}

/// A rule: `verbs` on `resources` of API group `group`.
pub fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    }
}

/// Grants ServiceAccount `sa_namespace/sa` the `rules` in `namespace` (Role + RoleBinding).
pub async fn grant(
    client: &Client,
    namespace: &str,
    role: &str,
    sa_namespace: &str,
    sa: &str,
    rules: Vec<PolicyRule>,
) {
    let roles: Api<Role> = Api::namespaced(client.clone(), namespace);
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
    roles
        .create(
            &PostParams::default(),
            &Role {
                metadata: ObjectMeta {
                    name: Some(role.into()),
                    ..Default::default()
                },
                rules: Some(rules),
            },
        )
        .await
        .unwrap();
    bindings
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: ObjectMeta {
                    name: Some(role.into()),
                    ..Default::default()
                },
                role_ref: role_ref("Role", role),
                subjects: Some(vec![service_account(sa_namespace, sa)]),
            },
        )
        .await
        .unwrap();
}

/// A binding's reference to a `Role` or `ClusterRole`.
pub fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: kind.into(),
        name: name.into(),
    }
}

/// A binding's subject: ServiceAccount `namespace/name`.
pub fn service_account(namespace: &str, name: &str) -> Subject {
    Subject {
        kind: "ServiceAccount".into(),
        name: name.into(),
        namespace: Some(namespace.into()),
        ..Default::default()
    }
}

/// Grants ServiceAccount `sa_namespace/sa` the `rules` in every namespace (ClusterRole +
/// ClusterRoleBinding named `<owner>-<role>`). Both are owned by Namespace `owner`, so the
/// garbage collector removes them with the test's namespace.
pub async fn grant_cluster_wide(
    client: &Client,
    owner: &str,
    role: &str,
    sa_namespace: &str,
    sa: &str,
    rules: Vec<PolicyRule>,
) {
    let namespace = Api::<Namespace>::all(client.clone())
        .get(owner)
        .await
        .unwrap();
    let name = format!("{owner}-{role}");
    let metadata = ObjectMeta {
        name: Some(name.clone()),
        owner_references: Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            name: owner.into(),
            uid: namespace.metadata.uid.unwrap(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    Api::<ClusterRole>::all(client.clone())
        .create(
            &PostParams::default(),
            &ClusterRole {
                metadata: metadata.clone(),
                rules: Some(rules),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(
            &PostParams::default(),
            &ClusterRoleBinding {
                metadata,
                role_ref: role_ref("ClusterRole", &name),
                subjects: Some(vec![service_account(sa_namespace, sa)]),
            },
        )
        .await
        .unwrap();
}

/// Waits until the API server's authorizer lets `sa_namespace/sa` list and watch `kind`
/// (`namespace`: `None` = all namespaces) as `allowed` says: RBAC objects take effect through
/// the authorizer's own watch.
pub async fn wait_for_access(
    client: &Client,
    sa_namespace: &str,
    sa: &str,
    (api_version, kind): (&str, &str),
    namespace: Option<&str>,
    allowed: bool,
) {
    use wasm_operator::cluster::access::ServiceAccountReadAccess;
    let fresh = ServiceAccountReadAccess::new(client.clone(), sa_namespace, sa, Duration::ZERO);
    wait_for(
        &format!("{sa_namespace}/{sa} list+watch of {kind} allowed={allowed}"),
        PROMPTLY,
        || async { (fresh.check(api_version, kind, namespace).await == allowed).then_some(()) },
    )
    .await;
}

/// Lets `namespace/sa` list and watch `kinds` (`(group, plural, apiVersion, Kind)`) in every
/// namespace, as an operator registering all-namespace watches of them needs, and waits until
/// the authorizer agrees.
pub async fn grant_reads_everywhere(
    client: &Client,
    namespace: &str,
    sa: &str,
    kinds: &[(&str, &str, &str, &str)],
) {
    let rules = kinds
        .iter()
        .map(|(group, plural, _, _)| rule(group, &[plural], &["list", "watch"]))
        .collect();
    grant_cluster_wide(
        client,
        namespace,
        &format!("{sa}-reads"),
        namespace,
        sa,
        rules,
    )
    .await;
    for (_, _, api_version, kind) in kinds {
        wait_for_access(client, namespace, sa, (api_version, kind), None, true).await;
    }
}

/// What the empty test guest registers: ConfigMaps in all namespaces.
pub const EMPTY_GUEST_READS: &[(&str, &str, &str, &str)] = &[("", "configmaps", "v1", "ConfigMap")];

/// What the webapp example registers: WebApps, Deployments and Services in all namespaces.
pub const WEBAPP_READS: &[(&str, &str, &str, &str)] = &[
    (
        "demo.wasm-operator.dev",
        "webapps",
        "demo.wasm-operator.dev/v1alpha1",
        "WebApp",
    ),
    ("apps", "deployments", "apps/v1", "Deployment"),
    ("", "services", "v1", "Service"),
];

/// What the webapp example needs in its own namespace (`writes` = may it write WebApps).
pub fn webapp_rules(writes: bool) -> Vec<PolicyRule> {
    let mut webapp_verbs = vec!["get", "list", "watch"];
    if writes {
        webapp_verbs.extend(["update", "patch"]);
    }
    vec![
        rule("demo.wasm-operator.dev", &["webapps"], &webapp_verbs),
        rule(
            "demo.wasm-operator.dev",
            &["webapps/status"],
            &["get", "update", "patch"],
        ),
        rule(
            "apps",
            &["deployments"],
            &["get", "list", "watch", "create", "update", "patch"],
        ),
        rule(
            "",
            &["services"],
            &["get", "list", "watch", "create", "update", "patch"],
        ),
        rule("events.k8s.io", &["events"], &["create"]),
    ]
}

/// Stores `wasm` under binaryData key `webapp.wasm` of ConfigMap `namespace/name`.
pub async fn put_module(client: &Client, namespace: &str, name: &str, wasm: &[u8]) {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        binary_data: Some(BTreeMap::from([(
            "webapp.wasm".to_string(),
            ByteString(wasm.to_vec()),
        )])),
        ..Default::default()
    };
    config_maps
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&config_map),
        )
        .await
        .unwrap();
}

/// The spec of a WasmOperator running the webapp module that [`put_module`] stored in
/// ConfigMap `modules`, as ServiceAccount `webapp`, with its registry in `registry_namespace`.
pub fn webapp_from_config_map(registry_namespace: &str) -> Value {
    json!({
        "module": {"configMap": {"name": "modules", "key": "webapp.wasm"}},
        "serviceAccountName": "webapp",
        "config": {"registryNamespace": registry_namespace},
    })
}

/// Creates WasmOperator `namespace/name` with `spec`.
pub async fn create_wasm_operator(client: &Client, namespace: &str, name: &str, spec: Value) {
    let api: Api<WasmOperator> = Api::namespaced(client.clone(), namespace);
    let object: WasmOperator = serde_json::from_value(json!({
        "apiVersion": "wasm-operator.dev/v1alpha1",
        "kind": "WasmOperator",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }))
    .unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
}

/// Waits until `check` accepts WasmOperator `namespace/name`; returns it.
pub async fn wait_for_wasm_operator(
    client: &Client,
    namespace: &str,
    name: &str,
    what: &str,
    check: impl Fn(&WasmOperator) -> bool,
) -> WasmOperator {
    let api: Api<WasmOperator> = Api::namespaced(client.clone(), namespace);
    wait_for(what, PROMPTLY, || {
        let api = api.clone();
        let check = &check;
        async move {
            let object = api.get_opt(name).await.ok()??;
            check(&object).then_some(object)
        }
    })
    .await
}

pub fn phase(object: &WasmOperator) -> &str {
    object
        .status
        .as_ref()
        .and_then(|status| status.phase.as_deref())
        .unwrap_or("")
}

/// Waits for an Event with `reason` about WasmOperator `namespace/name`; returns its note.
pub async fn wait_for_event(client: &Client, namespace: &str, name: &str, reason: &str) -> Event {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    wait_for(
        &format!("a {reason} Event about WasmOperator {name}"),
        PROMPTLY,
        || {
            let events = events.clone();
            async move {
                let list = events.list(&ListParams::default()).await.ok()?;
                list.items.into_iter().find(|event| {
                    event.reason.as_deref() == Some(reason)
                        && event.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                        && event.regarding.as_ref().and_then(|r| r.kind.as_deref())
                            == Some("WasmOperator")
                })
            }
        },
    )
    .await
}

/// How many times an Event with `reason` was recorded about WasmOperator `namespace/name`
/// (an Event repeated as a series counts each occurrence).
pub async fn event_count(client: &Client, namespace: &str, name: &str, reason: &str) -> i32 {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let list = events.list(&ListParams::default()).await.unwrap();
    list.items
        .iter()
        .filter(|event| {
            event.reason.as_deref() == Some(reason)
                && event.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                && event.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("WasmOperator")
        })
        .map(|event| event.series.as_ref().map_or(1, |series| series.count))
        .sum()
}

/// Every host call of every operator, in order.
#[derive(Clone, Default)]
pub struct HostCalls(Arc<Mutex<Vec<HostCallRecord>>>);

impl HostCalls {
    pub fn observer(&self) -> HostCallObserver {
        let records = self.0.clone();
        Arc::new(move |record: &HostCallRecord| records.lock().unwrap().push(record.clone()))
    }

    pub fn of(&self, operator: &str) -> Vec<HostCallRecord> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|record| record.operator == operator)
            .cloned()
            .collect()
    }
}

/// A `ClusterHost` running in this process, scoped to one namespace, until dropped.
pub struct InProcessHost {
    pub manager: OperatorManager,
    pub metrics: HostMetrics,
    pub calls: HostCalls,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

/// One compiled-module cache for every test process: entries reach their name by atomic
/// rename, so sharing is safe, and nothing piles up run after run.
fn module_cache_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join("wasm-operator-cluster-modules");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn controller_settings(namespace: &str, identity: &str) -> ControllerSettings {
    ControllerSettings {
        namespace: Some(namespace.into()),
        selector: None,
        identity: identity.into(),
        limits: InstanceLimits {
            max_memory_bytes: 64 << 20,
            call_deadline: Duration::from_secs(5),
        },
        maxima: Default::default(),
        backoff: BackoffConfig {
            base: Duration::from_millis(50),
            max: Duration::from_secs(2),
        },
        status_interval: Duration::from_millis(200),
        resync_interval: Duration::from_secs(2),
        access_ttl: Duration::from_secs(2),
    }
}

impl InProcessHost {
    /// Starts a host for the WasmOperators of `namespace`, as the admin, with `lease` (if any).
    pub async fn start(namespace: &str, lease: Option<LeaseSettings>) -> InProcessHost {
        Self::start_with(namespace, lease, None, ManagerConfig::default()).await
    }

    /// As [`start`](Self::start), with `spec.module.path` sources under `modules_dir` and
    /// the manager's settings from `manager_config` (its host-call observer is the host's).
    pub async fn start_with(
        namespace: &str,
        lease: Option<LeaseSettings>,
        modules_dir: Option<std::path::PathBuf>,
        manager_config: ManagerConfig,
    ) -> InProcessHost {
        let controller = controller_settings(namespace, "test-host");
        Self::start_with_controller(controller, lease, modules_dir, manager_config).await
    }

    /// As [`start_with`](Self::start_with), with the controller's settings from `controller`.
    pub async fn start_with_controller(
        controller: ControllerSettings,
        lease: Option<LeaseSettings>,
        modules_dir: Option<std::path::PathBuf>,
        manager_config: ManagerConfig,
    ) -> InProcessHost {
        Self::start_with_sources(
            controller,
            lease,
            modules_dir,
            manager_config,
            // Test registries and module servers are on loopback, denied by default.
            SourceLimits {
                allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
                ..SourceLimits::default()
            },
        )
        .await
    }

    /// As [`start_with_controller`](Self::start_with_controller), with module fetches bounded
    /// by `sources`.
    pub async fn start_with_sources(
        controller: ControllerSettings,
        lease: Option<LeaseSettings>,
        modules_dir: Option<std::path::PathBuf>,
        manager_config: ManagerConfig,
        sources: SourceLimits,
    ) -> InProcessHost {
        let config = control_plane().config().await;
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: module_cache_dir(),
            epoch_tick: Duration::from_millis(10),
        })
        .unwrap();
        let metrics = HostMetrics::new();
        let calls = HostCalls::default();
        let manager_config = ManagerConfig {
            host_call_observer: Some(calls.observer()),
            stop_deadline: Duration::from_secs(5),
            ..manager_config
        };
        let settings = ClusterSettings {
            controller,
            lease,
            modules_dir,
            sources,
        };
        let host = ClusterHost::new(runtime, config, metrics.clone(), manager_config, settings)
            .expect("building the cluster host");
        let manager = host.manager().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(host.run(async {
            let _ = stopped.await;
        }));
        InProcessHost {
            manager,
            metrics,
            calls,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the host (its operators included) and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for InProcessHost {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
