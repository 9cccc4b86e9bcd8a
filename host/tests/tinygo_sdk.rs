//! The Go SDK must work when operators are built with TinyGo, not only with the standard
//! toolchain: `sdk-go/examples/minimal`, built with `tinygo build -target=wasip1
//! -buildmode=c-shared`, runs init and reconciles (the found path, which encodes JSON and writes,
//! and the not-found path, which classifies a host error) in the real runtime.
//!
//! TinyGo implements only part of `reflect`; SDK code that reaches an unimplemented corner (such
//! as `errors.As`, whose `Implements` check TinyGo cannot run in a program that also uses
//! `encoding/json`) builds fine and traps at run time. This test is what notices.

mod runtime_support;

use std::sync::Arc;

use serde_json::json;
use wasm_operator::runtime::LoadedModule;
use wasm_operator_abi::{HostError, HostResponse, KubeRequest, KubeStatus, ReconcileResult};

use runtime_support::*;

const TINYGO_ADVICE: &str = "the Go SDK built with TinyGo failed; TinyGo cannot run parts of \
     reflect (errors.As, Type.Implements, Type.AssignableTo with interfaces): see docs/sdk-go.md, \
     \"Building with TinyGo\"";

async fn load_minimal_built_with_tinygo(test: &TestRuntime) -> LoadedModule {
    let path = wasm_operator_test_support::tinygo_guest_module("sdk-go/examples/minimal");
    test.runtime
        .load(&std::fs::read(&path).unwrap())
        .await
        .unwrap_or_else(|error| panic!("{} does not load: {error:#}", path.display()))
}

/// A fresh instance of `module` whose Kubernetes requests are all answered `kube_answer`: init,
/// then one reconcile of ConfigMap `default/settings`. Returns its result and the fake services.
async fn init_and_reconcile(
    module: &LoadedModule,
    kube_answer: HostResponse,
) -> (ReconcileResult, Arc<FakeServices>) {
    let services = FakeServices::answering(
        Answer::Respond(kube_answer),
        Answer::Respond(HostResponse::Ok(json!({}))),
    );
    let mut instance = module
        .instantiate("minimal", limits(DEFAULT_DEADLINE), services.clone())
        .await
        .expect("instantiates");
    let registration = instance
        .init(&init_input("minimal", json!({})))
        .await
        .unwrap_or_else(|error| panic!("init: {error:#}\n{TINYGO_ADVICE}"));
    assert_eq!(
        (
            registration.for_.api_version.as_str(),
            registration.for_.kind.as_str()
        ),
        ("v1", "ConfigMap")
    );
    let result = instance
        .reconcile(&reconcile_request("settings"))
        .await
        .unwrap_or_else(|error| panic!("reconcile: {error:#}\n{TINYGO_ADVICE}"));
    (result, services)
}

#[tokio::test]
async fn the_go_sdk_built_with_tinygo_inits_and_reconciles() {
    let test = test_runtime();
    let module = load_minimal_built_with_tinygo(&test).await;

    // Found: the mirror is applied and the periodic re-check requested.
    let labelled = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "default", "uid": "0d1c6a2e-5b7f-4f0a-9a55-9c1d2e3f4a5b",
                     "labels": {"wasm-operator.dev/mirror": "true"}},
        "data": {"colour": "blue"}
    });
    let (result, services) = init_and_reconcile(&module, HostResponse::Ok(labelled)).await;
    assert_eq!(
        result,
        ReconcileResult {
            requeue_after_ms: Some(600_000),
            requeue: false
        }
    );
    let applied = services
        .kube_requests
        .lock()
        .unwrap()
        .iter()
        .find_map(|request| match request {
            KubeRequest::Patch { name, body, .. } if name == "settings-mirror" => {
                Some(body.clone())
            }
            _ => None,
        });
    let applied = applied.expect("the mirror was applied");
    assert_eq!(applied["data"], json!({"colour": "blue"}));
    assert_eq!(
        applied["metadata"]["ownerReferences"][0]["name"],
        "settings"
    );

    // Not found: the SDK recognises the host's error (client.IgnoreNotFound) and succeeds.
    let not_found: KubeStatus =
        serde_json::from_value(json!({"code": 404, "reason": "NotFound", "message": "gone"}))
            .unwrap();
    let (result, services) = init_and_reconcile(
        &module,
        HostResponse::Error(HostError::api_status(not_found)),
    )
    .await;
    assert_eq!(result, ReconcileResult::default());
    assert_eq!(
        services.kube_requests.lock().unwrap().len(),
        1,
        "only the read"
    );
}
