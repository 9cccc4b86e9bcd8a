//! WasmOperators against the real control plane, with the Rust webapp example held in a
//! ConfigMap: it reconciles WebApps as its own ServiceAccount, a new module in the ConfigMap
//! reloads it, deleting the WasmOperator unloads it and releases its watches, a module failing
//! validation is reported in status and an Event, and a ServiceAccount lacking a verb gets 403
//! with nothing written.
mod cluster_support;

use std::time::Instant;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use wasm_operator::cluster::{operator_name, WasmOperator};
use wasm_operator::operator::HostCall;
use wasm_operator_abi::{HostResponse, KubeRequest};
use wasm_operator_test_support::{control_plane, go_guest_module, test_namespace, wait_for};

use cluster_support::*;

async fn create_webapp(client: &Client, namespace: &str, name: &str) {
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &kube::discovery::ApiResource {
            group: "demo.wasm-operator.dev".into(),
            version: "v1alpha1".into(),
            api_version: "demo.wasm-operator.dev/v1alpha1".into(),
            kind: "WebApp".into(),
            plural: "webapps".into(),
        },
    );
    let object = serde_json::from_value(json!({
        "apiVersion": "demo.wasm-operator.dev/v1alpha1",
        "kind": "WebApp",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"image": "nginx:1.27", "replicas": 1},
    }))
    .unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
}

/// Waits for the registry entry only this test's operator may write (its own registry
/// namespace, where only its ServiceAccount is granted ConfigMap writes).
async fn wait_for_registry_entry(client: &Client, registry: &str, namespace: &str, webapp: &str) {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), registry);
    let name = format!("webapp-{namespace}-{webapp}");
    wait_for(
        &format!("registry entry {registry}/{name}"),
        PROMPTLY,
        || {
            let config_maps = config_maps.clone();
            let name = name.clone();
            async move { config_maps.get_opt(&name).await.ok()?.map(|_| ()) }
        },
    )
    .await;
}

