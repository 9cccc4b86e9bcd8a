//! `wasm-operator cluster` as it runs in a pod: two replicas with the in-cluster environment
//! (KUBERNETES_SERVICE_HOST/PORT and a ServiceAccount token issued through the TokenRequest
//! API), the RBAC of deploy/default, and a 3 s Lease. Only the leader runs operators; killing
//! it hands over within the lease period; a clean stop releases the Lease.
mod cluster_support;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PostParams;
use kube::Api;
use serde_json::json;
use wasm_operator_test_support::{control_plane, test_namespace, wait_for};

use cluster_support::processes::*;
use cluster_support::*;

const LEASE_DURATION: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_runs_operators_and_a_stopped_leader_hands_over() {
    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let namespace = test_namespace(&client, "cluster-leader").await;
    let registry = test_namespace(&client, "cluster-leader-registry").await;
    let ns = namespace.name.as_str();
    create_service_account(&client, ns, "host").await;
    grant_host_rbac(&client, ns).await;
    create_service_account(&client, ns, "webapp").await;
    grant(&client, ns, "webapp", ns, "webapp", webapp_rules(true)).await;
    grant_reads_everywhere(&client, ns, "webapp", WEBAPP_READS).await;
    grant(
        &client,
        &registry.name,
        "webapp-registry",
        ns,
        "webapp",
        vec![rule(
            "",
            &["configmaps"],
            &["get", "create", "update", "patch", "delete"],
        )],
    )
    .await;
    let module = webapp_module();
    put_module(&client, ns, "modules", &module).await;

    let dir = tempfile::tempdir().unwrap();
    let sa_dir = dir.path().join("serviceaccount");
    std::fs::create_dir_all(&sa_dir).unwrap();
    let server = service_account_dir(&client, ns, &sa_dir).await;
    let cache = dir.path().join("cache");

    let mut a = HostProcess::spawn("host-a", ns, &sa_dir, &server, &cache, LEASE_DURATION, &[]);
    wait_for("host-a to hold the Lease", PROMPTLY, || async {
        (lease_holder(&client, ns).await.as_deref() == Some("host-a")).then_some(())
    })
    .await;
    let mut b = HostProcess::spawn("host-b", ns, &sa_dir, &server, &cache, LEASE_DURATION, &[]);
    wait_for("host-b to be ready (standing by)", PROMPTLY, || async {
        b.ready().await.then_some(())
    })
    .await;

    create_wasm_operator(
        &client,
        ns,
        "webapp",
        webapp_from_config_map(&registry.name),
    )
    .await;
    wait_for_wasm_operator(
        &client,
        ns,
        "webapp",
        "host-a to run the operator",
        |object| {
            phase(object) == "Idle"
                && object.status.as_ref().and_then(|s| s.host.as_deref()) == Some("host-a")
        },
    )
    .await;
    assert_eq!(a.operators().await, Some(1), "{}", a.drain());
    assert_eq!(b.operators().await, Some(0), "{}", b.drain());

    // The operator acts as its ServiceAccount through the host's impersonation rights.
    let webapps: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &kube::discovery::ApiResource {
            group: "demo.wasm-operator.dev".into(),
            version: "v1alpha1".into(),
            api_version: "demo.wasm-operator.dev/v1alpha1".into(),
            kind: "WebApp".into(),
            plural: "webapps".into(),
        },
    );
    let webapp = serde_json::from_value(json!({
        "apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "WebApp",
        "metadata": {"name": "shop", "namespace": ns}, "spec": {"image": "nginx:1.27"},
    }))
    .unwrap();
    webapps
        .create(&PostParams::default(), &webapp)
        .await
        .unwrap();
    let entries: Api<ConfigMap> = Api::namespaced(client.clone(), &registry.name);
    let entry = format!("webapp-{ns}-shop");
    wait_for(
        "the registry entry written by the operator",
        PROMPTLY,
        || async { entries.get_opt(&entry).await.ok()?.map(|_| ()) },
    )
    .await;

    // Killed without releasing the Lease: host-b takes over once it expires.
    a.child.kill().unwrap();
    let killed_at = Instant::now();
    wait_for("host-b to take the Lease over", PROMPTLY, || async {
        (lease_holder(&client, ns).await.as_deref() == Some("host-b")).then_some(())
    })
    .await;
    let handover = killed_at.elapsed();
    // Expired after LEASE_DURATION at most, noticed within one retry period (a fifth of it).
    assert!(
        handover <= LEASE_DURATION + LEASE_DURATION / 3 + Duration::from_secs(1),
        "handover took {handover:?}"
    );
    wait_for_wasm_operator(
        &client,
        ns,
        "webapp",
        "host-b to run the operator",
        |object| {
            phase(object) == "Idle"
                && object.status.as_ref().and_then(|s| s.host.as_deref()) == Some("host-b")
        },
    )
    .await;
    assert_eq!(b.operators().await, Some(1), "{}", b.drain());
    eprintln!("lease handover after the leader was killed: {handover:?}");

    // A clean stop releases the Lease at once.
    b.terminate();
    assert_eq!(lease_holder(&client, ns).await, None);
    delete_cluster_bindings(&client, ns).await;
}

