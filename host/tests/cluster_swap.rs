//! A WasmOperator's swap policy: idle longer than `spec.swap.afterIdle`, the operator is
//! swapped out (phase Swapped, a SwappedOut Event); work brings it back (a SwappedIn Event).
mod cluster_support;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use serde_json::json;
use wasm_operator::operator::{ManagerConfig, SwapConfig};
use wasm_operator_test_support::{control_plane, guest_module, test_namespace};

use cluster_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_operator_is_swapped_out_and_back_in_with_events() {
    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let namespace = test_namespace(&client, "cluster-swap").await;
    let ns = namespace.name.as_str();
    let modules = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    std::fs::copy(
        guest_module("test-guest-empty"),
        modules.path().join("empty.wasm"),
    )
    .unwrap();
    let manager_config = ManagerConfig {
        swap: SwapConfig {
            state_dir: Some(state.path().to_path_buf()),
            ..SwapConfig::default()
        },
        ..ManagerConfig::default()
    };
    let host =
        InProcessHost::start_with(ns, None, Some(modules.path().to_path_buf()), manager_config)
            .await;
    create_wasm_operator(
        &client,
        ns,
        "sleepy",
        json!({"module": {"path": "empty.wasm"}, "swap": {"afterIdle": "1s"}}),
    )
    .await;

    wait_for_wasm_operator(&client, ns, "sleepy", "phase Swapped", |object| {
        phase(object) == "Swapped"
    })
    .await;
    wait_for_event(&client, ns, "sleepy", "SwappedOut").await;

    // The guest watches ConfigMaps: a new one is work, which restores it.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some("wake-up".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    config_maps
        .create(&PostParams::default(), &config_map)
        .await
        .unwrap();
    wait_for_event(&client, ns, "sleepy", "SwappedIn").await;
    host.stop().await;
}
