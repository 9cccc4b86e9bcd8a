//! `wasm-operator run` as users start it: from a config file, serving probes and metrics,
//! reconciling, and shutting down cleanly on SIGTERM.
mod e2e_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;
use wasm_operator_test_support::{control_plane, guest_module, test_namespace, wait_for};

use e2e_support::{
    create_widget, ensure_widget_crd, wait_for_config_map, GRANTS_HTTP_ONLY, PROMPTLY,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_probes_reconciles_and_stops_gracefully_on_sigterm() {
    let client = control_plane().client().await;
    ensure_widget_crd(&client).await;
    let namespace = test_namespace(&client, "cli").await;
    let ns = namespace.name.as_str();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("run.yaml");
    let module = guest_module("test-guest-configmapper");
    std::fs::write(
        &config,
        format!(
            "metricsAddr: 127.0.0.1:0\ncacheDir: modules\nshutdownDeadline: 5s\noperators:\n  - name: mapper\n    module: {}\n    allowHttp: [{GRANTS_HTTP_ONLY}]\n    config: {{namespace: {ns}}}\n",
            module.display()
        ),
    )
    .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_wasm-operator"))
        .args(["run", "--config"])
        .arg(&config)
        .arg("--kubeconfig")
        .arg(control_plane().kubeconfig_path())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting wasm-operator run");
    let (lines_sender, lines) = mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_sender.send(line);
        }
    });
    let mut log = Vec::new();
    let next_line = |log: &mut Vec<String>| -> Option<String> {
        let line = lines.recv_timeout(PROMPTLY).ok()?;
        log.push(line.clone());
        Some(line)
    };

    let addr = loop {
        let line = next_line(&mut log)
            .unwrap_or_else(|| panic!("no metrics address logged:\n{}", log.join("\n")));
        if let Some(rest) = line.split("listening on ").nth(1) {
            let addr: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                .collect();
            break addr;
        }
    };
    let probe = |path: &'static str| {
        let url = format!("http://{addr}{path}");
        async move {
            reqwest::get(url)
                .await
                .ok()
                .map(|response| response.status().as_u16())
        }
    };
    assert_eq!(probe("/healthz").await, Some(200));
    wait_for("/readyz to answer 200", PROMPTLY, || async {
        (probe("/readyz").await == Some(200)).then_some(())
    })
    .await;

    create_widget(&client, ns, "from-cli", json!({"data": {"via": "cli"}})).await;
    wait_for_config_map(
        &client,
        ns,
        "from-cli-config",
        "the CLI-run operator to reconcile",
        |data| data.contains_key("via"),
    )
    .await;
    // The ConfigMap appears during the reconcile; the reconcile is counted when it returns.
    wait_for(
        "the reconcile to be counted in /metrics",
        PROMPTLY,
        || async {
            let metrics = reqwest::get(format!("http://{addr}/metrics"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            metrics
                .contains("wasm_operator_reconciles_total{operator=\"mapper\",result=\"success\"}")
                .then_some(())
        },
    )
    .await;

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = wait_for(
        "wasm-operator to exit after SIGTERM",
        Duration::from_secs(15),
        || {
            let exited = child.try_wait().unwrap();
            async move { exited }
        },
    )
    .await;
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(2)) {
        log.push(line);
    }
    assert!(
        exit.success(),
        "exit status {exit}; log:\n{}",
        log.join("\n")
    );
    let log = log.join("\n");
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("operator unloaded"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "standard error is a pipe, not a terminal: no colour codes in the log:\n{log}"
    );
}

#[test]
fn run_without_operators_exits_2_and_says_what_to_pass() {
    let output = Command::new(env!("CARGO_BIN_EXE_wasm-operator"))
        .args(["run"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--operator NAME=FILE.wasm"), "{stderr}");
}

#[test]
fn without_home_there_is_no_default_cache_or_state_directory_under_tmp() {
    // Precompiled code and snapshots must never land in a world-writable directory such as
    // /tmp: without HOME or XDG variables the host refuses to guess and says what to pass.
    let output = Command::new(env!("CARGO_BIN_EXE_wasm-operator"))
        .args(["run", "--operator", "x=/nonexistent/x.wasm"])
        .env_remove("HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("XDG_STATE_HOME")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("there is no default"), "{stderr}");
    assert!(
        stderr.contains("only the host's user can write"),
        "{stderr}"
    );
}
