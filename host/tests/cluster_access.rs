//! The SubjectAccessReview check that gates reads from the shared cache, against the real
//! control plane's RBAC: list and watch are both needed, per namespace, answers are cached per
//! kind and namespace, and an RBAC change is seen once the cached answer expires.
mod cluster_support;

use std::time::Duration;

use wasm_operator::cluster::access::{ReadAccess, ServiceAccountReadAccess};
use wasm_operator_test_support::{control_plane, test_namespace, wait_for};

use cluster_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_reads_need_list_and_watch_for_the_kind_and_namespace() {
    let client = control_plane().client().await;
    let namespace = test_namespace(&client, "cluster-access").await;
    let ns = namespace.name.as_str();
    create_service_account(&client, ns, "reader").await;
    grant(
        &client,
        ns,
        "reader",
        ns,
        "reader",
        vec![
            rule("", &["configmaps"], &["get", "list", "watch"]),
            rule("", &["services"], &["list"]),
        ],
    )
    .await;

    // The API server's authorizer learns of new RBAC objects through its own watch: wait until
    // the grant is in force before anything caches an answer.
    granted(&client, ns, "reader", "ConfigMap", true).await;
    let access =
        ServiceAccountReadAccess::new(client.clone(), ns, "reader", Duration::from_secs(600));
    let check = |api_version: &'static str, kind: &'static str, namespace: Option<&str>| {
        access.may_list_watch(api_version, kind, namespace)
    };
    assert!(check("v1", "ConfigMap", Some(ns)).await);
    assert!(
        !check("v1", "Service", Some(ns)).await,
        "list without watch"
    );
    assert!(!check("v1", "Secret", Some(ns)).await);
    assert!(!check("v1", "ConfigMap", None).await, "all namespaces");
    assert!(
        !check("v1", "ConfigMap", Some("kube-system")).await,
        "another namespace"
    );
    assert!(
        !check("example.com/v1", "Nothing", Some(ns)).await,
        "a kind the server does not serve"
    );

    // Answers are cached: asking again sends no review.
    let sent = access.reviews_sent();
    assert!(check("v1", "ConfigMap", Some(ns)).await);
    assert!(!check("v1", "Service", Some(ns)).await);
    assert_eq!(access.reviews_sent(), sent);

    // RBAC changes are seen once the cached answer expires.
    grant(
        &client,
        ns,
        "reader-watch",
        ns,
        "reader",
        vec![rule("", &["services"], &["watch"])],
    )
    .await;
    assert!(
        !check("v1", "Service", Some(ns)).await,
        "still the cached answer"
    );
    granted(&client, ns, "reader", "Service", true).await;
}

/// Waits until an uncached check of `account`'s list+watch on `kind` in `ns` answers `expected`.
async fn granted(
    client: &kube::Client,
    ns: &str,
    account: &str,
    kind: &'static str,
    expected: bool,
) {
    let fresh = ServiceAccountReadAccess::new(client.clone(), ns, account, Duration::ZERO);
    wait_for(
        &format!(
            "list+watch of {kind} to be {}",
            if expected { "allowed" } else { "denied" }
        ),
        Duration::from_secs(30),
        || async { (fresh.may_list_watch("v1", kind, Some(ns)).await == expected).then_some(()) },
    )
    .await;
}

