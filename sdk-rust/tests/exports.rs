//! The exports `operator!` defines, called the way the host calls them: init answers with the
//! registration and keeps the state; reconcile decodes the object into the operator's type,
//! sees the state init made (and its own earlier changes), and reports errors as GuestErrors.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use kube::CustomResource;
use serde::{Deserialize, Serialize};
use serde_json::json;
use wasm_operator_sdk::abi::{Mapping, Predicate, ReconcileResult};
use wasm_operator_sdk::prelude::*;
use wasm_operator_sdk::testing::{self, FakeHost};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "test.wasm-operator.dev",
    version = "v1",
    kind = "Widget",
    namespaced,
    schema = "disabled"
)]
pub struct WidgetSpec {
    mode: String,
}

#[derive(Deserialize)]
struct Config {
    namespace: String,
}

/// What init hands to every reconcile.
struct Seen {
    namespace: String,
    names: Vec<String>,
}

fn init(init: &InitContext) -> Result<(Controller, Seen)> {
    let config: Config = init.config()?;
    let controller = Controller::new(
        Api::<Widget>::namespaced(&config.namespace),
        WatchConfig::default().predicates([Predicate::GenerationChanged]),
    )
    .owns(Api::<Deployment>::all(), WatchConfig::default())
    .watches(
        Api::<ConfigMap>::all(),
        WatchConfig::default().labels("app=x"),
        Mapping::Labels {
            name_label: "widget".into(),
            namespace_label: None,
        },
    );
    Ok((
        controller,
        Seen {
            namespace: config.namespace,
            names: Vec::new(),
        },
    ))
}

fn reconcile(request: Request<Widget>, seen: &mut Seen) -> Result<Action> {
    let key = request.key();
    if request.object.is_none() && !request.is_deleted() {
        // Still there, only out of the selector (or the host could not tell): say so in an
        // Event, as an operator holding a finalizer would rather than cleaning up.
        let reason = request.absent_reason.map_or("none", AbsentReason::as_str);
        let regarding = ObjectReference {
            api_version: Some(request.api_version.clone()),
            kind: Some(request.kind.clone()),
            namespace: request.namespace.clone(),
            name: Some(request.name.clone()),
            ..ObjectReference::default()
        };
        let event = Event {
            type_: EventType::Normal,
            reason: "NotDeleted".into(),
            note: Some(reason.into()),
            action: "Reconcile".into(),
            secondary: None,
        };
        Recorder::new(Reporter::new("test.wasm-operator.dev/widget"))
            .publish(&event, &regarding)?;
    }
    let Some(widget) = request.object else {
        return Ok(Action::await_change());
    };
    seen.names.push(widget.name_any());
    match widget.spec.mode.as_str() {
        "fail" => Err(Error::msg("told to fail").context(format!("reconciling {key}"))),
        "retry-later" => Err(Error::msg("not yet").requeue_after(Duration::from_secs(5))),
        "count" => Ok(Action::requeue_after(Duration::from_millis(
            seen.names.len() as u64,
        ))),
        "namespace" => Err(Error::msg(format!("configured for {}", seen.namespace))),
        other => Err(Error::msg(format!("unknown mode {other}"))),
    }
}

wasm_operator_sdk::operator!(init, reconcile);

fn request(name: &str, mode: &str) -> serde_json::Value {
    json!({"apiVersion": "test.wasm-operator.dev/v1", "kind": "Widget", "namespace": "ns", "name": name,
           "object": {"apiVersion": "test.wasm-operator.dev/v1", "kind": "Widget",
                      "metadata": {"name": name, "namespace": "ns", "generation": 1},
                      "spec": {"mode": mode}},
           "attempt": 0})
}

fn initialised() -> FakeHost {
    let host = FakeHost::install();
    host.init(
        wasm_operator_init,
        json!({"abiVersion": 1, "operatorName": "w", "config": {"namespace": "ns"}}),
    )
    .registration();
    host
}

