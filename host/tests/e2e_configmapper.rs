//! End to end against the real control plane: an operator that keeps one ConfigMap per Widget
//! follows creates, updates and deletes; an event on an owned object reconciles its owner; and
//! the generationChanged predicate keeps the operator's own status writes from waking it.
mod e2e_support;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use wasm_operator::operator::OperatorState;
use wasm_operator_test_support::{test_namespace, wait_for};

use e2e_support::{
    create_widget, guest, spec, wait_for_config_map, wait_for_config_map_gone, widgets, TestHost,
    PROMPTLY,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_follows_create_update_and_delete_of_widgets() {
    let host = TestHost::start().await;
    let namespace = test_namespace(&host.client, "cm-follow").await;
    let ns = namespace.name.as_str();
    host.manager
        .load(spec(
            "mapper",
            guest("configmapper"),
            json!({"namespace": ns}),
        ))
        .await
        .expect("loading the configmapper operator");
    assert_eq!(host.manager.state("mapper"), Some(OperatorState::Idle));

    create_widget(&host.client, ns, "shop", json!({"data": {"color": "blue"}})).await;
    wait_for_config_map(
        &host.client,
        ns,
        "shop-config",
        "the ConfigMap of a new Widget",
        |data| data.get("color").and_then(|v| v.as_str()) == Some("blue"),
    )
    .await;

    let patch = json!({"spec": {"data": {"color": "green", "size": "L"}}});
    widgets(&host.client, ns)
        .patch("shop", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let data = wait_for_config_map(
        &host.client,
        ns,
        "shop-config",
        "the ConfigMap to follow a spec update",
        |data| data.get("color").and_then(|v| v.as_str()) == Some("green"),
    )
    .await;
    assert_eq!(data["size"], "L");
    assert_eq!(data["generation"], "2");

    widgets(&host.client, ns)
        .delete("shop", &DeleteParams::default())
        .await
        .unwrap();
    wait_for_config_map_gone(
        &host.client,
        ns,
        "shop-config",
        "the ConfigMap to go with its Widget",
    )
    .await;
    wait_for(
        "a reconcile of the deleted Widget without its object",
        PROMPTLY,
        || async {
            host.reconciles
                .of_key("mapper", &format!("{ns}/shop"))
                .iter()
                .any(|record| !record.had_object())
                .then_some(())
        },
    )
    .await;
    host.manager.unload("mapper").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_an_owned_configmap_reconciles_its_widget() {
    let host = TestHost::start().await;
    let namespace = test_namespace(&host.client, "cm-owned").await;
    let ns = namespace.name.as_str();
    host.manager
        .load(spec(
            "mapper",
            guest("configmapper"),
            json!({"namespace": ns}),
        ))
        .await
        .unwrap();
    create_widget(
        &host.client,
        ns,
        "owned",
        json!({"data": {"mode": "strict"}}),
    )
    .await;
    wait_for_config_map(
        &host.client,
        ns,
        "owned-config",
        "the Widget's ConfigMap",
        |data| data.contains_key("mode"),
    )
    .await;
    // Let the operator settle first: one reconcile for the create and one for the Added event
    // of the ConfigMap it created, so a pending reconcile cannot restore the data by chance.
    let key = format!("{ns}/owned");
    let reconciles_before = wait_for("the Widget's first two reconciles", PROMPTLY, || async {
        let count = host.reconciles.of_key("mapper", &key).len();
        (count >= 2).then_some(count)
    })
    .await;

    // Someone else changes the owned ConfigMap: only the Owns watch can notice.
    let config_maps: Api<ConfigMap> = Api::namespaced(host.client.clone(), ns);
    let tamper = json!({"data": {"mode": "tampered"}});
    config_maps
        .patch(
            "owned-config",
            &PatchParams::default(),
            &Patch::Merge(&tamper),
        )
        .await
        .unwrap();

    wait_for_config_map(
        &host.client,
        ns,
        "owned-config",
        "the owner to restore its ConfigMap",
        |data| data.get("mode").and_then(|v| v.as_str()) == Some("strict"),
    )
    .await;
    // The ConfigMap is restored from inside the reconcile, which is recorded once it returns.
    wait_for(
        "the owned ConfigMap's change to have reconciled the Widget",
        PROMPTLY,
        || async {
            (host.reconciles.of_key("mapper", &key).len() > reconciles_before).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_writes_do_not_wake_the_operator_again() {
    let host = TestHost::start().await;
    let namespace = test_namespace(&host.client, "cm-status").await;
    let ns = namespace.name.as_str();
    host.manager
        .load(spec(
            "mapper",
            guest("configmapper"),
            json!({"namespace": ns}),
        ))
        .await
        .unwrap();

    create_widget(&host.client, ns, "quiet", json!({"data": {"a": "1"}})).await;
    let status_written = |generation: i64| {
        let widgets = widgets(&host.client, ns);
        move || {
            let widgets = widgets.clone();
            async move {
                let widget = widgets.get("quiet").await.ok()?;
                (widget
                    .data
                    .pointer("/status/observedGeneration")?
                    .as_i64()?
                    == generation)
                    .then_some(())
            }
        }
    };
    wait_for("the status of generation 1", PROMPTLY, status_written(1)).await;

    // A second Widget is a barrier: one watch delivers Widget events in order and the operator
    // reconciles one key at a time in queue order, so any reconcile the status write of "quiet"
    // caused is recorded before the reconcile of "barrier".
    create_widget(&host.client, ns, "barrier", json!({})).await;
    wait_for("the barrier Widget's reconcile", PROMPTLY, || async {
        (!host
            .reconciles
            .of_key("mapper", &format!("{ns}/barrier"))
            .is_empty())
        .then_some(())
    })
    .await;
    let quiet = host.reconciles.of_key("mapper", &format!("{ns}/quiet"));
    // One reconcile for the create, one for the Added event of the ConfigMap it created (Owns).
    // Each reconcile writes a different status (its count), so without the predicate the
    // operator would keep waking itself.
    assert_eq!(quiet.len(), 2, "reconciles of the Widget: {quiet:#?}");
}