/// A `cached: true` get by an operator is answered from the shared cache when its
/// ServiceAccount may list and watch the kind (here it may not `get`, so the API server would
/// have said 403); an account that may not list and watch what it registers is not loaded at
/// all, so it never reaches the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_reads_are_served_only_to_service_accounts_that_may_list_and_watch() {
    use serde_json::json;
    use wasm_operator::cluster::operator_name;
    use wasm_operator::operator::HostCall;
    use wasm_operator_abi::{HostResponse, KubeRequest};
    use wasm_operator_test_support::guest_module;

    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let namespace = test_namespace(&client, "cluster-cached").await;
    let ns = namespace.name.as_str();
    create_service_account(&client, ns, "watcher").await;
    grant(
        &client,
        ns,
        "watcher",
        ns,
        "watcher",
        vec![rule("", &["configmaps"], &["list", "watch"])],
    )
    .await;
    granted(&client, ns, "watcher", "ConfigMap", true).await;
    create_service_account(&client, ns, "nobody").await;
    let modules = tempfile::tempdir().unwrap();
    std::fs::copy(
        guest_module("test-guest-behaviours"),
        modules.path().join("behaviours.wasm"),
    )
    .unwrap();
    let host = InProcessHost::start_with(
        ns,
        None,
        Some(modules.path().to_path_buf()),
        Default::default(),
    )
    .await;
    let probe = json!({"verb": "get", "apiVersion": "v1", "kind": "ConfigMap", "namespace": ns, "name": "probe", "cached": true});
    for (name, account) in [("watcher", "watcher"), ("nobody", "nobody")] {
        create_wasm_operator(
            &client,
            ns,
            name,
            json!({
                "module": {"path": "behaviours.wasm"},
                "serviceAccountName": account,
                // The guest imports `http_request`: granted, reaching nothing (.invalid).
                "allowHttp": [GRANTS_HTTP_ONLY],
                "config": {
                    "onReconcile": "kube",
                    "kubeRequest": probe,
                    "registration": {"for": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": ns}},
                },
            }),
        )
        .await;
    }
    wait_for_wasm_operator(&client, ns, "watcher", "the operator to run", |object| {
        phase(object) == "Idle"
    })
    .await;
    // An account that may not list and watch what it registers is refused before any watch
    // opens (the cached reads would otherwise be its registration's own cache).
    let refused = wait_for_wasm_operator(&client, ns, "nobody", "nobody refused", |object| {
        phase(object) == "Failed"
    })
    .await;
    let message = refused.status.unwrap().last_error.unwrap_or_default();
    assert!(
        message.contains(&format!(
            "system:serviceaccount:{ns}:nobody may not list v1 ConfigMap in namespace {ns}"
        )),
        "{message}"
    );
    let config_maps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), ns);
    let config_map = serde_json::from_value(json!({"metadata": {"name": "probe"}})).unwrap();
    config_maps
        .create(&kube::api::PostParams::default(), &config_map)
        .await
        .unwrap();

    let answer_to = |operator: String| {
        let calls = host.calls.clone();
        move || {
            let answer = calls
                .of(&operator)
                .into_iter()
                .find_map(|record| match record.call {
                    HostCall::Kube(KubeRequest::Get { ref name, .. }) if name == "probe" => {
                        Some(record.response)
                    }
                    _ => None,
                });
            async move { answer }
        }
    };
    let served = wait_for(
        "watcher's cached get",
        PROMPTLY,
        answer_to(operator_name(ns, "watcher")),
    )
    .await;
    assert!(matches!(served, HostResponse::Ok(_)), "{served:?}");
    assert!(
        host.calls.of(&operator_name(ns, "nobody")).is_empty(),
        "a refused operator made host calls"
    );
    host.stop().await;
}

/// A guest naming random namespaces in cached gets must not turn each into SubjectAccessReviews
/// nor grow the answer cache without bound: cluster-wide access answers every namespace from
/// one review, and namespaces without a cached answer are reviewed at most
/// `MAX_NEW_NAMESPACES` per period (the rest are refused from the cache and go to the API
/// server as the operator).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_namespaces_do_not_amplify_access_reviews() {
    use wasm_operator::cluster::access::{MAX_ANSWERS, MAX_NEW_NAMESPACES};

    let client = control_plane().client().await;
    let namespace = test_namespace(&client, "cluster-sar-flood").await;
    let ns = namespace.name.as_str();
    create_service_account(&client, ns, "local").await;
    grant(
        &client,
        ns,
        "local",
        ns,
        "local",
        vec![rule("", &["configmaps"], &["list", "watch"])],
    )
    .await;
    granted(&client, ns, "local", "ConfigMap", true).await;
    create_service_account(&client, ns, "everywhere").await;
    grant_cluster_wide(
        &client,
        ns,
        "everywhere",
        ns,
        "everywhere",
        vec![rule("", &["configmaps"], &["list", "watch"])],
    )
    .await;
    wait_for_access(&client, ns, "everywhere", ("v1", "ConfigMap"), None, true).await;

    let flood = 500;
    let local =
        ServiceAccountReadAccess::new(client.clone(), ns, "local", Duration::from_secs(600));
    assert!(local.check("v1", "ConfigMap", Some(ns)).await);
    for i in 0..flood {
        let random = format!("flood-{i}");
        assert!(!local.check("v1", "ConfigMap", Some(&random)).await);
    }
    // One cluster-wide review (refused at `list`), the own namespace (list + watch), and at
    // most MAX_NEW_NAMESPACES namespace reviews in the period, whatever the flood.
    let sent = local.reviews_sent();
    assert!(
        sent <= 1 + 2 + MAX_NEW_NAMESPACES as u64,
        "{sent} reviews for {flood} namespaces"
    );
    assert!(local.answers_cached() <= MAX_ANSWERS);
    assert!(
        local.check("v1", "ConfigMap", Some(ns)).await,
        "the own namespace's cached answer survives the flood"
    );
    println!("reviews for {flood} random namespaces, namespace-scoped account: {sent}");

    let everywhere =
        ServiceAccountReadAccess::new(client.clone(), ns, "everywhere", Duration::from_secs(600));
    for i in 0..flood {
        let random = format!("flood-{i}");
        assert!(everywhere.check("v1", "ConfigMap", Some(&random)).await);
    }
    assert_eq!(
        everywhere.reviews_sent(),
        2,
        "cluster-wide list + watch answer every namespace"
    );
}
