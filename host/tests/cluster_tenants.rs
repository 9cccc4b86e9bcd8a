//! Hostile tenants against the real host and the real API server with real RBAC: WasmOperators
//! whose names collide once joined, limits far beyond what the host allows, a Registration
//! asking for kinds the tenant's ServiceAccount may not read, and an init that fails until the
//! tenant fixes its cause (retried by the manager, not reloaded by the resync).
mod cluster_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use wasm_operator::cluster::{operator_name, ControllerSettings, TenantMaxima, WasmOperator};
use wasm_operator::operator::{
    HostCall, ManagerConfig, OperatorState, ReconcileOutcome, ReconcileRecord,
};
use wasm_operator::scheduler::mapping::ObjectKey;
use wasm_operator_abi::KubeRequest;
use wasm_operator_test_support::{
    control_plane, guest_module, test_namespace, wait_for, TestNamespace,
};

use cluster_support::*;

/// The label that scopes a cluster-wide test host to this test's WasmOperators.
const TEST_LABEL: &str = "wasm-operator.dev/test";

/// A modules directory holding the behaviours guest as `behaviours.wasm` and, with another
/// digest, as `behaviours-2.wasm`.
fn behaviours_modules() -> (tempfile::TempDir, Vec<u8>, Vec<u8>) {
    let modules = tempfile::tempdir().unwrap();
    let one = std::fs::read(guest_module("test-guest-behaviours")).unwrap();
    let two = with_custom_section(&one, "second tenant");
    std::fs::write(modules.path().join("behaviours.wasm"), &one).unwrap();
    std::fs::write(modules.path().join("behaviours-2.wasm"), &two).unwrap();
    (modules, one, two)
}

/// Lets `namespace/default` list and watch ConfigMaps in `namespace`, and waits until it may.
async fn config_map_reads_in(client: &Client, namespace: &str) {
    grant(
        client,
        namespace,
        "config-map-reads",
        namespace,
        "default",
        vec![rule("", &["configmaps"], &["list", "watch"])],
    )
    .await;
    wait_for_access(
        client,
        namespace,
        "default",
        ("v1", "ConfigMap"),
        Some(namespace),
        true,
    )
    .await;
}

async fn create_config_map(client: &Client, namespace: &str, name: &str) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let object = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
}

async fn create_labelled_wasm_operator(
    client: &Client,
    namespace: &str,
    name: &str,
    label: &str,
    spec: Value,
) {
    let api: Api<WasmOperator> = Api::namespaced(client.clone(), namespace);
    let object: WasmOperator = serde_json::from_value(json!({
        "apiVersion": "wasm-operator.dev/v1alpha1",
        "kind": "WasmOperator",
        "metadata": {"name": name, "namespace": namespace, "labels": {TEST_LABEL: label}},
        "spec": spec,
    }))
    .unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
}

/// Names of the ConfigMaps an operator's host calls asked for with `get`.
fn gets_of(host: &InProcessHost, operator: &str) -> Vec<String> {
    host.calls
        .of(operator)
        .into_iter()
        .filter_map(|record| match record.call {
            HostCall::Kube(KubeRequest::Get { name, .. }) => Some(name),
            _ => None,
        })
        .collect()
}

