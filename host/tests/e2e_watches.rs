//! The shared watch manager and the cache against the real API server: one watch per key,
//! fan-out to every subscriber, replay for late subscribers, previous versions on updates, the
//! last unsubscribe closing the watch, and cached reads that answer like the API server.
mod e2e_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;
use wasm_operator::kube::cache;
use wasm_operator::kube::discovery::Discovery;
use wasm_operator::kube::requests;
use wasm_operator::kube::watch_scope::WatchScope;
use wasm_operator::kube::watches::{ChangeKind, EventHandler, WatchGauges, WatchKey, WatchManager};
use wasm_operator_abi::{HostResponse, KubeRequest};
use wasm_operator_test_support::{control_plane, test_namespace, wait_for};

type Seen = Arc<Mutex<Vec<(ChangeKind, String, Option<String>)>>>;

/// Records (change, name, previous data.v) for every event.
fn recorder() -> (Seen, EventHandler) {
    let seen: Seen = Arc::default();
    let handler: EventHandler = Arc::new({
        let seen = seen.clone();
        move |event| {
            let previous = event.previous.as_ref().and_then(|old| {
                old.data
                    .pointer("/data/v")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            });
            seen.lock()
                .unwrap()
                .push((event.change, event.object.name_any(), previous));
        }
    });
    (seen, handler)
}

fn config_map_key(namespace: &str) -> WatchKey {
    WatchKey {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(namespace.into()),
        label_selector: None,
    }
}

async fn create(api: &Api<ConfigMap>, name: &str, value: &str, labels: serde_json::Value) {
    let config_map: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"v": value}}),
    )
    .unwrap();
    api.create(&PostParams::default(), &config_map)
        .await
        .unwrap();
}

