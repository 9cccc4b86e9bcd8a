//! The SubjectAccessReview check that gates reads from the shared cache, against the real
//! control plane's RBAC: list and watch are both needed, per namespace, answers are cached per
//! kind and namespace, and an RBAC change is seen once the cached answer expires.
mod cluster_support;

use std::time::Duration;

use wasm_operator::cluster::access::{ReadAccess, ServiceAccountReadAccess};
use wasm_operator_test_support::{control_plane, test_namespace};

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
    let fresh = ServiceAccountReadAccess::new(client.clone(), ns, "reader", Duration::ZERO);
    assert!(fresh.may_list_watch("v1", "Service", Some(ns)).await);
}
