//! `testing::replay`: an operator's exports run against a recorded tape, passing when they make
//! the recorded host calls and return the recorded outcomes (timestamps aside), and failing
//! with a diff at the first difference.
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{json, Value};
use wasm_operator_sdk::prelude::*;
use wasm_operator_sdk::testing;

/// Copies each ConfigMap's data into `<name>-copy`, stamped with the time, and looks again in
/// a minute. Config `{"suffix": "copy"}` renames the copies (the "changed operator").
fn init(init: &InitContext) -> Result<(Controller, String)> {
    let suffix = init
        .config
        .get("suffix")
        .and_then(Value::as_str)
        .unwrap_or("copy");
    Ok((
        Controller::new(Api::<ConfigMap>::namespaced("ns"), WatchConfig::default()),
        suffix.to_owned(),
    ))
}

fn reconcile(request: Request<ConfigMap>, suffix: &mut String) -> Result<Action> {
    let Some(source) = request.object else {
        return Ok(Action::await_change());
    };
    let name = format!("{}-{suffix}", request.name);
    let copy = json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": name, "annotations": {"copiedAt": wasm_operator_sdk::time::now()}},
                      "data": source.data});
    Api::<Value>::namespaced_with("ns", "v1", "ConfigMap")
        .patch(
            &name,
            &PatchParams::apply("copier").force(),
            &Patch::Apply(&copy),
        )
        .context("applying the copy")?;
    Ok(Action::requeue_after(Duration::from_secs(60)))
}

wasm_operator_sdk::operator!(init, reconcile);

/// A tape as `wasm-operator run --record` writes it, for config `config` and one ConfigMap.
fn tape(config: Value, copied_at: &str, response: Value) -> PathBuf {
    let header = json!({"format": "wasm-operator-tape/v1", "operator": "copier",
                        "init": {"abiVersion": 1, "operatorName": "copier", "config": config}});
    let request = json!({"verb": "patch", "apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns",
                         "name": "settings-copy", "patchType": "apply", "fieldManager": "copier", "force": true,
                         "body": {"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "settings-copy", "annotations": {"copiedAt": copied_at}},
                                  "data": {"color": "blue"}}});
    let episode = json!({
        "reconcile": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "settings",
                      "object": {"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": "settings", "namespace": "ns"}, "data": {"color": "blue"}},
                      "attempt": 0},
        "calls": [{"kube": {"request": request, "response": response}}],
        "outcome": {"result": {"requeueAfterMs": 60000}}});
    let deleted = json!({
        "reconcile": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "settings",
                      "absentReason": "deleted", "attempt": 0},
        "calls": [], "outcome": {"result": {}}});
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("copier.jsonl");
    std::fs::write(&path, format!("{header}\n{episode}\n{deleted}\n")).unwrap();
    path
}

fn applied() -> Value {
    json!({"ok": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings-copy"}}})
}

/// The panic message of a replay that is expected to fail.
fn failure_of(path: PathBuf) -> String {
    let outcome = std::panic::catch_unwind(|| {
        testing::replay(&path, wasm_operator_init, wasm_operator_reconcile)
    });
    let payload = outcome.expect_err("the replay should have failed");
    payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_recording_of_the_same_operator_replays_whatever_the_time() {
    testing::replay(
        tape(json!({}), "2026-12-01T10:00:00Z", applied()),
        wasm_operator_init,
        wasm_operator_reconcile,
    );
}

#[test]
fn a_changed_operator_fails_with_a_diff_of_the_request() {
    let message = failure_of(tape(
        json!({"suffix": "twin"}),
        "2026-12-01T10:00:00Z",
        applied(),
    ));
    assert!(
        message.contains("the operator differs from the recording"),
        "{message}"
    );
    assert!(
        message.contains("reconcile 1 (ns/settings): host call 1 differs"),
        "{message}"
    );
    assert!(
        message.contains("--- recorded") && message.contains("+++ replayed"),
        "{message}"
    );
    let line = |sign: char, text: &str| {
        message
            .lines()
            .any(|line| line.starts_with(sign) && line.contains(text))
    };
    assert!(
        line('-', "\"settings-copy\"") && line('+', "\"settings-twin\""),
        "the diff shows the renamed copy: {message}"
    );
}

#[test]
fn an_answer_that_makes_the_operator_fail_must_fail_the_same_way() {
    let refused = serde_json::to_value(testing::api_error(
        403,
        "Forbidden",
        "configmaps is forbidden",
    ))
    .unwrap();
    let message = failure_of(tape(json!({}), "2026-12-01T10:00:00Z", refused));
    assert!(
        message.contains("reconcile 1 (ns/settings): the outcome differs"),
        "{message}"
    );
    assert!(
        message.contains("applying the copy: configmaps is forbidden"),
        "the replayed error is shown: {message}"
    );
}