/// A behaviours-guest spec: reconciles ConfigMaps of `namespace` and gets ConfigMap `probe`.
fn probing(module: &str, namespace: &str, probe: &str) -> Value {
    json!({
        "module": {"path": module},
        "allowHttp": [GRANTS_HTTP_ONLY],
        "config": {
            "onReconcile": "kube",
            "kubeRequest": {"verb": "get", "apiVersion": "v1", "kind": "ConfigMap", "namespace": namespace, "name": probe},
            "registration": {"for": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": namespace}},
        },
    })
}

/// `team/a-b` and `team-a/b` used to be the same host operator `team-a-b`: the second
/// reloaded the first one's operator with its own module and config, and deleting it unloaded
/// the victim. Both must run apart, and deleting one must leave the other running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colliding_names_in_two_namespaces_run_apart() {
    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let team_guard = test_namespace(&client, "cluster-team").await;
    let team = team_guard.name.clone();
    // `<team>-a`: a namespace whose name is another's plus `-a`, as the attack needs.
    let team_a = format!("{team}-a");
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": team_a}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let _team_a_guard = TestNamespace {
        name: team_a.clone(),
    };
    config_map_reads_in(&client, &team).await;
    config_map_reads_in(&client, &team_a).await;

    let (modules, one, two) = behaviours_modules();
    // All namespaces, but only this test's WasmOperators (others' tests run alongside).
    let controller = wasm_operator::cluster::ControllerSettings {
        namespace: None,
        selector: Some(format!("{TEST_LABEL}={team}")),
        ..controller_settings(&team, "test-host")
    };
    let host = InProcessHost::start_with_controller(
        controller,
        None,
        Some(modules.path().to_path_buf()),
        ManagerConfig::default(),
    )
    .await;
    create_labelled_wasm_operator(
        &client,
        &team,
        "a-b",
        &team,
        probing("behaviours.wasm", &team, "probe-one"),
    )
    .await;
    create_labelled_wasm_operator(
        &client,
        &team_a,
        "b",
        &team,
        probing("behaviours-2.wasm", &team_a, "probe-two"),
    )
    .await;
    let victim = operator_name(&team, "a-b");
    let other = operator_name(&team_a, "b");
    assert_ne!(victim, other);

    for (namespace, name, module) in [(&team, "a-b", &one), (&team_a, "b", &two)] {
        let running = wait_for_wasm_operator(&client, namespace, name, "Idle", |object| {
            phase(object) == "Idle"
        })
        .await;
        assert_eq!(
            running.status.unwrap().module_digest.as_deref(),
            Some(sha256(module).as_str()),
            "{namespace}/{name} runs its own module"
        );
    }
    assert_eq!(host.manager.list().len(), 2, "{:?}", host.manager.list());

    // Each reconciles with its own config (the ConfigMap it gets says whose config it is).
    create_config_map(&client, &team, "trigger").await;
    create_config_map(&client, &team_a, "trigger").await;
    for (operator, own) in [(&victim, "probe-one"), (&other, "probe-two")] {
        wait_for(&format!("{operator} to reconcile"), PROMPTLY, || async {
            (!gets_of(&host, operator).is_empty()).then_some(())
        })
        .await;
        let gets = gets_of(&host, operator);
        assert!(gets.iter().all(|name| name == own), "{operator}: {gets:?}");
    }

    // Deleting `team-a/b` unloads its operator only.
    Api::<WasmOperator>::namespaced(client.clone(), &team_a)
        .delete("b", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("team-a/b's operator to be unloaded", PROMPTLY, || async {
        host.manager.state(&other).is_none().then_some(())
    })
    .await;
    let state = host.manager.state(&victim);
    assert!(
        matches!(
            state,
            Some(OperatorState::Idle | OperatorState::Running | OperatorState::Swapped)
        ),
        "{state:?}"
    );
    let before = gets_of(&host, &victim).len();
    create_config_map(&client, &team, "after-delete").await;
    wait_for("team/a-b to keep reconciling", PROMPTLY, || async {
        (gets_of(&host, &victim).len() > before).then_some(())
    })
    .await;
    host.stop().await;
}

