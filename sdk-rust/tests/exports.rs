//! The exports `operator!` defines, called the way the host calls them: init answers with the
//! registration and keeps the state; reconcile decodes the object into the operator's type,
//! sees the state init made (and its own earlier changes), and reports errors as GuestErrors.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::CustomResource;
use serde::{Deserialize, Serialize};
use serde_json::json;
use wasm_operator_sdk::abi::{Mapping, Predicate, ReconcileResult};
use wasm_operator_sdk::prelude::*;
use wasm_operator_sdk::testing::FakeHost;

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
    assert_eq!(
        host.reconcile(wasm_operator_reconcile, gone)
            .reconcile_result(),
        ReconcileResult::default()
    );
    assert!(host.kube_requests().is_empty());
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