const SOON: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_share_one_watch_until_the_last_one_leaves() {
    let client = control_plane().client().await;
    let namespace = test_namespace(&client, "watch-share").await;
    let gauges = WatchGauges::default();
    let manager = WatchManager::new(
        client.clone(),
        Discovery::new(client.clone()),
        WatchScope::default(),
        Some(gauges.clone()),
    );
    let (first_seen, first) = recorder();
    let (second_seen, second) = recorder();
    let first = manager
        .subscribe(config_map_key(&namespace.name), first)
        .await
        .unwrap();
    let second = manager
        .subscribe(config_map_key(&namespace.name), second)
        .await
        .unwrap();
    assert_eq!(manager.open_watches(), 1);
    assert_eq!((gauges.open.get(), gauges.subscriptions.get()), (1, 2));

    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace.name);
    create(&api, "shared", "1", json!({})).await;
    for seen in [&first_seen, &second_seen] {
        wait_for("both subscribers to see the create", SOON, || async {
            seen.lock()
                .unwrap()
                .iter()
                .any(|(change, name, _)| *change == ChangeKind::Added && name == "shared")
                .then_some(())
        })
        .await;
    }

    // An update carries the version the cache held before it.
    api.patch(
        "shared",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .unwrap();
    wait_for("the update with its previous version", SOON, || async {
        first_seen
            .lock()
            .unwrap()
            .iter()
            .any(|(change, name, previous)| {
                *change == ChangeKind::Modified
                    && name == "shared"
                    && previous.as_deref() == Some("1")
            })
            .then_some(())
    })
    .await;

    // A late subscriber is handed what the watch already has.
    let (late_seen, late) = recorder();
    let late = manager
        .subscribe(config_map_key(&namespace.name), late)
        .await
        .unwrap();
    assert!(late_seen
        .lock()
        .unwrap()
        .iter()
        .any(|(change, name, _)| *change == ChangeKind::Added && name == "shared"));
    assert_eq!(manager.open_watches(), 1);

    api.delete("shared", &Default::default()).await.unwrap();
    wait_for("the delete to reach the late subscriber", SOON, || async {
        late_seen
            .lock()
            .unwrap()
            .iter()
            .any(|(change, name, _)| *change == ChangeKind::Deleted && name == "shared")
            .then_some(())
    })
    .await;

    drop(first);
    drop(late);
    assert_eq!(manager.open_watches(), 1, "still one subscriber");
    drop(second);
    assert_eq!(
        manager.open_watches(),
        0,
        "the last unsubscribe closes the watch"
    );
    assert_eq!((gauges.open.get(), gauges.subscriptions.get()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_selectors_get_different_watches() {
    let client = control_plane().client().await;
    let namespace = test_namespace(&client, "watch-keys").await;
    let manager = WatchManager::new(
        client.clone(),
        Discovery::new(client.clone()),
        WatchScope::default(),
        None,
    );
    let mut labelled = config_map_key(&namespace.name);
    labelled.label_selector = Some("tier=front".into());
    let (labelled_seen, handler) = recorder();
    let _labelled = manager.subscribe(labelled, handler).await.unwrap();
    let (_, handler) = recorder();
    let _all = manager
        .subscribe(config_map_key(&namespace.name), handler)
        .await
        .unwrap();
    assert_eq!(manager.open_watches(), 2);

    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace.name);
    create(&api, "back", "1", json!({"tier": "back"})).await;
    create(&api, "front", "1", json!({"tier": "front"})).await;
    wait_for("the labelled watch to see its object", SOON, || async {
        labelled_seen
            .lock()
            .unwrap()
            .iter()
            .any(|(_, name, _)| name == "front")
            .then_some(())
    })
    .await;
    assert!(
        !labelled_seen.lock().unwrap().iter().any(|(_, name, _)| name == "back"),
        "the selector filters on the server: \"back\" was created first, so it would have arrived first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_reads_answer_like_the_api_server() {
    let client = control_plane().client().await;
    let namespace = test_namespace(&client, "watch-cache").await;
    let ns = namespace.name.clone();
    let discovery = Discovery::new(client.clone());
    let manager = WatchManager::new(
        client.clone(),
        discovery.clone(),
        WatchScope::default(),
        None,
    );
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    create(&api, "b", "2", json!({"app": "web"})).await;
    create(&api, "a", "1", json!({"app": "web"})).await;
    create(&api, "c", "3", json!({"app": "db"})).await;
    let (_, handler) = recorder();
    let subscription = Arc::new(
        manager
            .subscribe(config_map_key(&ns), handler)
            .await
            .unwrap(),
    );
    wait_for("the watch to list", SOON, || async {
        subscription.is_synced().then_some(())
    })
    .await;
    let subscriptions = vec![subscription];

    let from_server = |request: KubeRequest| {
        let (client, discovery) = (client.clone(), discovery.clone());
        async move { requests::execute(&client, &discovery, "test", request).await }
    };
    let names = |response: &HostResponse| -> Vec<String> {
        let HostResponse::Ok(list) = response else {
            panic!("list failed: {response:?}")
        };
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    };

    let list = KubeRequest::List {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.clone()),
        label_selector: Some("app=web".into()),
        field_selector: None,
        cached: true,
    };
    let cached = cache::list(
        &subscriptions,
        "v1",
        "ConfigMap",
        Some(&ns),
        Some("app=web"),
        None,
    )
    .expect("the cache answers");
    // Both keep only the namespace's own objects; the server adds kube-root-ca.crt, filtered out
    // here by the selector.
    assert_eq!(names(&cached), names(&from_server(list).await));
    assert_eq!(names(&cached), ["a", "b"]);
    let HostResponse::Ok(cached_list) = &cached else {
        unreachable!()
    };
    assert_eq!(cached_list["kind"], "ConfigMapList");
    assert_eq!(
        cached_list["items"][0]["kind"], "ConfigMap",
        "items carry their kind as the server's objects do"
    );

    let cached_get =
        cache::get(&subscriptions, "v1", "ConfigMap", Some(&ns), "a").expect("the cache answers");
    let HostResponse::Ok(object) = cached_get else {
        panic!("cached get failed")
    };
    assert_eq!(object["data"]["v"], "1");

    let missing = cache::get(&subscriptions, "v1", "ConfigMap", Some(&ns), "nope")
        .expect("a full watch knows it is absent");
    let get_missing = KubeRequest::Get {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.clone()),
        name: "nope".into(),
        cached: false,
    };
    let (HostResponse::Error(cached_error), HostResponse::Error(server_error)) =
        (missing, from_server(get_missing).await)
    else {
        panic!("both must be errors");
    };
    assert!(cached_error.is_not_found() && server_error.is_not_found());
    assert_eq!(cached_error.message(), server_error.message());

    assert!(
        cache::list(
            &subscriptions,
            "v1",
            "ConfigMap",
            Some(&ns),
            None,
            Some("metadata.name=a")
        )
        .is_none(),
        "field selectors go to the server"
    );
    assert!(
        cache::get(&subscriptions, "v1", "Secret", Some(&ns), "a").is_none(),
        "kinds not watched go to the server"
    );
    assert!(
        cache::get(&subscriptions, "v1", "ConfigMap", Some("elsewhere"), "a").is_none(),
        "namespaces not watched go to the server"
    );
}

/// A Role letting ServiceAccount `account_namespace/account` list and watch ConfigMaps in
/// `namespace`.
async fn let_list_config_maps(
    client: &kube::Client,
    namespace: &str,
    account_namespace: &str,
    account: &str,
) {
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "read-config-maps"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}],
    }))
    .unwrap();
    Api::<Role>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "read-config-maps"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-config-maps"},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": account_namespace}],
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

