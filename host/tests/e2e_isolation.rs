//! Isolation: an operator that loops forever, traps, or grows its memory past its cap fails only
//! its own reconcile. The failure is recorded with its reason, its instance is recreated, and a
//! second operator in the same host keeps reconciling throughout.
mod e2e_support;

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;
use wasm_operator::metrics::sample_value;
use wasm_operator::operator::OperatorState;
use wasm_operator::runtime::InstanceLimits;
use wasm_operator_test_support::{test_namespace, wait_for};

use e2e_support::{create_widget, guest, spec, wait_for_config_map, TestHost, PROMPTLY};

/// Loads a misbehaving `behaviours` operator next to a healthy configmapper, provokes the
/// misbehaviour, and checks that it fails alone. Returns the failed reconciles' durations.
async fn fails_alone(
    prefix: &str,
    on_reconcile: &str,
    limits: InstanceLimits,
    reason: &'static str,
) -> Vec<Duration> {
    let host = TestHost::start().await;
    let namespace = test_namespace(&host.client, prefix).await;
    let ns = namespace.name.as_str();
    host.manager
        .load(spec(
            "healthy",
            guest("configmapper"),
            json!({"namespace": ns}),
        ))
        .await
        .unwrap();
    let config = json!({
        "registration": {"for": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": ns, "labelSelector": "victim=yes"}},
        "onReconcile": on_reconcile,
    });
    let mut broken = spec("broken", guest("behaviours"), config);
    broken.limits = limits;
    host.manager.load(broken).await.unwrap();

    let victim: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "victim", "labels": {"victim": "yes"}}}),
    )
    .unwrap();
    Api::<ConfigMap>::namespaced(host.client.clone(), ns)
        .create(&PostParams::default(), &victim)
        .await
        .unwrap();

    // Two failures: the second one ran on a recreated instance.
    let failures = wait_for(
        &format!("two `{reason}` failures of the broken operator"),
        PROMPTLY,
        || async {
            let failures = host.reconciles.failures("broken", reason);
            (failures.len() >= 2).then_some(failures)
        },
    )
    .await;
    let restarts = sample_value(
        &host.metrics.encode(),
        "wasm_operator_instance_restarts_total",
        "operator=\"broken\"",
    );
    assert!(
        restarts.unwrap_or(0.0) >= 1.0,
        "the broken operator's instance must have been recreated"
    );
    let errors = sample_value(
        &host.metrics.encode(),
        "wasm_operator_reconcile_errors_total",
        &format!("operator=\"broken\",reason=\"{reason}\""),
    );
    assert!(errors.unwrap_or(0.0) >= 2.0, "errors by reason are counted");

    // Meanwhile the other operator carries on.
    for widget in ["during-1", "during-2"] {
        create_widget(&host.client, ns, widget, json!({"data": {"ok": "yes"}})).await;
        wait_for_config_map(
            &host.client,
            ns,
            &format!("{widget}-config"),
            "the healthy operator to keep working",
            |data| data.contains_key("ok"),
        )
        .await;
    }
    assert!(host.reconciles.of("healthy").iter().all(|record| matches!(
        record.outcome,
        wasm_operator::operator::ReconcileOutcome::Succeeded { .. }
    )));
    // The broken operator is not dead for good: its instance is recreated, it is not failed.
    let state = host.manager.state("broken");
    assert!(
        matches!(
            state,
            Some(OperatorState::Idle | OperatorState::Running | OperatorState::Loading)
        ),
        "{state:?}"
    );
    host.manager.unload("broken").await.unwrap();
    host.manager.unload("healthy").await.unwrap();
    failures.iter().map(|record| record.duration).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_that_loops_forever_is_stopped_at_its_deadline_and_fails_alone() {
    let deadline = Duration::from_millis(300);
    let limits = InstanceLimits {
        max_memory_bytes: 64 << 20,
        call_deadline: deadline,
    };
    let durations = fails_alone("iso-loop", "loop", limits, "deadline").await;
    for duration in durations {
        assert!(
            duration >= deadline,
            "stopped after {duration:?}, before its deadline {deadline:?}"
        );
        assert!(
            duration < deadline + Duration::from_millis(500),
            "stopped only after {duration:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_that_traps_fails_alone() {
    fails_alone(
        "iso-trap",
        "trap",
        InstanceLimits {
            max_memory_bytes: 64 << 20,
            call_deadline: Duration::from_secs(5),
        },
        "trap",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_that_grows_past_its_memory_cap_fails_alone() {
    let limits = InstanceLimits {
        max_memory_bytes: 16 << 20,
        call_deadline: Duration::from_secs(5),
    };
    fails_alone("iso-memory", "growMemory", limits, "memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_that_breaks_the_abi_fails_alone() {
    // It sends bytes that are not JSON to kube_request.
    let limits = InstanceLimits {
        max_memory_bytes: 64 << 20,
        call_deadline: Duration::from_secs(5),
    };
    fails_alone("iso-abi", "kubeGarbage", limits, "abi").await;
}