/// `memory: 4Gi` and `callDeadline: 99999999999999999h` (which overflowed `Instant + Duration`)
/// are clamped to the host's maxima, the status says so, and the clamped limits hold: a guest
/// growing its memory stops at the host maximum, a spinning guest at the maximum deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_limits_run_clamped_and_the_status_says_so() {
    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let namespace = test_namespace(&client, "cluster-limits").await;
    let ns = namespace.name.as_str();
    config_map_reads_in(&client, ns).await;
    let (modules, _, _) = behaviours_modules();
    let controller = wasm_operator::cluster::ControllerSettings {
        maxima: TenantMaxima {
            memory_bytes: 32 << 20,
            call_deadline: Duration::from_secs(2),
            swap_after_idle: Duration::from_secs(3600),
        },
        ..controller_settings(ns, "test-host")
    };
    let host = InProcessHost::start_with_controller(
        controller,
        None,
        Some(modules.path().to_path_buf()),
        ManagerConfig::default(),
    )
    .await;
    let absurd = |on_reconcile: &str| {
        json!({
            "module": {"path": "behaviours.wasm"},
            "allowHttp": [GRANTS_HTTP_ONLY],
            "limits": {"memory": "4Gi", "callDeadline": "99999999999999999h"},
            "swap": {"afterIdle": "99999999999999999999h"},
            "config": {
                "onReconcile": on_reconcile,
                "registration": {"for": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": ns}},
            },
        })
    };
    create_wasm_operator(&client, ns, "greedy", absurd("growMemory")).await;
    create_wasm_operator(&client, ns, "spinner", absurd("loop")).await;

    for name in ["greedy", "spinner"] {
        let running = wait_for_wasm_operator(&client, ns, name, "the operator to run", |object| {
            matches!(phase(object), "Idle" | "Running")
        })
        .await;
        let status = running.status.unwrap();
        let accepted = status
            .conditions
            .iter()
            .find(|condition| condition.type_ == "ModuleAccepted")
            .unwrap();
        assert_eq!(accepted.reason, "LimitsClamped", "{accepted:?}");
        for expected in [
            "spec.limits.memory 4Gi exceeds the host maximum 32Mi; using 32Mi",
            "spec.limits.callDeadline 99999999999999999h exceeds the host maximum 2s; using 2s",
            "spec.swap.afterIdle 99999999999999999999h exceeds the host maximum 1h; using 1h",
        ] {
            assert!(accepted.message.contains(expected), "{}", accepted.message);
        }
        let event = wait_for_event(&client, ns, name, "LimitsClamped").await;
        assert!(event.note.unwrap().contains("using 32Mi"));
    }

    // The clamped limits are the ones enforced.
    create_config_map(&client, ns, "trigger").await;
    for (name, reason) in [("greedy", "(memory)"), ("spinner", "(deadline)")] {
        let failed = wait_for_wasm_operator(
            &client,
            ns,
            name,
            &format!("a reconcile of {name} failing with {reason}"),
            |object| {
                object
                    .status
                    .as_ref()
                    .and_then(|status| status.last_error.as_deref())
                    .is_some_and(|error| error.contains(reason))
            },
        )
        .await;
        assert!(failed.status.unwrap().reconciles.unwrap().failed >= 1);
    }
    host.stop().await;
}