/// A namespace pair (operator's, registry) with a ServiceAccount `webapp` allowed the webapp
/// example's requests (WebApp writes only if `writes`).
async fn webapp_namespaces(
    client: &Client,
    prefix: &str,
    writes: bool,
) -> (
    wasm_operator_test_support::TestNamespace,
    wasm_operator_test_support::TestNamespace,
) {
    let namespace = test_namespace(client, prefix).await;
    let registry = test_namespace(client, &format!("{prefix}-registry")).await;
    create_service_account(client, &namespace.name, "webapp").await;
    grant_reads_everywhere(client, &namespace.name, "webapp", WEBAPP_READS).await;
    grant(
        client,
        &namespace.name,
        "webapp",
        &namespace.name,
        "webapp",
        webapp_rules(writes),
    )
    .await;
    grant(
        client,
        &registry.name,
        "webapp-registry",
        &namespace.name,
        "webapp",
        vec![rule(
            "",
            &["configmaps"],
            &["get", "create", "update", "patch", "delete"],
        )],
    )
    .await;
    (namespace, registry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_map_module_reconciles_reloads_and_unloads() {
    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let (namespace, registry) = webapp_namespaces(&client, "cluster-webapp", true).await;
    let ns = namespace.name.as_str();
    let module = webapp_module();
    put_module(&client, ns, "modules", &module).await;
    let host = InProcessHost::start(ns, None).await;
    create_wasm_operator(
        &client,
        ns,
        "webapp",
        webapp_from_config_map(&registry.name),
    )
    .await;
    let operator = operator_name(ns, "webapp");

    let loaded =
        wait_for_wasm_operator(&client, ns, "webapp", "the operator to be Idle", |object| {
            phase(object) == "Idle"
        })
        .await;
    let status = loaded.status.unwrap();
    assert_eq!(
        status.module_digest.as_deref(),
        Some(sha256(&module).as_str())
    );
    assert!(
        status.capabilities.contains(&"kubernetes".to_string()),
        "{:?}",
        status.capabilities
    );
    assert_eq!(status.host.as_deref(), Some("test-host"));
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Loaded")
    );
    wait_for_event(&client, ns, "webapp", "Loaded").await;

    create_webapp(&client, ns, "shop").await;
    wait_for_registry_entry(&client, &registry.name, ns, "shop").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    assert!(deployments.get_opt("shop").await.unwrap().is_some());
    let counted = wait_for_wasm_operator(
        &client,
        ns,
        "webapp",
        "reconciles counted in status",
        |object| {
            object
                .status
                .as_ref()
                .and_then(|s| s.reconciles)
                .is_some_and(|r| r.succeeded >= 1)
        },
    )
    .await;
    assert!(counted.status.unwrap().reconciles.unwrap().succeeded >= 1);

    // A new module in the ConfigMap replaces the running one; the new instance reconciles the
    // existing WebApp again (its watches list everything) and new ones.
    let reload_started = Instant::now();
    let calls_before = host.calls.of(&operator).len();
    let new_module = with_custom_section(&module, "v2");
    put_module(&client, ns, "modules", &new_module).await;
    wait_for_wasm_operator(
        &client,
        ns,
        "webapp",
        "the new module digest in status",
        |object| {
            object.status.as_ref().and_then(|s| s.module_digest.clone())
                == Some(sha256(&new_module))
                && phase(object) == "Idle"
        },
    )
    .await;
    let reloaded = wait_for_event(&client, ns, "webapp", "Reloaded").await;
    assert!(reloaded.note.unwrap().contains(&sha256(&new_module)));
    wait_for("the new instance to reconcile shop again", PROMPTLY, || {
        let calls = host.calls.of(&operator);
        let again = calls[calls_before..].iter().any(|record| {
            matches!(&record.call, HostCall::Kube(KubeRequest::Patch { name, kind, namespace, .. }) if name == "shop" && kind == "Deployment" && namespace.as_deref() == Some(ns))
        });
        async move { again.then_some(()) }
    })
    .await;
    create_webapp(&client, ns, "cart").await;
    wait_for_registry_entry(&client, &registry.name, ns, "cart").await;
    assert!(reload_started.elapsed() < PROMPTLY);

    // Deleting the WasmOperator unloads the operator and closes its watches.
    assert!(host.manager.watches().open_watches() > 0);
    let api: Api<WasmOperator> = Api::namespaced(client.clone(), ns);
    api.delete("webapp", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the operator to be unloaded", PROMPTLY, || {
        let gone = host.manager.state(&operator).is_none();
        async move { gone.then_some(()) }
    })
    .await;
    // The board forgets the operator first; its task then drops its watch subscriptions.
    wait_for("its watches to be closed", PROMPTLY, || {
        let open = host.manager.watches().open_watches();
        async move { (open == 0).then_some(()) }
    })
    .await;
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_failing_validation_is_failed_in_status_and_an_event() {
    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let namespace = test_namespace(&client, "cluster-invalid").await;
    let ns = namespace.name.as_str();
    // The fixed module (the webapp example) watches its kinds in all namespaces.
    grant_reads_everywhere(&client, ns, "default", WEBAPP_READS).await;
    let invalid =
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#)
            .unwrap();
    let expected = wasm_operator_abi::validate(&invalid).unwrap_err();
    let first_problem = expected.problems[0].to_string();
    put_module(&client, ns, "modules", &invalid).await;
    let host = InProcessHost::start(ns, None).await;
    create_wasm_operator(
        &client,
        ns,
        "broken",
        json!({"module": {"configMap": {"name": "modules", "key": "webapp.wasm"}}}),
    )
    .await;

    let failed = wait_for_wasm_operator(&client, ns, "broken", "phase Failed", |object| {
        phase(object) == "Failed"
    })
    .await;
    let status = failed.status.unwrap();
    let last_error = status.last_error.unwrap();
    assert!(last_error.contains(&first_problem), "{last_error}");
    let accepted = status
        .conditions
        .iter()
        .find(|c| c.type_ == "ModuleAccepted")
        .unwrap();
    assert_eq!(
        (accepted.status.as_str(), accepted.reason.as_str()),
        ("False", "ValidationFailed")
    );
    assert!(accepted.message.contains(&first_problem));
    let event = wait_for_event(&client, ns, "broken", "ValidationFailed").await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert!(event.note.unwrap().contains(&first_problem));
    assert!(host.manager.state(&operator_name(ns, "broken")).is_none());

    // Fixing the module in the ConfigMap loads it.
    put_module(&client, ns, "modules", &webapp_module()).await;
    wait_for_wasm_operator(&client, ns, "broken", "the fixed module to run", |object| {
        phase(object) == "Idle"
    })
    .await;
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_lacking_a_verb_gets_403_and_nothing_is_written() {
    let client = control_plane().client().await;
    ensure_crds(&client).await;
    // No update/patch on WebApps: the webapp example's first write (adding its finalizer) is
    // refused, and it must write nothing else.
    let (namespace, registry) = webapp_namespaces(&client, "cluster-forbidden", false).await;
    let ns = namespace.name.as_str();
    put_module(&client, ns, "modules", &webapp_module()).await;
    let host = InProcessHost::start(ns, None).await;
    create_wasm_operator(
        &client,
        ns,
        "webapp",
        webapp_from_config_map(&registry.name),
    )
    .await;
    let operator = operator_name(ns, "webapp");
    wait_for_wasm_operator(&client, ns, "webapp", "the operator to run", |object| {
        phase(object) == "Idle"
    })
    .await;
    create_webapp(&client, ns, "shop").await;

    // Its first write to its own WebApp is refused. (It also reconciles the WebApps of other
    // tests, everywhere: those writes are refused too, as it has no rights there.)
    wait_for(
        "a 403 answer to the operator's update of shop",
        PROMPTLY,
        || {
            let refused = host.calls.of(&operator).iter().any(|record| {
                match (&record.call, &record.response) {
                    (
                        HostCall::Kube(KubeRequest::Update {
                            name, namespace, ..
                        }),
                        HostResponse::Error(error),
                    ) => {
                        name == "shop"
                            && namespace.as_deref() == Some(ns)
                            && error.status_code() == Some(403)
                    }
                    _ => false,
                }
            });
            async move { refused.then_some(()) }
        },
    )
    .await;
    let failed = wait_for_wasm_operator(
        &client,
        ns,
        "webapp",
        "a failed reconcile in status",
        |object| {
            object
                .status
                .as_ref()
                .and_then(|s| s.reconciles)
                .is_some_and(|r| r.failed >= 1)
        },
    )
    .await;
    let last_error = failed.status.unwrap().last_error.unwrap_or_default();
    assert!(last_error.contains("forbidden"), "{last_error}");
    let calls = host.calls.of(&operator);
    let successful_writes: Vec<_> = calls
        .iter()
        .filter(|record| {
            matches!(&record.call, HostCall::Kube(request) if !matches!(request, KubeRequest::Get { .. } | KubeRequest::List { .. }))
                && matches!(record.response, HostResponse::Ok(_))
        })
        .collect();
    assert!(successful_writes.is_empty(), "{successful_writes:#?}");
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &registry.name);
    assert!(config_maps
        .get_opt(&format!("webapp-{ns}-shop"))
        .await
        .unwrap()
        .is_none());
    host.stop().await;
}

/// The Go webapp (3.8 MiB: too large for a ConfigMap) from an HTTP URL pinned by SHA-256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_webapp_runs_from_an_http_source() {
    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let (namespace, registry) = webapp_namespaces(&client, "cluster-go", true).await;
    let ns = namespace.name.as_str();
    let module = std::fs::read(go_guest_module("operators-go/webapp")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webapp.wasm", listener.local_addr().unwrap());
    let served = module.clone();
    let app = axum::Router::new().route(
        "/webapp.wasm",
        axum::routing::get(move || {
            let served = served.clone();
            async move { served }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let host = InProcessHost::start(ns, None).await;
    create_wasm_operator(
        &client,
        ns,
        "webapp-go",
        json!({
            "module": {"http": {"url": url, "sha256": sha256(&module)}},
            "serviceAccountName": "webapp",
            "config": {"registryNamespace": registry.name},
        }),
    )
    .await;
    let running = wait_for_wasm_operator(
        &client,
        ns,
        "webapp-go",
        "the Go operator to run",
        |object| phase(object) == "Idle",
    )
    .await;
    assert_eq!(
        running.status.unwrap().module_digest.as_deref(),
        Some(sha256(&module).as_str())
    );
    create_webapp(&client, ns, "shop").await;
    wait_for_registry_entry(&client, &registry.name, ns, "shop").await;
    host.stop().await;
}
