//! The ring operator against the fake host: what it sends for a missing, an older and a newer
//! copy in the next namespace, and how init refuses an incomplete configuration.

use serde_json::{json, Value};
use wasm_operator_sdk::abi::KubeRequest;
use wasm_operator_sdk::testing::{self, FakeHost};

use crate::{wasm_operator_init, wasm_operator_reconcile};

fn host() -> FakeHost {
    let host = FakeHost::install();
    host.init(wasm_operator_init, json!({"abiVersion": 1, "operatorName": "ring-0",
                                         "config": {"inNamespace": "ring-0", "outNamespace": "ring-1"}}))
        .registration();
    host
}

fn resource(namespace: &str, nonce: i64) -> Value {
    json!({"apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "TestResource",
           "metadata": {"name": "token", "namespace": namespace, "uid": "u", "resourceVersion": "5"},
           "spec": {"nonce": nonce}})
}

fn request(nonce: i64) -> Value {
    json!({"apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "TestResource", "namespace": "ring-0",
           "name": "token", "object": resource("ring-0", nonce), "attempt": 0})
}

fn get() -> Value {
    json!({"verb": "get", "apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "TestResource",
           "namespace": "ring-1", "name": "token"})
}

/// Answers the get with a copy holding `nonce` (`None`: no copy yet).
fn next_namespace_holds(host: &FakeHost, nonce: Option<i64>) {
    host.on_kube(move |request| match (request, nonce) {
        (KubeRequest::Get { .. }, Some(nonce)) => testing::ok(resource("ring-1", nonce)),
        (KubeRequest::Get { name, .. }, None) => {
            testing::not_found("testresources.demo.wasm-operator.dev", name)
        }
        _ => testing::echo(request),
    });
}

#[test]
fn registers_for_test_resources_in_its_in_namespace() {
    let host = FakeHost::install();
    let outcome = host.init(wasm_operator_init, json!({"abiVersion": 1, "operatorName": "r",
                                                       "config": {"inNamespace": "a", "outNamespace": "b"}}));
    assert_eq!(
        outcome.result.unwrap(),
        json!({"for": {"apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "TestResource", "namespace": "a", "predicates": []},
               "owns": [], "watches": []})
    );
}

#[test]
fn init_names_every_missing_key() {
    let host = FakeHost::install();
    for (config, message) in [
        (
            json!({"outNamespace": "b"}),
            r#"config key "inNamespace" is required"#,
        ),
        (
            json!({"inNamespace": "a", "outNamespace": ""}),
            r#"config key "outNamespace" is required"#,
        ),
        (
            json!({}),
            r#"config keys "inNamespace" and "outNamespace" are required"#,
        ),
    ] {
        let input = json!({"abiVersion": 1, "operatorName": "r", "config": config});
        assert_eq!(
            host.init(wasm_operator_init, input).guest_error().message,
            message
        );
    }
}

#[test]
fn a_missing_copy_is_created_with_the_nonce() {
    let host = host();
    next_namespace_holds(&host, None);
    host.reconcile(wasm_operator_reconcile, request(7))
        .reconcile_result();
    assert_eq!(
        host.raw_kube_requests(),
        [
            get(),
            json!({"verb": "create", "apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "TestResource", "namespace": "ring-1",
                   "body": {"apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "TestResource",
                            "metadata": {"name": "token", "namespace": "ring-1"}, "spec": {"nonce": 7}}}),
        ]
    );
}

#[test]
fn an_older_copy_gets_the_new_nonce() {
    let host = host();
    next_namespace_holds(&host, Some(3));
    host.reconcile(wasm_operator_reconcile, request(7))
        .reconcile_result();
    assert_eq!(
        host.raw_kube_requests(),
        [
            get(),
            json!({"verb": "patch", "apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "TestResource", "namespace": "ring-1",
                   "name": "token", "patchType": "merge", "body": {"spec": {"nonce": 7}}}),
        ]
    );
}

#[test]
fn an_equal_or_newer_copy_is_left_alone_and_a_gone_object_needs_nothing() {
    let host = host();
    next_namespace_holds(&host, Some(7));
    host.reconcile(wasm_operator_reconcile, request(7))
        .reconcile_result();
    next_namespace_holds(&host, Some(9));
    host.reconcile(wasm_operator_reconcile, request(7))
        .reconcile_result();
    let mut gone = request(7);
    gone["object"] = Value::Null;
    host.reconcile(wasm_operator_reconcile, gone)
        .reconcile_result();
    assert_eq!(host.raw_kube_requests(), [get(), get()]);
}
