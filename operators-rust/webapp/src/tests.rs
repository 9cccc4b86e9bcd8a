//! The webapp operator against the fake host: the exact host calls docs/examples.md lists, in
//! order, for a first reconcile, a steady state, a readiness flip and a deletion.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};
use wasm_operator_sdk::abi::KubeRequest;
use wasm_operator_sdk::testing::{self, FakeHost};

use crate::{wasm_operator_init, wasm_operator_reconcile};

const NOW: &str = "2026-01-02T03:04:05Z";
const NOW_MICRO: &str = "2026-01-02T03:04:05.000000Z";

/// A fake host at a fixed time, with the operator initialised with `config`.
fn host(config: Value) -> FakeHost {
    let host = FakeHost::install();
    host.set_clock(UNIX_EPOCH + Duration::from_secs(1_767_323_045));
    host.init(
        wasm_operator_init,
        json!({"abiVersion": 1, "operatorName": "web-instance", "config": config}),
    )
    .registration();
    host
}

/// A WebApp as the API server sends it: defaults filled in, server-set metadata, managed fields.
fn webapp(finalizers: Value, status: Option<Value>) -> Value {
    let mut app = json!({
        "apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "WebApp",
        "metadata": {"name": "web", "namespace": "ns", "uid": "uid-1", "generation": 2, "resourceVersion": "41",
                     "creationTimestamp": "2026-01-01T00:00:00Z",
                     "annotations": {"note": "kept"},
                     "finalizers": finalizers,
                     "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "demo.wasm-operator.dev/v1alpha1",
                                        "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                                        "fieldsV1": {"f:spec": {"f:image": {}}}}]},
        "spec": {"image": "nginx:1.27", "replicas": 2, "port": 8080}
    });
    if app["metadata"]["finalizers"].is_null() {
        app["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("finalizers");
    }
    if let Some(status) = status {
        app["status"] = status;
    }
    app
}

fn request(object: Value) -> Value {
    json!({"apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "WebApp", "namespace": "ns", "name": "web",
           "object": object, "attempt": 0})
}

/// Answers writes with their body, the Deployment apply with `ready` ready replicas.
fn answer(ready: Option<i64>) -> impl FnMut(&KubeRequest) -> wasm_operator_sdk::abi::HostResponse {
    move |request| match request {
        KubeRequest::Patch { kind, body, .. } if kind == "Deployment" => {
            let mut deployment = body.clone();
            if let Some(ready) = ready {
                deployment["status"] = json!({"replicas": 2, "readyReplicas": ready});
            }
            testing::ok(deployment)
        }
        // A status patch answers with the whole object, as the API server does.
        KubeRequest::Patch { kind, body, .. } if kind == "WebApp" => {
            let mut app = webapp(json!(["demo.wasm-operator.dev/registry"]), None);
            app["status"] = body["status"].clone();
            testing::ok(app)
        }
        _ => testing::echo(request),
    }
}

fn owner_reference() -> Value {
    json!([{"apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "WebApp", "name": "web", "uid": "uid-1",
            "controller": true, "blockOwnerDeletion": true}])
}

fn ready_condition(status: &str, reason: &str, message: &str, time: &str) -> Value {
    json!({"type": "Ready", "status": status, "reason": reason, "message": message, "observedGeneration": 2,
           "lastTransitionTime": time})
}

#[test]
fn registers_for_webapps_owning_deployments_and_services() {
    let host = FakeHost::install();
    let outcome = host.init(
        wasm_operator_init,
        json!({"abiVersion": 1, "operatorName": "w", "config": {}}),
    );
    assert_eq!(
        outcome.result.unwrap(),
        json!({"for": {"apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "WebApp", "predicates": ["generationChanged"]},
               "owns": [{"apiVersion": "apps/v1", "kind": "Deployment", "predicates": []},
                        {"apiVersion": "v1", "kind": "Service", "predicates": []}],
               "watches": []})
    );
}

#[test]
fn a_new_webapp_gets_finalizer_deployment_service_registry_entry_status_and_event() {
    let host = host(json!({"registryNamespace": "registry"}));
    host.on_kube(answer(None));
    let result = host
        .reconcile(wasm_operator_reconcile, request(webapp(json!(null), None)))
        .reconcile_result();
    assert_eq!(result, Default::default());

    let labels = json!({"app.kubernetes.io/name": "webapp", "app.kubernetes.io/instance": "web"});
    let metadata = json!({"name": "web", "namespace": "ns", "labels": labels, "ownerReferences": owner_reference()});
    let with_finalizer = webapp(json!(["demo.wasm-operator.dev/registry"]), None);
    let expected = [
        json!({"verb": "update", "apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "WebApp", "namespace": "ns", "name": "web",
               "body": with_finalizer}),
        json!({"verb": "patch", "apiVersion": "apps/v1", "kind": "Deployment", "namespace": "ns", "name": "web",
               "patchType": "apply", "fieldManager": "webapp", "force": true,
               "body": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata,
                        "spec": {"replicas": 2,
                                 "selector": {"matchLabels": {"app.kubernetes.io/instance": "web"}},
                                 "template": {"metadata": {"labels": labels},
                                              "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                                                       "ports": [{"name": "http", "containerPort": 8080}]}]}}}}}),
        json!({"verb": "patch", "apiVersion": "v1", "kind": "Service", "namespace": "ns", "name": "web",
               "patchType": "apply", "fieldManager": "webapp", "force": true,
               "body": {"apiVersion": "v1", "kind": "Service", "metadata": metadata,
                        "spec": {"selector": {"app.kubernetes.io/instance": "web"},
                                 "ports": [{"name": "http", "port": 8080, "targetPort": 8080}]}}}),
        json!({"verb": "patch", "apiVersion": "v1", "kind": "ConfigMap", "namespace": "registry", "name": "webapp-ns-web",
               "patchType": "apply", "fieldManager": "webapp", "force": true,
               "body": {"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "webapp-ns-web", "namespace": "registry", "labels": {"app.kubernetes.io/name": "webapp"}},
                        "data": {"namespace": "ns", "name": "web", "url": "http://web.ns.svc:8080"}}}),
        json!({"verb": "patch", "apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "WebApp", "namespace": "ns", "name": "web",
               "subresource": "status", "patchType": "merge",
               "body": {"status": {"observedGeneration": 2, "readyReplicas": 0,
                                   "conditions": [ready_condition("False", "DeploymentNotReady", "0/2 replicas ready", NOW)]}}}),
        json!({"verb": "create", "apiVersion": "events.k8s.io/v1", "kind": "Event", "namespace": "ns",
               "body": {"apiVersion": "events.k8s.io/v1", "kind": "Event",
                        "metadata": {"generateName": "web-", "namespace": "ns"},
                        "eventTime": NOW_MICRO, "reportingController": "demo.wasm-operator.dev/webapp",
                        "reportingInstance": "webapp", "action": "Reconcile", "reason": "DeploymentNotReady",
                        "note": "0/2 replicas ready", "type": "Normal",
                        "regarding": {"apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "WebApp",
                                      "namespace": "ns", "name": "web", "uid": "uid-1"}}}),
    ];
    let sent = host.raw_kube_requests();
    assert_eq!(sent.len(), expected.len(), "{sent:#?}");
    for (sent, expected) in sent.iter().zip(&expected) {
        assert_eq!(sent, expected);
    }
}

#[test]
fn the_registry_namespace_defaults_to_default() {
    let host = host(json!({}));
    host.on_kube(answer(None));
    host.reconcile(
        wasm_operator_reconcile,
        request(webapp(json!(["demo.wasm-operator.dev/registry"]), None)),
    )
    .reconcile_result();
    let entry = host
        .kube_requests()
        .into_iter()
        .find(|request| request.kind() == "ConfigMap")
        .unwrap();
    assert_eq!(entry.namespace(), Some("default"));
}

#[test]
fn an_unchanged_status_is_not_written_again_and_no_event_is_recorded() {
    let host = host(json!({}));
    host.on_kube(answer(Some(0)));
    let status = json!({"observedGeneration": 2, "readyReplicas": 0,
                        "conditions": [ready_condition("False", "DeploymentNotReady", "0/2 replicas ready", "2025-12-31T00:00:00Z")]});
    host.reconcile(
        wasm_operator_reconcile,
        request(webapp(
            json!(["demo.wasm-operator.dev/registry"]),
            Some(status),
        )),
    )
    .reconcile_result();
    let verbs: Vec<_> = host
        .kube_requests()
        .iter()
        .map(|request| (request.verb(), request.kind().to_owned()))
        .collect();
    assert_eq!(
        verbs,
        [
            ("patch", "Deployment".into()),
            ("patch", "Service".into()),
            ("patch", "ConfigMap".into())
        ]
    );
}

#[test]
fn readiness_flips_the_condition_with_a_new_transition_time_and_an_event() {
    let host = host(json!({}));
    host.on_kube(answer(Some(2)));
    let status = json!({"observedGeneration": 2, "readyReplicas": 1,
                        "conditions": [ready_condition("False", "DeploymentNotReady", "1/2 replicas ready", "2025-12-31T00:00:00Z")]});
    host.reconcile(
        wasm_operator_reconcile,
        request(webapp(
            json!(["demo.wasm-operator.dev/registry"]),
            Some(status),
        )),
    )
    .reconcile_result();
    let sent = host.raw_kube_requests();
    assert_eq!(
        sent[3]["body"],
        json!({"status": {"observedGeneration": 2, "readyReplicas": 2,
                          "conditions": [ready_condition("True", "DeploymentReady", "2/2 replicas ready", NOW)]}})
    );
    assert_eq!(sent[4]["body"]["reason"], "DeploymentReady");
    assert_eq!(sent.len(), 5);
}

#[test]
fn a_message_change_keeps_the_transition_time_and_records_no_event() {
    let host = host(json!({}));
    host.on_kube(answer(Some(1)));
    let status = json!({"observedGeneration": 2, "readyReplicas": 0,
                        "conditions": [ready_condition("False", "DeploymentNotReady", "0/2 replicas ready", "2025-12-31T00:00:00Z")]});
    host.reconcile(
        wasm_operator_reconcile,
        request(webapp(
            json!(["demo.wasm-operator.dev/registry"]),
            Some(status),
        )),
    )
    .reconcile_result();
    let sent = host.raw_kube_requests();
    assert_eq!(sent.len(), 4, "status written, no event: {sent:#?}");
    assert_eq!(
        sent[3]["body"]["status"]["conditions"],
        json!([ready_condition(
            "False",
            "DeploymentNotReady",
            "1/2 replicas ready",
            "2025-12-31T00:00:00Z"
        )])
    );
}

#[test]
fn deletion_removes_the_registry_entry_then_only_its_own_finalizer() {
    let host = host(json!({"registryNamespace": "registry"}));
    host.on_kube(|request| match request {
        KubeRequest::Delete { .. } => testing::not_found("configmaps", "webapp-ns-web"),
        _ => testing::echo(request),
    });
    let mut app = webapp(
        json!(["a/first", "demo.wasm-operator.dev/registry", "z/last"]),
        None,
    );
    app["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
    host.reconcile(wasm_operator_reconcile, request(app.clone()))
        .reconcile_result();

    let mut expected_body = app;
    expected_body["metadata"]["finalizers"] = json!(["a/first", "z/last"]);
    assert_eq!(
        host.raw_kube_requests(),
        [
            json!({"verb": "delete", "apiVersion": "v1", "kind": "ConfigMap", "namespace": "registry", "name": "webapp-ns-web"}),
            json!({"verb": "update", "apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "WebApp", "namespace": "ns",
                   "name": "web", "body": expected_body}),
        ]
    );
}

#[test]
fn deletion_fails_and_keeps_the_finalizer_when_the_entry_cannot_be_deleted() {
    let host = host(json!({}));
    host.on_kube(|_| testing::api_error(403, "Forbidden", "configmaps is forbidden"));
    let mut app = webapp(json!(["demo.wasm-operator.dev/registry"]), None);
    app["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
    let error = host
        .reconcile(wasm_operator_reconcile, request(app))
        .guest_error();
    assert_eq!(
        error.message,
        "deleting the registry entry: configmaps is forbidden"
    );
    assert_eq!(host.kube_requests().len(), 1);
}

#[test]
fn deletion_without_the_finalizer_and_a_gone_object_make_no_calls() {
    let host = host(json!({}));
    let mut app = webapp(json!(["someone/else"]), None);
    app["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
    host.reconcile(wasm_operator_reconcile, request(app))
        .reconcile_result();
    host.reconcile(wasm_operator_reconcile, request(Value::Null))
        .reconcile_result();
    assert!(host.kube_requests().is_empty());
}

#[test]
fn a_refused_event_is_logged_and_the_reconcile_still_succeeds() {
    let host = host(json!({}));
    let mut answer_writes = answer(None);
    host.on_kube(move |request| match request {
        KubeRequest::Create { kind, .. } if kind == "Event" => {
            testing::api_error(403, "Forbidden", "events.events.k8s.io is forbidden")
        }
        _ => answer_writes(request),
    });
    let app = webapp(json!(["demo.wasm-operator.dev/registry"]), None);
    host.reconcile(wasm_operator_reconcile, request(app))
        .reconcile_result();
    let logs = host.logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].message, "could not record event");
    assert_eq!(
        serde_json::to_value(&logs[0].fields).unwrap(),
        json!({"reason": "DeploymentNotReady", "regarding": "web", "error": "events.events.k8s.io is forbidden"})
    );
}