/// A tenant whose ServiceAccount may not read ConfigMaps registers `for: v1/ConfigMap` in all
/// namespaces, which the host's own watch could serve: it must be refused (Failed, a message
/// and an Event naming the kind, the namespaces and the verb) and never receive another
/// namespace's ConfigMap; once RBAC grants the reads, the retry runs it; once they are revoked
/// it is stopped again within the answer TTL, before anything created afterwards reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_beyond_the_service_account_is_refused_until_granted() {
    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let namespace = test_namespace(&client, "cluster-snoop").await;
    let victim = test_namespace(&client, "cluster-snoop-victim").await;
    let ns = namespace.name.as_str();
    create_service_account(&client, ns, "tenant").await;
    create_config_map(&client, &victim.name, "victim-data").await;
    let (modules, _, _) = behaviours_modules();
    let reconciled: Arc<Mutex<Vec<ReconcileRecord>>> = Arc::default();
    let records = reconciled.clone();
    let manager_config = ManagerConfig {
        reconcile_observer: Some(Arc::new(move |record: &ReconcileRecord| {
            records.lock().unwrap().push(record.clone())
        })),
        ..ManagerConfig::default()
    };
    let host =
        InProcessHost::start_with(ns, None, Some(modules.path().to_path_buf()), manager_config)
            .await;
    let mut changes = host.manager.state_changes();
    let mut refusals = 0;
    create_wasm_operator(
        &client,
        ns,
        "snoop",
        json!({
            "module": {"path": "behaviours.wasm"},
            "allowHttp": [GRANTS_HTTP_ONLY],
            "serviceAccountName": "tenant",
            "config": {
                "requeueAfterMs": 200,
                "registration": {"for": {"apiVersion": "v1", "kind": "ConfigMap"}},
            },
        }),
    )
    .await;
    let operator = operator_name(ns, "snoop");
    let expected =
        format!("system:serviceaccount:{ns}:tenant may not list v1 ConfigMap in all namespaces");
    let failed = wait_for_wasm_operator(&client, ns, "snoop", "phase Failed", |object| {
        phase(object) == "Failed"
    })
    .await;
    let status = failed.status.unwrap();
    let message = status.last_error.unwrap_or_default();
    assert!(message.contains(&expected), "{message}");
    let event = wait_for_event(&client, ns, "snoop", "LoadFailed").await;
    assert!(event.note.unwrap_or_default().contains(&expected));

    // Retried on every resync (2 s here) and refused each time: wait for two more refusals,
    // and nothing may have reached the guest meanwhile.
    wait_for("two retries refused", PROMPTLY, || {
        while let Ok(change) = changes.try_recv() {
            if change.operator == operator && matches!(change.state, OperatorState::Failed { .. }) {
                refusals += 1;
            }
        }
        std::future::ready((refusals >= 3).then_some(()))
    })
    .await;
    assert!(
        !reconciled
            .lock()
            .unwrap()
            .iter()
            .any(|record| record.operator == operator),
        "a refused operator reconciled"
    );

    // Granting the reads lets the next retry run it, and it then sees what it may read.
    grant_reads_everywhere(&client, ns, "tenant", EMPTY_GUEST_READS).await;
    wait_for_wasm_operator(
        &client,
        ns,
        "snoop",
        "snoop to run once granted",
        |object| matches!(phase(object), "Idle" | "Running"),
    )
    .await;
    let victim_key = ObjectKey::new(Some(&victim.name), "victim-data");
    wait_for(
        "snoop to reconcile what it may now read",
        PROMPTLY,
        || async {
            reconciled
                .lock()
                .unwrap()
                .iter()
                .any(|record| {
                    record.operator == operator
                        && record.key == victim_key
                        && matches!(record.outcome, ReconcileOutcome::Succeeded { .. })
                })
                .then_some(())
        },
    )
    .await;

    // Revoking the reads stops it within the answer TTL (2 s here): Failed again, and what is
    // created afterwards never reaches it.
    Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(client.clone())
        .delete(&format!("{ns}-tenant-reads"), &DeleteParams::default())
        .await
        .unwrap();
    wait_for_access(&client, ns, "tenant", ("v1", "ConfigMap"), None, false).await;
    let failed = wait_for_wasm_operator(
        &client,
        ns,
        "snoop",
        "snoop Failed once revoked",
        |object| phase(object) == "Failed",
    )
    .await;
    let message = failed.status.unwrap().last_error.unwrap_or_default();
    assert!(message.contains(&expected), "{message}");
    let mut changes = host.manager.state_changes();
    create_config_map(&client, &victim.name, "after-revoke").await;
    let after_revoke = ObjectKey::new(Some(&victim.name), "after-revoke");
    let mut refusals = 0;
    wait_for("three more refused retries", PROMPTLY, || {
        while let Ok(change) = changes.try_recv() {
            if change.operator == operator && matches!(change.state, OperatorState::Failed { .. }) {
                refusals += 1;
            }
        }
        std::future::ready((refusals >= 3).then_some(()))
    })
    .await;
    assert!(
        !reconciled
            .lock()
            .unwrap()
            .iter()
            .any(|record| record.operator == operator && record.key == after_revoke),
        "a ConfigMap created after the revocation reached the guest"
    );
    host.stop().await;
}

