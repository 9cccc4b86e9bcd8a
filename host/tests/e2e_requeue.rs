//! RequeueAfter timers are held by the host and fire on time: the interval between the end of a
//! reconcile that asked for a delay and the start of the next one is measured on the host side.
mod e2e_support;

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;
use wasm_operator_test_support::{test_namespace, wait_for};

use e2e_support::{guest, spec, TestHost};

const REQUESTED: Duration = Duration::from_millis(1000);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_after_fires_within_ten_percent_plus_50ms() {
    let host = TestHost::start().await;
    let namespace = test_namespace(&host.client, "requeue").await;
    let ns = namespace.name.as_str();
    // Reconciles ConfigMaps of the namespace and asks for a requeue after every success; nothing
    // else touches the object, so every reconcile after the first comes from the timer.
    let config = json!({
        "registration": {"for": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": ns, "labelSelector": "requeue-test=yes"}},
        "requeueAfterMs": REQUESTED.as_millis() as u64,
    });
    host.manager
        .load(spec("ticker", guest("behaviours"), config))
        .await
        .unwrap();
    let config_map: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "tick", "labels": {"requeue-test": "yes"}},
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(host.client.clone(), ns)
        .create(&PostParams::default(), &config_map)
        .await
        .unwrap();

    let key = format!("{ns}/tick");
    let records = wait_for(
        "four reconciles of the ConfigMap",
        Duration::from_secs(30),
        || async {
            let records = host.reconciles.of_key("ticker", &key);
            (records.len() >= 4).then_some(records)
        },
    )
    .await;
    let tolerance = REQUESTED / 10 + Duration::from_millis(50);
    for pair in records.windows(2) {
        let timer_started = pair[0].started_at + pair[0].duration;
        let fired_after = pair[1].started_at.duration_since(timer_started);
        let error = fired_after.abs_diff(REQUESTED);
        assert!(
            error <= tolerance,
            "requeue fired after {fired_after:?}, requested {REQUESTED:?} (allowed error {tolerance:?})"
        );
    }
}
