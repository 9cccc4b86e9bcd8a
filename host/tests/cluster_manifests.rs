//! The deployment manifests are accepted by a real API server: `kubectl apply --dry-run=server`
//! of deploy/default and deploy/examples/webapp (schema, RBAC and CRD validation included).
mod cluster_support;

use std::process::Command;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use wasm_operator_test_support::{control_plane, workspace_root};

use cluster_support::ensure_crds;

fn dry_run(dir: &str) -> String {
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(control_plane().kubeconfig_path())
        .args(["apply", "--dry-run=server", "-k"])
        .arg(workspace_root().join(dir))
        .output()
        .expect("running kubectl");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "kubectl apply --dry-run=server -k {dir} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifests_pass_a_server_side_dry_run() {
    let client = control_plane().client().await;
    // A dry run creates nothing, so objects in a namespace that the same run would create are
    // refused; the namespaces exist first (empty), and the example's WasmOperator needs its CRD.
    ensure_crds(&client).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in ["wasm-operator-system", "webapp-demo"] {
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        match namespaces.create(&PostParams::default(), &namespace).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => panic!("creating namespace {name}: {error}"),
        }
    }
    let host = dry_run("deploy/default");
    for expected in [
        "customresourcedefinition.apiextensions.k8s.io/wasmoperators.wasm-operator.dev",
        "clusterrole.rbac.authorization.k8s.io/wasm-operator-host",
        "role.rbac.authorization.k8s.io/wasm-operator-leader-election",
        "deployment.apps/wasm-operator",
    ] {
        assert!(host.contains(expected), "{expected} missing from:\n{host}");
    }
    let example = dry_run("deploy/examples/webapp");
    assert!(
        example.contains("wasmoperator.wasm-operator.dev/webapp"),
        "{example}"
    );
}
