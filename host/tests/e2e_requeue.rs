//! RequeueAfter timers are held by the host and fire on time: the interval between the end of a
//! reconcile that asked for a delay and the start of the next one is measured on the host side.
//! A swapped-out operator is swapped in ahead of its timer when pre-wake is on.
mod e2e_support;

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;
use wasm_operator_test_support::{test_namespace, wait_for};

use e2e_support::{guest, spec, TestHost};
use wasm_operator::metrics::OperatorLabels;
use wasm_operator::operator::{ManagerConfig, ReconcileRecord, SwapConfig};

const REQUESTED: Duration = Duration::from_millis(1000);

/// Loads "ticker", which reconciles the labelled ConfigMaps of `ns` and asks for a requeue
/// after `requeue` on every success, and creates its ConfigMap; nothing else touches the
/// object, so every reconcile after the first comes from the timer. Returns the object's key.
async fn start_ticker(host: &TestHost, ns: &str, requeue: Duration) -> String {
    let config = json!({
        "registration": {"for": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": ns, "labelSelector": "requeue-test=yes"}},
        "requeueAfterMs": requeue.as_millis() as u64,
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
    format!("{ns}/tick")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_after_fires_within_ten_percent_plus_50ms() {
    let host = TestHost::start().await;
    let namespace = test_namespace(&host.client, "requeue").await;
    let key = start_ticker(&host, &namespace.name, REQUESTED).await;
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

/// Runs the ticker with swap-out after 200 ms idle and a 3 s RequeueAfter, and returns its
/// reconciles once three timer-driven ones have run, with the host's pre-wake count.
async fn swapped_ticker(pre_wake: Option<Duration>) -> (Vec<ReconcileRecord>, u64) {
    const REQUEUE: Duration = Duration::from_millis(3000);
    let state_dir = tempfile::tempdir().unwrap();
    let host = TestHost::start_with(ManagerConfig {
        swap: SwapConfig {
            state_dir: Some(state_dir.path().to_owned()),
            swap_after: Some(Duration::from_millis(200)),
            memory_budget: None,
            pre_wake,
            ..SwapConfig::default()
        },
        ..ManagerConfig::default()
    })
    .await;
    let namespace = test_namespace(&host.client, "pre-wake").await;
    let key = start_ticker(&host, &namespace.name, REQUEUE).await;
    let records = wait_for(
        "three timer-driven reconciles",
        Duration::from_secs(60),
        || async {
            let records = host.reconciles.of_key("ticker", &key);
            let timed = records
                .iter()
                .filter(|r| r.timer_deadline.is_some())
                .count();
            (timed >= 3).then_some(records)
        },
    )
    .await;
    let pre_wakes = host
        .metrics
        .pre_wakes
        .get_or_create(&OperatorLabels {
            operator: "ticker".into(),
        })
        .get();
    (records, pre_wakes)
}

/// The delays from each timer's deadline to its reconcile's start, in milliseconds.
fn lateness_ms(records: &[ReconcileRecord]) -> Vec<f64> {
    records
        .iter()
        .filter_map(|record| {
            let deadline = record.timer_deadline?;
            Some(record.started_at.duration_since(deadline).as_secs_f64() * 1e3)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pre_wake_a_timer_of_a_swapped_out_operator_waits_for_its_swap_in() {
    let (records, pre_wakes) = swapped_ticker(None).await;
    let timed: Vec<_> = records
        .iter()
        .filter(|r| r.timer_deadline.is_some())
        .collect();
    assert!(
        timed.iter().all(|record| record.swapped_in_first),
        "idle for 2.8 s of every 3 s, the operator is swapped out when each timer fires: {timed:?}"
    );
    assert_eq!(pre_wakes, 0);
    eprintln!(
        "timer to reconcile without pre-wake (ms): {:?}",
        lateness_ms(&records)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_wake_swaps_an_operator_in_before_its_timer_fires() {
    let (records, pre_wakes) = swapped_ticker(Some(Duration::from_secs(2))).await;
    let timed: Vec<_> = records
        .iter()
        .filter(|r| r.timer_deadline.is_some())
        .collect();
    assert!(
        timed.iter().all(|record| !record.swapped_in_first),
        "swapped in 2 s ahead, the operator is resident when each timer fires: {timed:?}"
    );
    assert!(pre_wakes >= 3, "one pre-wake per timer, got {pre_wakes}");
    eprintln!(
        "timer to reconcile with pre-wake (ms): {:?}",
        lateness_ms(&records)
    );
}
