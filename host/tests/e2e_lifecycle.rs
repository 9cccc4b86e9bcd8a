//! Operator lifecycle through the host API: load, run, unload, any number of times in one host,
//! with an observable state, and failures that say why.
mod e2e_support;

use std::sync::Arc;

use serde_json::json;
use wasm_operator::operator::{OperatorError, OperatorState};
use wasm_operator_test_support::test_namespace;

use e2e_support::{create_widget, guest, spec, wait_for_config_map, TestHost};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_loads_and_unloads_repeatedly_without_restarting_the_host() {
    let host = TestHost::start().await;
    let namespace = test_namespace(&host.client, "lifecycle").await;
    let ns = namespace.name.as_str();
    for round in 0..3 {
        host.manager
            .load(spec(
                "cycler",
                guest("configmapper"),
                json!({"namespace": ns}),
            ))
            .await
            .unwrap();
        // Loaded and initialised; it may already be reconciling the widgets of earlier rounds.
        let state = host.manager.state("cycler");
        assert!(
            matches!(state, Some(OperatorState::Idle | OperatorState::Running)),
            "after load the operator runs, got {state:?}"
        );
        let listed = host.manager.list();
        assert_eq!(listed.len(), 1);
        assert!(listed[0]
            .digest
            .as_deref()
            .is_some_and(|digest| digest.starts_with("sha256:")));

        let widget = format!("round-{round}");
        create_widget(
            &host.client,
            ns,
            &widget,
            json!({"data": {"round": round.to_string()}}),
        )
        .await;
        wait_for_config_map(
            &host.client,
            ns,
            &format!("{widget}-config"),
            "this round's ConfigMap",
            |data| data.get("round").and_then(|v| v.as_str()) == Some(&round.to_string()),
        )
        .await;

        host.manager.unload("cycler").await.unwrap();
        assert_eq!(host.manager.state("cycler"), None);
        assert_eq!(
            host.manager.watches().open_watches(),
            0,
            "unload drops the operator's watches"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_init_shows_failed_with_the_reason_until_unloaded() {
    let host = TestHost::start().await;
    let error = host
        .manager
        .load(spec(
            "sulky",
            guest("behaviours"),
            json!({"onInit": "error"}),
        ))
        .await
        .unwrap_err();
    assert!(matches!(error, OperatorError::Start { .. }), "{error}");
    match host.manager.state("sulky") {
        Some(OperatorState::Failed { reason }) => {
            assert!(reason.contains("init failed"), "{reason}")
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    let again = host
        .manager
        .load(spec("sulky", guest("behaviours"), json!({})))
        .await
        .unwrap_err();
    assert!(matches!(again, OperatorError::AlreadyLoaded(_)), "{again}");
    host.manager.unload("sulky").await.unwrap();
    host.manager
        .load(spec("sulky", guest("behaviours"), json!({})))
        .await
        .expect("loading again after unload");
    host.manager.unload("sulky").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_for_an_unknown_kind_fails_with_a_clear_reason() {
    let host = TestHost::start().await;
    let config =
        json!({"registration": {"for": {"apiVersion": "nowhere.example/v1", "kind": "Ghost"}}});
    let error = host
        .manager
        .load(spec("haunted", guest("behaviours"), config))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("unknown kind Ghost in apiVersion nowhere.example/v1"),
        "{message}"
    );
    assert!(
        message.contains("CustomResourceDefinition"),
        "the error says what to do: {message}"
    );
    assert!(matches!(
        host.manager.state("haunted"),
        Some(OperatorState::Failed { .. })
    ));
    assert_eq!(host.manager.watches().open_watches(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_that_is_not_an_operator_is_refused_at_load() {
    let host = TestHost::start().await;
    let not_wasm: Arc<[u8]> = Arc::from(&b"definitely not wasm"[..]);
    let error = host
        .manager
        .load(spec("junk", not_wasm, json!({})))
        .await
        .unwrap_err();
    assert!(matches!(error, OperatorError::Load { .. }), "{error}");
    assert!(matches!(
        host.manager.state("junk"),
        Some(OperatorState::Failed { .. })
    ));
    let invalid_name = host
        .manager
        .load(spec("Not_A_Name", guest("behaviours"), json!({})))
        .await
        .unwrap_err();
    assert!(
        matches!(invalid_name, OperatorError::InvalidName(_)),
        "{invalid_name}"
    );
}