/// Starts a host with `resync` and a WasmOperator `patient` whose init fails until ConfigMap
/// `gate` exists, and waits until its load failed (phase Failed, a LoadFailed Event). Its
/// ServiceAccount may get (the gate), list and watch (its registration) ConfigMaps of its
/// namespace.
async fn gated_operator(
    client: &Client,
    ns: &str,
    resync: Duration,
) -> (InProcessHost, String, tempfile::TempDir) {
    grant(
        client,
        ns,
        "gate-reads",
        ns,
        "default",
        vec![rule("", &["configmaps"], &["get", "list", "watch"])],
    )
    .await;
    wait_for_access(client, ns, "default", ("v1", "ConfigMap"), Some(ns), true).await;
    let (modules, _, _) = behaviours_modules();
    let controller = ControllerSettings {
        resync_interval: resync,
        ..controller_settings(ns, "test-host")
    };
    let host = InProcessHost::start_with_controller(
        controller,
        None,
        Some(modules.path().to_path_buf()),
        ManagerConfig::default(),
    )
    .await;
    create_wasm_operator(
        client,
        ns,
        "patient",
        json!({
            "module": {"path": "behaviours.wasm"},
            "allowHttp": [GRANTS_HTTP_ONLY],
            "config": {
                "onInit": "gate",
                "initGate": {"verb": "get", "apiVersion": "v1", "kind": "ConfigMap",
                             "namespace": ns, "name": "gate"},
                "registration": {"for": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": ns}},
            },
        }),
    )
    .await;
    let failed = wait_for_wasm_operator(client, ns, "patient", "patient Failed", |object| {
        phase(object) == "Failed"
    })
    .await;
    let message = failed.status.unwrap().last_error.unwrap_or_default();
    assert!(message.contains("init gate is closed"), "{message}");
    wait_for_event(client, ns, "patient", "LoadFailed").await;
    (host, operator_name(ns, "patient"), modules)
}

/// Waits until the manager reports the `attempt`th failed init of `operator`.
async fn wait_for_init_attempt(host: &InProcessHost, operator: &str, attempt: u32) {
    let marker = format!("(attempt {attempt})");
    wait_for(&format!("init attempt {attempt}"), PROMPTLY, || async {
        match host.manager.state(operator) {
            Some(OperatorState::Failed { reason }) if reason.contains(&marker) => Some(()),
            _ => None,
        }
    })
    .await;
}

/// Opens the gate and waits for `patient` to be Idle and Ready with no error in its status.
async fn open_gate_and_wait_until_ready(client: &Client, ns: &str) {
    create_config_map(client, ns, "gate").await;
    let ready = wait_for_wasm_operator(client, ns, "patient", "patient Idle and Ready", |object| {
        let ready = object.status.as_ref().is_some_and(|status| {
            status
                .conditions
                .iter()
                .any(|condition| condition.type_ == "Ready" && condition.status == "True")
        });
        phase(object) == "Idle" && ready
    })
    .await;
    let status = ready.status.unwrap();
    assert_eq!(status.last_error, None, "{status:?}");
    assert!(status
        .conditions
        .iter()
        .all(|condition| condition.status == "True"));
    assert!(status.module_digest.is_some(), "{status:?}");
    let loaded = wait_for_event(client, ns, "patient", "Loaded").await;
    assert!(loaded
        .note
        .unwrap_or_default()
        .contains("once its init succeeded"));
}

/// A WasmOperator whose init fails is retried by the manager (with its backoff); when a retry
/// succeeds, the status turns Ready at once, without waiting for the controller's resync
/// (10 minutes here) to reload it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_init_that_succeeds_on_a_retry_turns_ready_without_a_resync() {
    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let namespace = test_namespace(&client, "cluster-init-retry").await;
    let ns = namespace.name.as_str();
    let (host, operator, _modules) = gated_operator(&client, ns, Duration::from_secs(600)).await;
    wait_for_init_attempt(&host, &operator, 2).await;
    open_gate_and_wait_until_ready(&client, ns).await;
    host.stop().await;
}

/// The resync (every second here) leaves an operator the manager is retrying alone: reloading
/// it would reset its backoff (attempts would never climb past the few that fit in a second),
/// and the status still turns Ready when a retry succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resync_does_not_reload_an_operator_retrying_its_init() {
    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let namespace = test_namespace(&client, "cluster-init-backoff").await;
    let ns = namespace.name.as_str();
    let (host, operator, _modules) = gated_operator(&client, ns, Duration::from_secs(1)).await;
    // Backoff 50 ms doubling to 2 s: attempt 8 comes about 5 s after the first, so only if
    // no resync reloaded the operator meanwhile.
    wait_for_init_attempt(&host, &operator, 8).await;
    open_gate_and_wait_until_ready(&client, ns).await;
    host.stop().await;
}
