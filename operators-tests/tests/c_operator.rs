//! The C example (operators-c/configmap-summary), built from source with Zig's clang: it passes
//! the ABI's load-time validation as a reactor with exactly the imports it uses, and in the host,
//! against the real control plane, keeps a `<name>-summary` ConfigMap for every labelled
//! ConfigMap of its namespace, follows updates, ignores unlabelled ConfigMaps, and handles a
//! deleted source (a request without `object`) with an empty result while the garbage collector
//! removes the summary through its owner reference. Its JSON reader's own tests (json_test.c)
//! run here too, natively.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use operators_tests::{module_spec, Harness, PROMPTLY};
use serde_json::json;
use wasm_operator::operator::{OperatorSpec, ReconcileOutcome};
use wasm_operator::runtime::InstanceLimits;
use wasm_operator_abi::names::Capability;
use wasm_operator_test_support::{
    c_guest_module, target_dir, test_namespace, wait_for, workspace_root,
};

const EXAMPLE: &str = "operators-c/configmap-summary";
const LABEL: &str = "demo.wasm-operator.dev/summarize";

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// Waits until the summary of `source` has exactly `expected` as its data.
async fn wait_for_summary(
    config_maps: &Api<ConfigMap>,
    source: &str,
    expected: BTreeMap<String, String>,
) -> ConfigMap {
    let name = format!("{source}-summary");
    wait_for(
        &format!("{name} to hold {expected:?}"),
        PROMPTLY,
        || async {
            let summary = config_maps.get_opt(&name).await.ok()??;
            (summary.data.as_ref() == Some(&expected)).then_some(summary)
        },
    )
    .await
}

