//! Offline replay: `wasm-operator run --record DIR` against the real API server writes a tape of
//! an operator's reconciles and host calls; `wasm-operator test MODULE --replay TAPE` passes
//! for the same module and fails, with a diff, for a changed one.
mod e2e_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use kube::api::DeleteParams;
use serde_json::json;
use wasm_operator_test_support::{control_plane, guest_module, test_namespace, wait_for};

use e2e_support::{
    create_widget, ensure_widget_crd, wait_for_config_map, widgets, GRANTS_HTTP_ONLY, PROMPTLY,
};

fn wasm_operator() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wasm-operator"))
}

/// Starts `run` with the configmapper guest, recording into `record`; returns once it serves.
fn start_recording_host(dir: &Path, record: &Path, module: &Path, namespace: &str) -> Child {
    let config = dir.join("run.yaml");
    std::fs::write(
        &config,
        format!(
            "metricsAddr: 127.0.0.1:0\ncacheDir: modules\nstateDir: state\noperators:\n  - name: mapper\n    module: {}\n    allowHttp: [{GRANTS_HTTP_ONLY}]\n    config: {{namespace: {namespace}}}\n",
            module.display()
        ),
    )
    .unwrap();
    let mut child = wasm_operator()
        .args(["run", "--config"])
        .arg(&config)
        .arg("--kubeconfig")
        .arg(control_plane().kubeconfig_path())
        .arg("--record")
        .arg(record)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting wasm-operator run");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut log = Vec::new();
    // The host says it is ready once every operator was loaded or refused.
    while !log
        .last()
        .is_some_and(|line: &String| line.contains(" ready"))
    {
        let line = lines
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("the host exited:\n{}", log.join("\n")));
        log.push(line);
    }
    assert!(
        log.iter().any(|line| line.contains("operator loaded")),
        "the operator did not load:\n{}",
        log.join("\n")
    );
    // Keep reading so the host never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    child
}

fn replay(module: &Path, tape: &Path) -> Output {
    wasm_operator()
        .arg("test")
        .arg(module)
        .arg("--replay")
        .arg(tape)
        .env("XDG_CACHE_HOME", tape.parent().unwrap())
        .output()
        .expect("running wasm-operator test")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_run_replays_offline_and_a_changed_operator_fails_with_a_diff() {
    let client = control_plane().client().await;
    ensure_widget_crd(&client).await;
    let namespace = test_namespace(&client, "replay").await;
    let ns = namespace.name.as_str();
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("tapes");
    let module = guest_module("test-guest-configmapper");
    let mut host = start_recording_host(dir.path(), &record, &module, ns);

    create_widget(&client, ns, "taped", json!({"data": {"color": "blue"}})).await;
    wait_for_config_map(&client, ns, "taped-config", "the first reconcile", |data| {
        data.contains_key("color")
    })
    .await;
    widgets(&client, ns)
        .delete("taped", &DeleteParams::default())
        .await
        .unwrap();
    let tape = record.join("mapper.jsonl");
    // The deletion's reconcile deletes the ConfigMap; its line is on the tape once it returned.
    wait_for("the deletion's reconcile on the tape", PROMPTLY, || {
        let text = std::fs::read_to_string(&tape).unwrap_or_default();
        async move { text.contains(r#""absentReason":"deleted""#).then_some(()) }
    })
    .await;
    Command::new("kill")
        .args(["-TERM", &host.id().to_string()])
        .status()
        .unwrap();
    wait_for("the host to exit", Duration::from_secs(15), || {
        let exited = host.try_wait().unwrap();
        async move { exited }
    })
    .await;

    let same = replay(&module, &tape);
    let stdout = String::from_utf8_lossy(&same.stdout);
    let stderr = String::from_utf8_lossy(&same.stderr);
    assert!(
        same.status.success(),
        "the recorded module must replay: {stdout}\n{stderr}"
    );
    assert!(stdout.contains("as recorded"), "{stdout}");

    // The same operator, changed: the status field it writes is renamed.
    let wasm = std::fs::read(&module).unwrap();
    let (from, to) = (b"reconciles".as_slice(), b"reconcileZ".as_slice());
    let mut changed = wasm.clone();
    let mut renamed = 0;
    for start in 0..changed.len().saturating_sub(from.len()) {
        if &changed[start..start + from.len()] == from {
            changed[start..start + from.len()].copy_from_slice(to);
            renamed += 1;
        }
    }
    assert!(renamed > 0, "the guest names its status field reconciles");
    let changed_module = dir.path().join("changed.wasm");
    std::fs::write(&changed_module, changed).unwrap();
    let differs = replay(&changed_module, &tape);
    let stderr = String::from_utf8_lossy(&differs.stderr);
    assert_eq!(differs.status.code(), Some(1), "{stderr}");
    for expected in [
        "differs from the recording",
        "reconcile 1 (",
        "differs",
        "--- recorded",
        "+++ replayed",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    let changed_line = |sign: char, field: &str| {
        stderr
            .lines()
            .any(|line| line.starts_with(sign) && line.contains(&format!("\"{field}\"")))
    };
    assert!(
        changed_line('-', "reconciles") && changed_line('+', "reconcileZ"),
        "the diff shows the renamed field:\n{stderr}"
    );
}
