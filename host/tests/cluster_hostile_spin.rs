//! Cluster mode under spinning guests: with as many WasmOperators spinning in reconcile as there
//! are worker threads, the in-process cluster host (its Lease elector on the same tokio runtime)
//! keeps renewing its Lease. Without yielding guests, renewal would wait for a worker until the
//! guests' deadline, far longer than the lease.
mod cluster_support;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use serde_json::json;
use wasm_operator::cluster::LeaseSettings;
use wasm_operator::operator::OperatorState;
use wasm_operator_test_support::{control_plane, guest_module, test_namespace, wait_for};

use cluster_support::*;

const LEASE_DURATION: Duration = Duration::from_secs(3);
const WORKERS: usize = 2;

async fn lease_record(leases: &Api<Lease>) -> Option<(String, MicroTime)> {
    let spec = leases.get_opt("hostile").await.ok()??.spec?;
    Some((spec.holder_identity?, spec.renew_time?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_keeps_its_lease_while_guests_spin_on_every_worker() {
    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let namespace = test_namespace(&client, "spin-lease").await;
    let ns = namespace.name.as_str();
    create_service_account(&client, ns, "spinner").await;
    grant(
        &client,
        ns,
        "spinner",
        ns,
        "spinner",
        vec![rule("", &["configmaps"], &["get", "list", "watch"])],
    )
    .await;
    let modules = tempfile::tempdir().unwrap();
    std::fs::copy(
        guest_module("test-guest-behaviours"),
        modules.path().join("behaviours.wasm"),
    )
    .unwrap();
    let lease = LeaseSettings {
        namespace: ns.into(),
        name: "hostile".into(),
        identity: "test-host".into(),
        lease_duration: LEASE_DURATION,
        shards: 1,
    };
    let host = InProcessHost::start_with(
        ns,
        Some(lease),
        Some(modules.path().to_path_buf()),
        Default::default(),
    )
    .await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    wait_for("the host to lead", PROMPTLY, || async {
        let (holder, _) = lease_record(&leases).await?;
        (holder == "test-host").then_some(())
    })
    .await;

    for spinner in 0..WORKERS {
        create_wasm_operator(
            &client,
            ns,
            &format!("spin-{spinner}"),
            json!({
                "module": {"path": "behaviours.wasm"},
                "serviceAccountName": "spinner",
                // The guest imports `http_request`: granted, reaching nothing (.invalid).
                "allowHttp": [GRANTS_HTTP_ONLY],
                "limits": {"callDeadline": "120s"},
                "config": {
                    "onReconcile": "loop",
                    "registration": {"for": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": ns, "labelSelector": "spin=yes"}},
                },
            }),
        )
        .await;
    }
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let trigger = ConfigMap {
        metadata: ObjectMeta {
            name: Some("trigger".into()),
            labels: Some([("spin".to_owned(), "yes".to_owned())].into()),
            ..Default::default()
        },
        ..Default::default()
    };
    config_maps
        .create(&PostParams::default(), &trigger)
        .await
        .unwrap();
    wait_for(
        "every spinner to be inside its reconcile",
        PROMPTLY,
        || async {
            let running = host
                .manager
                .list()
                .into_iter()
                .filter(|status| status.state == OperatorState::Running)
                .count();
            (running == WORKERS).then_some(())
        },
    )
    .await;

    // Watch the Lease for three lease durations while the guests spin.
    let spin_started = Instant::now();
    let (_, mut last_renewal) = lease_record(&leases).await.unwrap();
    let mut last_change = Instant::now();
    let mut longest_gap = Duration::ZERO;
    let mut renewals = 0;
    while spin_started.elapsed() < 3 * LEASE_DURATION {
        let (holder, renewed) = lease_record(&leases).await.expect("the Lease exists");
        assert_eq!(holder, "test-host", "the leader lost its Lease");
        if renewed != last_renewal {
            renewals += 1;
            last_renewal = renewed;
            last_change = Instant::now();
        }
        longest_gap = longest_gap.max(last_change.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let still_running = host
        .manager
        .list()
        .into_iter()
        .filter(|status| status.state == OperatorState::Running)
        .count();
    println!(
        "{WORKERS} spinning guests on {WORKERS} workers for {:?}: {renewals} Lease renewals, longest \
         time without one {longest_gap:?} (lease duration {LEASE_DURATION:?})",
        spin_started.elapsed()
    );
    assert_eq!(still_running, WORKERS, "the guests spun throughout");
    assert!(renewals >= 2, "only {renewals} renewals");
    assert!(
        longest_gap < LEASE_DURATION,
        "{longest_gap:?} without renewal"
    );
    host.stop().await;
}