#[test]
fn the_json_reader_passes_its_tests_and_never_reads_past_its_input() {
    let Some(compiler) = std::env::var_os("WASM_OPERATOR_ZIG_CC") else {
        panic!("WASM_OPERATOR_ZIG_CC is not set: run `scripts/zig.sh install` and set it to the path it prints");
    };
    let out_dir = target_dir().join("c-guests");
    std::fs::create_dir_all(&out_dir).unwrap();
    let binary = out_dir.join(format!("json_test-{}", std::process::id()));
    let mut cc = std::ffi::OsString::from("CC=");
    cc.push(&compiler);
    let mut test = std::ffi::OsString::from("JSON_TEST=");
    test.push(&binary);
    let output = std::process::Command::new("make")
        .arg("--no-print-directory")
        .arg("-C")
        .arg(workspace_root().join(EXAMPLE))
        .args([cc, test])
        .arg("test")
        .output()
        .expect("running make test");
    let _ = std::fs::remove_file(&binary);
    assert!(
        output.status.success(),
        "json_test failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_c_module_is_a_valid_reactor_with_only_the_imports_it_uses() {
    let wasm = std::fs::read(c_guest_module(EXAMPLE)).expect("reading the C module");
    let info = wasm_operator_abi::validate(&wasm).unwrap_or_else(|error| {
        panic!("the C module does not pass `wasm-operator validate`:\n{error}")
    });
    assert_eq!(info.abi_version, 1);
    assert_eq!(info.capabilities, [Capability::Kubernetes, Capability::Log]);
    assert!(
        info.has_initialize,
        "-mexec-model=reactor exports _initialize"
    );
    let exports: Vec<&str> = info.exports.iter().map(|e| e.name.as_str()).collect();
    assert!(
        !exports.contains(&"_start"),
        "not a command module: {exports:?}"
    );
    // The C operator uses no WASI function at all (no printf, no clock): only the ABI.
    assert!(
        info.imports
            .iter()
            .all(|import| import.module == "wasm_operator"),
        "{:?}",
        info.imports
    );
    // 64 KiB of stack instead of Zig's default 16 MiB: it fits small memory limits.
    assert!(
        info.memory.initial_pages < 16,
        "initial memory {} pages",
        info.memory.initial_pages
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_operator_summarises_labelled_config_maps() {
    let harness = Harness::start().await;
    let client = harness.client.clone();
    let namespace = test_namespace(&client, "c-summary").await;
    let ns = namespace.name.as_str();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);

    let wasm = std::fs::read(c_guest_module(EXAMPLE)).expect("reading the C module");
    let operator = "c-summary";
    harness
        .load_spec(OperatorSpec {
            // A small cap, as for a small operator: the module must fit it.
            limits: InstanceLimits {
                max_memory_bytes: 2 << 20,
                call_deadline: Duration::from_secs(10),
            },
            ..module_spec(operator, wasm.into(), json!({ "namespace": ns }))
        })
        .await;

    let labelled = |name: &str, pairs: &[(&str, &str)]| ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(LABEL.to_string(), "true".to_string())])),
            ..ObjectMeta::default()
        },
        data: Some(data(pairs)),
        ..ConfigMap::default()
    };
    // Escapes (a quote, a newline) and a two-byte character in a value go through the JSON
    // reader: `bytes` counts decoded UTF-8 bytes (1 + 3 + 12). Keys may only hold
    // `[-._a-zA-Z0-9]`.
    let source = config_maps
        .create(
            &PostParams::default(),
            &labelled(
                "settings",
                &[("b", "two"), ("a", "1"), ("q.k", "ü \"quoted\"\n")],
            ),
        )
        .await
        .expect("creating the labelled ConfigMap");
    let plain = ConfigMap {
        metadata: ObjectMeta {
            name: Some("plain".into()),
            ..ObjectMeta::default()
        },
        data: Some(data(&[("x", "y")])),
        ..ConfigMap::default()
    };
    config_maps
        .create(&PostParams::default(), &plain)
        .await
        .expect("creating the unlabelled ConfigMap");

    let summary = wait_for_summary(
        &config_maps,
        "settings",
        data(&[
            ("source", "settings"),
            ("keys", "a,b,q.k"),
            ("count", "3"),
            ("bytes", "16"),
        ]),
    )
    .await;
    let owners = summary.metadata.owner_references.unwrap_or_default();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0].name, "settings");
    assert_eq!(Some(&owners[0].uid), source.metadata.uid.as_ref());
    assert!(
        summary
            .metadata
            .labels
            .unwrap_or_default()
            .get(LABEL)
            .is_none(),
        "the summary is not summarised itself"
    );

    // An update is followed; removed keys disappear (server-side apply of the whole summary).
    config_maps
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": null, "c": "three"}})),
        )
        .await
        .expect("updating the source");
    wait_for_summary(
        &config_maps,
        "settings",
        data(&[
            ("source", "settings"),
            ("keys", "b,c,q.k"),
            ("count", "3"),
            ("bytes", "20"),
        ]),
    )
    .await;

    // A source without data has an empty summary.
    config_maps
        .create(&PostParams::default(), &labelled("empty", &[]))
        .await
        .expect("creating an empty labelled ConfigMap");
    wait_for_summary(
        &config_maps,
        "empty",
        data(&[
            ("source", "empty"),
            ("keys", ""),
            ("count", "0"),
            ("bytes", "0"),
        ]),
    )
    .await;

    // Deleting the source: the operator gets a request without `object` and succeeds with no
    // host call; the garbage collector removes the summary.
    config_maps
        .delete("settings", &DeleteParams::default())
        .await
        .expect("deleting the source");
    let key = format!("{ns}/settings");
    wait_for("the reconcile of the deletion", PROMPTLY, || async {
        harness
            .reconciles_of(operator)
            .into_iter()
            .find(|r| r.key.to_string() == key && !r.had_object())
    })
    .await;
    wait_for("the summary to be garbage-collected", PROMPTLY, || async {
        config_maps
            .get_opt("settings-summary")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;

    let reconciles = harness.reconciles_of(operator);
    let failed: Vec<_> = reconciles
        .iter()
        .filter(|r| matches!(r.outcome, ReconcileOutcome::Failed { .. }))
        .collect();
    assert!(failed.is_empty(), "no reconcile failed: {failed:?}");
    assert!(
        reconciles
            .iter()
            .all(|r| r.key.to_string() != format!("{ns}/plain")),
        "the unlabelled ConfigMap is not reconciled"
    );
    assert!(
        config_maps
            .get_opt("plain-summary")
            .await
            .unwrap()
            .is_none(),
        "the unlabelled ConfigMap has no summary"
    );
    harness.stop().await;
}