#[test]
fn init_answers_with_the_registration_built_by_the_controller() {
    let host = FakeHost::install();
    let outcome = host.init(
        wasm_operator_init,
        json!({"abiVersion": 1, "operatorName": "w", "config": {"namespace": "ns"}}),
    );
    assert_eq!(outcome.code, 0);
    assert_eq!(
        outcome.result.unwrap(),
        json!({"for": {"apiVersion": "test.wasm-operator.dev/v1", "kind": "Widget", "namespace": "ns", "predicates": ["generationChanged"]},
               "owns": [{"apiVersion": "apps/v1", "kind": "Deployment", "predicates": []}],
               "watches": [{"apiVersion": "v1", "kind": "ConfigMap", "labelSelector": "app=x", "predicates": [],
                            "mapping": {"type": "labels", "nameLabel": "widget"}}]})
    );
}

#[test]
fn init_fails_with_a_guest_error_when_the_config_does_not_fit() {
    let host = FakeHost::install();
    let error = host
        .init(
            wasm_operator_init,
            json!({"abiVersion": 1, "operatorName": "w", "config": {}}),
        )
        .guest_error();
    assert!(
        error
            .message
            .starts_with("decoding the operator's configuration: missing field `namespace`"),
        "{}",
        error.message
    );
}

#[test]
fn reconcile_sees_the_state_init_made_and_keeps_its_changes() {
    let host = initialised();
    for (index, name) in ["a", "b", "c"].into_iter().enumerate() {
        let result = host
            .reconcile(wasm_operator_reconcile, request(name, "count"))
            .reconcile_result();
        assert_eq!(
            result,
            ReconcileResult {
                requeue_after_ms: Some(index as u64 + 1),
                requeue: false
            }
        );
    }
    let error = host
        .reconcile(wasm_operator_reconcile, request("d", "namespace"))
        .guest_error();
    assert_eq!(error.message, "configured for ns");
}

#[test]
fn errors_become_guest_errors_with_context_and_retry_delay() {
    let host = initialised();
    let failed = host
        .reconcile(wasm_operator_reconcile, request("web", "fail"))
        .guest_error();
    assert_eq!(failed.message, "reconciling ns/web: told to fail");
    assert_eq!(failed.requeue_after_ms, None);
    let later = host
        .reconcile(wasm_operator_reconcile, request("web", "retry-later"))
        .guest_error();
    assert_eq!(later.requeue_after_ms, Some(5000));
}

#[test]
fn a_deleted_object_arrives_as_none() {
    let host = initialised();
    let mut gone = request("web", "fail");
    gone["object"] = serde_json::Value::Null;
    gone["absentReason"] = json!("deleted");
    assert_eq!(
        host.reconcile(wasm_operator_reconcile, gone)
            .reconcile_result(),
        ReconcileResult::default()
    );
    assert!(host.kube_requests().is_empty());
}

#[test]
fn a_missing_object_says_whether_it_was_deleted_or_left_the_selector() {
    let host = initialised();
    host.on_kube(testing::echo);
    for (reason, deleted) in [
        ("deleted", true),
        ("notSelected", false),
        ("unknown", false),
    ] {
        host.clear_recorded();
        let mut gone = request("web", "fail");
        gone["object"] = serde_json::Value::Null;
        gone["absentReason"] = json!(reason);
        host.reconcile(wasm_operator_reconcile, gone)
            .reconcile_result();
        let requests = host.raw_kube_requests();
        if deleted {
            assert!(requests.is_empty(), "{requests:?}");
            continue;
        }
        assert_eq!(requests.len(), 1, "{requests:?}");
        let body = &requests[0]["body"];
        assert_eq!(body["note"], json!(reason));
        assert_eq!(
            body["reportingInstance"],
            json!("w"),
            "a Reporter without an instance reports as the operator named at init"
        );
    }
}

#[test]
fn an_object_that_does_not_fit_the_type_fails_naming_it() {
    let host = initialised();
    let mut bad = request("web", "count");
    bad["object"]["spec"] = json!({"mode": 3});
    let error = host.reconcile(wasm_operator_reconcile, bad).guest_error();
    assert!(
        error.message.starts_with("decoding Widget ns/web: "),
        "{}",
        error.message
    );
}

#[test]
fn reconcile_before_init_is_an_error_not_a_crash() {
    let host = FakeHost::install();
    let error = host
        .reconcile(wasm_operator_reconcile, request("web", "count"))
        .guest_error();
    assert_eq!(error.message, "reconcile was called before init");
}