/// Fencing: a leader cut off from the API server (its connection goes through a proxy the test
/// cuts) must have aborted every reconcile before another replica may take the Lease over. The
/// operator reconciles every 200 ms from the host's cache, so a partitioned leader that kept
/// its operators would go on reconciling; its log must show the last reconcile before it
/// aborted, and the abort before the new leader's acquireTime (the API server's view) and
/// before the new leader's first reconcile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_stops_reconciling_before_another_takes_over() {
    use cluster_support::proxy::CuttableProxy;
    use k8s_openapi::jiff::Timestamp;

    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let namespace = test_namespace(&client, "cluster-fence").await;
    let ns = namespace.name.as_str();
    create_service_account(&client, ns, "host").await;
    grant_host_rbac(&client, ns).await;
    grant(
        &client,
        ns,
        "reads",
        ns,
        "default",
        vec![rule("", &["configmaps"], &["list", "watch"])],
    )
    .await;
    wait_for_access(&client, ns, "default", ("v1", "ConfigMap"), Some(ns), true).await;
    let module = std::fs::read(wasm_operator_test_support::guest_module(
        "test-guest-behaviours",
    ))
    .unwrap();
    put_module(&client, ns, "modules", &module).await;

    let dir = tempfile::tempdir().unwrap();
    let sa_dir = dir.path().join("serviceaccount");
    std::fs::create_dir_all(&sa_dir).unwrap();
    let server = service_account_dir(&client, ns, &sa_dir).await;
    let upstream: std::net::SocketAddr = format!("{}:{}", server.0, server.1).parse().unwrap();
    let proxy = CuttableProxy::start(upstream).await;
    let through_proxy = ("127.0.0.1".to_string(), proxy.addr.port().to_string());
    let cache = dir.path().join("cache");

    // Longer than the other test's: the 3 s margin between the old leader's abort and the
    // Lease's expiry must hold on a loaded machine.
    let lease = Duration::from_secs(6);
    let mut a = HostProcess::spawn("host-a", ns, &sa_dir, &through_proxy, &cache, lease, &[]);
    wait_for("host-a to hold the Lease", PROMPTLY, || async {
        (lease_holder(&client, ns).await.as_deref() == Some("host-a")).then_some(())
    })
    .await;
    let mut b = HostProcess::spawn("host-b", ns, &sa_dir, &server, &cache, lease, &[]);
    wait_for("host-b to be ready (standing by)", PROMPTLY, || async {
        b.ready().await.then_some(())
    })
    .await;
    create_wasm_operator(
        &client,
        ns,
        "ticker",
        json!({
            "module": {"configMap": {"name": "modules", "key": "webapp.wasm"}},
            "allowHttp": [GRANTS_HTTP_ONLY],
            "config": {
                "requeueAfterMs": 200,
                "registration": {"for": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": ns}},
            },
        }),
    )
    .await;
    let reconcile_line = |line: &str| line.contains("count=");
    wait_for("host-a to reconcile", PROMPTLY, || {
        let seen = {
            a.drain();
            a.log.iter().any(|line| reconcile_line(line))
        };
        std::future::ready(seen.then_some(()))
    })
    .await;

    proxy.cut();
    let cut_at = Timestamp::now();
    wait_for("host-b to take the Lease over", PROMPTLY, || async {
        (lease_holder(&client, ns).await.as_deref() == Some("host-b")).then_some(())
    })
    .await;
    wait_for("host-b to reconcile", PROMPTLY, || {
        let seen = {
            b.drain();
            b.log.iter().any(|line| reconcile_line(line))
        };
        std::future::ready(seen.then_some(()))
    })
    .await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    let acquired = leases
        .get("hosts")
        .await
        .unwrap()
        .spec
        .unwrap()
        .acquire_time
        .unwrap()
        .0;

    let log_a = a.drain();
    let aborted = a
        .log
        .iter()
        .find(|line| line.contains("operators of the shards given up aborted"))
        .and_then(|line| logged_at(line))
        .unwrap_or_else(|| panic!("host-a never aborted its operators:\n{log_a}"));
    let last_a = a
        .log
        .iter()
        .filter(|line| reconcile_line(line))
        .filter_map(|line| logged_at(line))
        .max()
        .unwrap();
    let first_b = b
        .log
        .iter()
        .filter(|line| reconcile_line(line))
        .filter_map(|line| logged_at(line))
        .min()
        .unwrap();
    eprintln!(
        "cut {cut_at}; host-a last reconcile {last_a}, aborted {aborted}; \
         host-b acquired {acquired}, first reconcile {first_b}"
    );
    assert!(last_a <= aborted, "host-a reconciled after aborting");
    assert!(
        aborted < acquired,
        "host-a aborted at {aborted}, after host-b acquired the Lease at {acquired}"
    );
    assert!(last_a < first_b, "the two leaders' reconciles overlap");
    // The abort came at the renew deadline (half the lease), not at the lease's end.
    let stopped_after = aborted.duration_since(cut_at);
    assert!(
        stopped_after < k8s_openapi::jiff::SignedDuration::try_from(lease).unwrap(),
        "host-a stopped {stopped_after:?} after the cut"
    );
    delete_cluster_bindings(&client, ns).await;
}
