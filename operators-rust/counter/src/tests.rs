//! The counter operator against the fake host: the status it writes as generations arrive, what
//! deletion forgets, and that a failed write is retried instead of being taken as seen.

use serde_json::{json, Value};
use wasm_operator_sdk::testing::{self, FakeHost};

use crate::{wasm_operator_init, wasm_operator_reconcile};

fn host() -> FakeHost {
    let host = FakeHost::install();
    host.init(
        wasm_operator_init,
        json!({"abiVersion": 1, "operatorName": "counter-7", "config": {}}),
    )
    .registration();
    host.on_kube(testing::echo);
    host
}

fn request(name: &str, generation: Option<i64>) -> Value {
    let object = generation.map(|generation| {
        json!({"apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "Counter",
               "metadata": {"name": name, "namespace": "default", "generation": generation},
               "spec": {"step": generation, "nested": {"anything": [1, 2]}}})
    });
    json!({"apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "Counter", "namespace": "default", "name": name,
           "object": object})
}

fn status_patch(name: &str, generations: Value, total_seen: u64, checksum: &str) -> Value {
    json!({"verb": "patch", "apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "Counter", "namespace": "default",
           "name": name, "subresource": "status", "patchType": "merge",
           "body": {"status": {"observedGenerations": generations, "totalSeen": total_seen, "checksum": checksum}}})
}

#[test]
fn registers_for_counters_on_generation_changes() {
    let host = FakeHost::install();
    let outcome = host.init(
        wasm_operator_init,
        json!({"abiVersion": 1, "operatorName": "c", "config": {}}),
    );
    assert_eq!(
        outcome.result.unwrap(),
        json!({"for": {"apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "Counter", "predicates": ["generationChanged"]},
               "owns": [], "watches": []})
    );
}

#[test]
fn each_new_generation_extends_the_list_count_and_checksum() {
    let host = host();
    host.reconcile(wasm_operator_reconcile, request("a", Some(1)))
        .reconcile_result();
    host.reconcile(wasm_operator_reconcile, request("a", Some(1)))
        .reconcile_result();
    host.reconcile(wasm_operator_reconcile, request("a", Some(2)))
        .reconcile_result();
    assert_eq!(
        host.raw_kube_requests(),
        [
            status_patch("a", json!([1]), 1, "d6bd7b4133c64266"),
            status_patch("a", json!([1, 2]), 2, "01aa10780731a9fa"),
        ]
    );
}

#[test]
fn a_deleted_counter_is_forgotten_but_still_counted() {
    let host = host();
    host.reconcile(wasm_operator_reconcile, request("a", Some(1)))
        .reconcile_result();
    host.reconcile(wasm_operator_reconcile, request("a", None))
        .reconcile_result();
    host.reconcile(wasm_operator_reconcile, request("a", Some(1)))
        .reconcile_result();
    let sent = host.raw_kube_requests();
    assert_eq!(sent.len(), 2, "no call for the deletion: {sent:#?}");
    assert_eq!(sent[1]["body"]["status"]["observedGenerations"], json!([1]));
    assert_eq!(sent[1]["body"]["status"]["totalSeen"], 2);
}

#[test]
fn a_failed_status_write_is_retried_rather_than_taken_as_seen() {
    let host = host();
    host.on_kube(|_| testing::conflict("counters.demo.wasm-operator.dev", "a"));
    host.reconcile(wasm_operator_reconcile, request("a", Some(1)))
        .guest_error();
    host.on_kube(testing::echo);
    host.reconcile(wasm_operator_reconcile, request("a", Some(1)))
        .reconcile_result();
    assert_eq!(
        host.raw_kube_requests()[1],
        status_patch("a", json!([1]), 1, "d6bd7b4133c64266")
    );
}