fn names_in(seen: &Seen) -> Vec<String> {
    let mut names: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, name, _)| name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaced_subscriptions_share_one_cluster_wide_watch_and_see_only_their_namespace() {
    let client = control_plane().client().await;
    let (a, b) = (
        test_namespace(&client, "coalesce-a").await,
        test_namespace(&client, "coalesce-b").await,
    );
    let manager = WatchManager::new(
        client.clone(),
        Discovery::new(client.clone()),
        WatchScope::ClusterWideWhenAllowed,
        None,
    );
    let (a_seen, a_handler) = recorder();
    let (b_seen, b_handler) = recorder();
    let a_subscription = Arc::new(
        manager
            .subscribe(config_map_key(&a.name), a_handler)
            .await
            .unwrap(),
    );
    let _b_subscription = manager
        .subscribe(config_map_key(&b.name), b_handler)
        .await
        .unwrap();
    assert_eq!(
        manager.open_watches(),
        1,
        "{:?}",
        manager.watch_subscribers()
    );
    assert!(a_subscription.is_coalesced());

    create(
        &Api::namespaced(client.clone(), &a.name),
        "in-a",
        "1",
        json!({}),
    )
    .await;
    create(
        &Api::namespaced(client.clone(), &b.name),
        "in-b",
        "1",
        json!({}),
    )
    .await;
    // Each ends once its own object arrived; the other namespace's object was created before
    // one of them, so a leak would show in at least one of the two.
    for (seen, name) in [(&a_seen, "in-a"), (&b_seen, "in-b")] {
        wait_for(&format!("{name} to arrive"), SOON, || async {
            names_in(seen).contains(&name.to_owned()).then_some(())
        })
        .await;
    }
    // A control plane with a controller manager publishes kube-root-ca.crt in every namespace.
    let a_names: Vec<String> = names_in(&a_seen)
        .into_iter()
        .filter(|name| name != "kube-root-ca.crt")
        .collect();
    assert_eq!(
        a_names,
        vec!["in-a".to_owned()],
        "events of another namespace reached a's handler"
    );
    assert!(!names_in(&b_seen).contains(&"in-a".to_owned()));

    // The cache, read through a's subscription, holds only a's namespace.
    let mut cached: Vec<String> = a_subscription
        .store()
        .state()
        .iter()
        .map(|object| object.name_any())
        .collect();
    cached.sort();
    cached.retain(|name| name != "kube-root-ca.crt");
    assert_eq!(cached, vec!["in-a".to_owned()]);
    assert!(a_subscription.get(Some(&b.name), "in-b").is_none());
    assert!(a_subscription.get(Some(&a.name), "in-a").is_some());
    // A cached get of b's object through a's subscription is not answered from the cache (not
    // even as "not found"): it goes to the API server as the operator, where RBAC decides.
    let subscriptions = vec![a_subscription.clone()];
    assert!(cache::get(&subscriptions, "v1", "ConfigMap", Some(&b.name), "in-b").is_none());
    assert!(
        cache::list(&subscriptions, "v1", "ConfigMap", Some(&b.name), None, None).is_none(),
        "a list of another namespace is not served from a coalesced watch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaced_subscriptions_keep_their_own_watches_when_asked_or_not_allowed_cluster_wide() {
    let client = control_plane().client().await;
    let (a, b) = (
        test_namespace(&client, "per-ns-a").await,
        test_namespace(&client, "per-ns-b").await,
    );
    let subscribe_both = |manager: WatchManager| {
        let (a, b) = (a.name.clone(), b.name.clone());
        async move {
            let (_, first) = recorder();
            let (_, second) = recorder();
            let first = manager.subscribe(config_map_key(&a), first).await.unwrap();
            let second = manager.subscribe(config_map_key(&b), second).await.unwrap();
            assert!(!first.is_coalesced() && !second.is_coalesced());
            assert_eq!(
                manager.open_watches(),
                2,
                "{:?}",
                manager.watch_subscribers()
            );
        }
    };

    // Asked for: one watch per namespace even for an identity that may watch everywhere.
    subscribe_both(WatchManager::new(
        client.clone(),
        Discovery::new(client.clone()),
        WatchScope::PerNamespace,
        None,
    ))
    .await;

    // Not allowed: an identity that may list and watch ConfigMaps in a and b only.
    let account = "namespaced-reader";
    let service_account: k8s_openapi::api::core::v1::ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": account}})).unwrap();
    Api::namespaced(client.clone(), &a.name)
        .create(&PostParams::default(), &service_account)
        .await
        .unwrap();
    let_list_config_maps(&client, &a.name, &a.name, account).await;
    let_list_config_maps(&client, &b.name, &a.name, account).await;
    let restricted = control_plane()
        .client_as_service_account(&a.name, account)
        .await;
    subscribe_both(WatchManager::new(
        restricted.clone(),
        Discovery::new(restricted),
        WatchScope::ClusterWideWhenAllowed,
        None,
    ))
    .await;
}
