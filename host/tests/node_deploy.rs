//! The deploy path on a real node: the host's image built from this checkout's binary
//! (scripts/image.sh) and imported into the node, then installed exactly as docs/deploy.md says,
//! once with the kustomize manifests and once with the Helm chart. Each installation must: bring
//! both replicas to Ready through their real readiness probes, run the webapp example from a
//! ConfigMap in exactly one replica, the holder of its shard's Lease, acting as its own
//! ServiceAccount (impersonation from inside the pod, in-cluster config and the mounted token),
//! swap it out onto that pod's volume and back in, serve metrics from the pod, and survive
//! `kubectl delete pod` of that replica.
//!
//! These tests need a node (`scripts/node.sh`, `make test-node`); `make test` starts one for
//! them and runs them last: `cargo test --test node_deploy -- --ignored`.
mod cluster_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::Mutex;
use wasm_operator::cluster::shards::assignment::assign;
use wasm_operator::cluster::shards::shard_of;
use wasm_operator::cluster::{operator_name, WasmOperator};
use wasm_operator_test_support::{control_plane, guest_module, wait_for, workspace_root};

use cluster_support::processes::sum_of_metric;
use cluster_support::{phase, wait_for_event, wait_for_wasm_operator};

/// Where the host runs, as deploy/default and the chart name it.
const HOST_NAMESPACE: &str = "wasm-operator-system";
/// deploy/examples/webapp's namespace.
const DEMO_NAMESPACE: &str = "webapp-demo";
/// The shards of the manifests (`--shards=8`).
const SHARDS: u32 = 8;
/// The Lease duration of the manifests (`--lease-duration=15s`).
const LEASE_DURATION: Duration = Duration::from_secs(15);
/// Pods start in seconds here; the bound covers a loaded machine.
const POD_STARTUP: Duration = Duration::from_secs(180);

/// Both installations use the same cluster-wide names, so they take turns.
static INSTALLATIONS: Mutex<()> = Mutex::const_new(());

#[tokio::test]
#[ignore = "needs a node: make test-node"]
async fn kustomize_install_runs_the_webapp_example_and_fails_over() {
    let _turn = INSTALLATIONS.lock().await;
    import_host_image();
    clean_slate().await;
    kubectl(&["apply", "-k", "deploy/default"]);
    exercise_installation().await;
    uninstall(&["delete", "-k", "deploy/default"]).await;
}

#[tokio::test]
#[ignore = "needs a node: make test-node"]
async fn helm_install_runs_the_webapp_example_and_fails_over() {
    let _turn = INSTALLATIONS.lock().await;
    import_host_image();
    clean_slate().await;
    // As docs/deploy.md says: the namespace first, enforcing the restricted Pod Security level
    // (the chart does not render it), then the chart.
    kubectl(&["create", "namespace", HOST_NAMESPACE]);
    kubectl(&[
        "label",
        "namespace",
        HOST_NAMESPACE,
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    run(helm().args([
        "install",
        "wasm-operator",
        "deploy/helm/wasm-operator",
        "--namespace",
        HOST_NAMESPACE,
        "--set",
        "image.repository=wasm-operator",
        "--set",
        "image.tag=dev",
        "--wait",
        "--timeout",
        "3m",
    ]));
    exercise_installation().await;
    run(helm().args([
        "uninstall",
        "wasm-operator",
        "--namespace",
        HOST_NAMESPACE,
        "--wait",
    ]));
    // Helm leaves the namespace and the CRD it installed from crds/.
    uninstall(&["delete", "namespace", HOST_NAMESPACE]).await;
    kubectl(&[
        "delete",
        "-f",
        "deploy/helm/wasm-operator/crds/wasmoperator.yaml",
    ]);
}

#[test]
#[ignore = "runs with the node tests (Helm is built for them): make test-node"]
fn the_chart_lints_and_renders_objects_the_api_server_accepts() {
    run(helm().args(["lint", "--strict", "deploy/helm/wasm-operator"]));
    for values in [
        vec![],
        vec![
            "--set",
            "replicas=3",
            "--set",
            "egress.allowNetworks={10.96.0.0/12}",
            "--set",
            "swap.memoryBudget=128Mi",
            "--set",
            "metrics.service.enabled=true",
            "--set",
            "swap.sharedStateClaim=wasm-operator-state",
        ],
    ] {
        let rendered = run(helm().args(
            [
                "template",
                "wasm-operator",
                "deploy/helm/wasm-operator",
                "--namespace",
                "default",
            ]
            .into_iter()
            .chain(values.iter().copied()),
        ));
        let path =
            std::env::temp_dir().join(format!("wasm-operator-chart-{}.yaml", std::process::id()));
        std::fs::write(&path, rendered).unwrap();
        kubectl(&["apply", "--dry-run=server", "-f", path.to_str().unwrap()]);
        std::fs::remove_file(&path).unwrap();
    }
    // With its defaults the chart runs the host exactly as deploy/default does: the same pod
    // template and the same RBAC rules.
    let chart = objects(&run(helm().args([
        "template",
        "wasm-operator",
        "deploy/helm/wasm-operator",
        "--namespace",
        HOST_NAMESPACE,
    ])));
    let kustomize = objects(&kubectl(&["kustomize", "deploy/default"]));
    for (kind, name, field) in [
        ("Deployment", "wasm-operator", "/spec/template"),
        ("ClusterRole", "wasm-operator-host", "/rules"),
        ("ClusterRole", "wasm-operator-watch", "/rules"),
        ("ClusterRole", "wasm-operator-impersonator", "/rules"),
        ("Role", "wasm-operator-leader-election", "/rules"),
    ] {
        let find = |objects: &[serde_json::Value]| {
            objects
                .iter()
                .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
                .and_then(|o| o.pointer(field).cloned())
                .unwrap_or_else(|| panic!("no {kind} {name}"))
        };
        assert_eq!(find(&chart), find(&kustomize), "{kind} {name} {field}");
    }
}

/// The objects of a multi-document YAML stream.
fn objects(yaml: &str) -> Vec<serde_json::Value> {
    serde_saphyr::from_multiple::<Option<serde_json::Value>>(yaml)
        .expect("the manifests are YAML")
        .into_iter()
        .flatten()
        .filter(|value| value.is_object())
        .collect()
}

#[tokio::test]
#[ignore = "needs a node: make test-node"]
async fn a_pod_runs_and_answers_logs_and_exec_on_a_network_that_stays_local() {
    let client = control_plane().client().await;
    let namespace = wasm_operator_test_support::test_namespace(&client, "node-pod").await;
    let ns = namespace.name.as_str();
    kubectl(&[
        "-n",
        ns,
        "run",
        "hello",
        "--image=localhost/wasm-operator/busybox:1",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        "echo hello from the node; sleep 3600",
    ]);
    kubectl(&[
        "-n",
        ns,
        "wait",
        "--for=condition=Ready",
        "pod/hello",
        "--timeout=180s",
    ]);
    let log = kubectl(&["-n", ns, "logs", "hello"]);
    assert_eq!(log.trim(), "hello from the node");
    let hostname = kubectl(&["-n", ns, "exec", "hello", "--", "hostname"]);
    assert_eq!(hostname.trim(), "hello");
    // Routes: the pod network and the Service range, through the node; no default route, so
    // nothing from a pod can leave the machine.
    let routes = kubectl(&["-n", ns, "exec", "hello", "--", "cat", "/proc/net/route"]);
    let destinations: Vec<&str> = routes
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert!(
        !destinations.contains(&"00000000"),
        "a default route in the pod:\n{routes}"
    );
    assert!(
        destinations.contains(&"0000F40A"),
        "no route to 10.244.0.0/24:\n{routes}"
    );
    assert!(
        destinations.contains(&"0000600A"),
        "no route to 10.96.0.0/16:\n{routes}"
    );
    kubectl(&[
        "-n",
        ns,
        "delete",
        "pod",
        "hello",
        "--wait=true",
        "--timeout=120s",
    ]);
}

/// What the tests check of an installation: the host's pods, the replica that runs the webapp
/// example (the holder of its shard's Lease), the example reconciling, swapping on that pod's
/// volume and failing over to another replica. Leaves the example uninstalled.
async fn exercise_installation() {
    let _on_failure = HostStateOnFailure;
    let client = control_plane().client().await;
    wait_for_rollout();
    let replicas = ready_replicas(&client).await;

    install_webapp_example();
    // Where the shard assignment puts it once both replicas are members (a replica that
    // started first may hold every shard for a moment).
    let assigned = assigned_replica(&replicas);
    let operator = wait_for_operator(
        &client,
        "the webapp operator to run where it is assigned",
        |o| phase(o) == "Idle" && host_of(o) == Some(assigned.as_str()),
    )
    .await;
    let (runner, other) = runner_and_other(&replicas, &operator);
    assert_eq!(
        shard_holder(&client).await.as_deref(),
        Some(runner.name.as_str())
    );
    // In-cluster configuration: the `kubernetes` Service's address, the mounted token.
    let log = kubectl(&["-n", HOST_NAMESPACE, "logs", &runner.name]);
    assert!(
        log.contains("\"url\":\"https://10.96.0.1:443/\""),
        "runner's log:\n{log}"
    );
    assert!(log.contains("took the shard over"), "runner's log:\n{log}");
    create_webapp(&client, "shop").await;
    wait_for_webapp_reconciled(&client, "shop").await;
    // The host's own account may not create Deployments: the operator wrote as its own.
    assert!(
        !may_create_deployments(
            &client,
            "system:serviceaccount:wasm-operator-system:wasm-operator"
        )
        .await
    );
    assert!(may_create_deployments(&client, "system:serviceaccount:webapp-demo:webapp").await);

    // Swap out onto the pod's emptyDir (seen from the node's side of the volume), and back in.
    let patch = json!({"spec": {"swap": {"afterIdle": "1s"}}});
    Api::<WasmOperator>::namespaced(client.clone(), DEMO_NAMESPACE)
        .patch("webapp", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let swapped = wait_for_operator(&client, "the webapp operator to swap out", |o| {
        phase(o) == "Swapped"
    })
    .await;
    // The snapshot is on the volume of the replica that swapped it out.
    assert_eq!(
        host_of(&swapped),
        Some(runner.name.as_str()),
        "the operator moved"
    );
    let snapshots = wait_for(
        "a snapshot on the running replica's state volume",
        POD_STARTUP,
        || async {
            let files = snapshot_files(&runner.uid);
            (!files.is_empty()).then_some(files)
        },
    )
    .await;
    assert!(
        snapshots.iter().all(|f| f.metadata().unwrap().len() > 0),
        "{snapshots:?}"
    );
    create_webapp(&client, "blog").await;
    wait_for_webapp_reconciled(&client, "blog").await;
    wait_for_event(&client, DEMO_NAMESPACE, "webapp", "SwappedIn").await;
    let metrics = scrape_metrics(&runner.ip).await;
    for name in [
        "wasm_operator_swap_outs_total",
        "wasm_operator_swap_ins_total",
        "wasm_operator_reconciles_total",
    ] {
        let value = sum_of_metric(&metrics, name, "");
        assert!(value >= 1.0, "{name} = {value}\n{metrics}");
    }
    // The other replica runs nothing: its shards hold no WasmOperator. (It may have run the
    // operator before: a shard moves when a replica joins.)
    let metrics = scrape_metrics(&other.ip).await;
    assert_eq!(
        sum_of_metric(&metrics, "wasm_operator_operators", ""),
        0.0,
        "{metrics}"
    );

    // Failover: the running replica's pod is deleted; it releases its Leases on SIGTERM and
    // the shard's new owner takes over within the Lease duration (at once, normally). That is
    // the other replica, or the pod the ReplicaSet starts in the deleted one's place if it
    // joined first: both are correct.
    let deleted_at = Instant::now();
    kubectl(&[
        "-n",
        HOST_NAMESPACE,
        "delete",
        "pod",
        &runner.name,
        "--wait=false",
    ]);
    let new_runner = wait_for(
        "another replica to take the shard's Lease over",
        LEASE_DURATION + Duration::from_secs(10),
        || async {
            let holder = shard_holder(&client).await?;
            (holder != runner.name).then_some(holder)
        },
    )
    .await;
    let takeover = deleted_at.elapsed();
    assert!(takeover <= LEASE_DURATION, "takeover took {takeover:?}");
    println!(
        "{new_runner} took the shard over {takeover:?} after {}'s pod was deleted (the other \
         replica was {})",
        runner.name, other.name
    );
    // The replacement pod may join meanwhile and take the shard on: anywhere but the deleted
    // pod is right.
    wait_for_operator(
        &client,
        "the webapp operator to run in another replica",
        |o| {
            host_of(o).is_some_and(|host| host != runner.name)
                && matches!(phase(o), "Idle" | "Swapped")
        },
    )
    .await;
    create_webapp(&client, "cart").await;
    wait_for_webapp_reconciled(&client, "cart").await;
    // The deleted pod's replacement is Ready; the operator still runs in one replica only.
    wait_for_rollout();
    let replicas = ready_replicas(&client).await;
    let assigned = assigned_replica(&replicas);
    let operator = wait_for_operator(
        &client,
        "the webapp operator to settle where it is assigned",
        |o| matches!(phase(o), "Idle" | "Swapped") && host_of(o) == Some(assigned.as_str()),
    )
    .await;
    let (runner, other) = runner_and_other(&replicas, &operator);
    assert_eq!(
        shard_holder(&client).await.as_deref(),
        Some(runner.name.as_str())
    );
    let metrics = scrape_metrics(&other.ip).await;
    assert_eq!(
        sum_of_metric(&metrics, "wasm_operator_operators", ""),
        0.0,
        "{metrics}"
    );

    uninstall_webapp_example(&client).await;
}

/// The replica the shard assignment gives the webapp example's shard when `replicas` are the
/// members.
fn assigned_replica(replicas: &[HostPod]) -> String {
    let members: Vec<String> = replicas.iter().map(|pod| pod.name.clone()).collect();
    let shard = shard_of(&operator_name(DEMO_NAMESPACE, "webapp"), SHARDS);
    assign(&members, SHARDS)[shard as usize].to_string()
}

/// The replica `operator`'s status names as running it, and the other one.
fn runner_and_other(replicas: &[HostPod], operator: &WasmOperator) -> (HostPod, HostPod) {
    let (running, others): (Vec<HostPod>, Vec<HostPod>) = replicas
        .iter()
        .cloned()
        .partition(|pod| host_of(operator) == Some(pod.name.as_str()));
    match (running.as_slice(), others.as_slice()) {
        ([runner], [other]) => (runner.clone(), other.clone()),
        _ => panic!("{:?} runs on none of {replicas:?}", host_of(operator)),
    }
}

/// Prints what the host's replicas were doing (their logs, the Lease, the WasmOperators'
/// status) when a check of an installation fails: a failure on a loaded CI machine is then
/// explained by its own output.
struct HostStateOnFailure;

impl Drop for HostStateOnFailure {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let show = |args: &[&str]| {
            print_output(
                Command::new("kubectl")
                    .current_dir(workspace_root())
                    .env("KUBECONFIG", control_plane().kubeconfig_path())
                    .args(args),
            )
        };
        show(&["-n", HOST_NAMESPACE, "get", "pods,leases", "-o", "wide"]);
        // Every pod's address, and the node's side of the pod network: a replica that cannot
        // reach the API server or be reached shows up here (two pods with one address, a
        // neighbour entry with another pod's MAC).
        show(&["get", "pods", "-A", "-o", "wide"]);
        let node = |program: &str, args: &[&str]| print_output(Command::new(program).args(args));
        node("ip", &["-4", "neigh", "show", "dev", "wop0"]);
        node("bridge", &["fdb", "show", "br", "wop0"]);
        // The replicas' processes as the node sees them: each thread's state and where it
        // waits in the kernel, and their TCP connections (queues, retransmits).
        node(
            "sh",
            &[
                "-c",
                "for pid in $(pgrep -f 'wasm-operator cluster'); do \
                 echo \"pid $pid: $(tr '\\0' ' ' < /proc/$pid/cmdline | cut -c1-80)\"; \
                 for task in /proc/$pid/task/*; do \
                 echo \"  $(cat $task/comm) $(cut -d' ' -f3 $task/stat) $(cat $task/wchan)\"; done; \
                 nsenter -t $pid -n ss -tnpi; done",
            ],
        );
        if let Ok(dir) = std::env::var("WASM_OPERATOR_NODE_DIR") {
            node("grep", &["-r", ".", &format!("{dir}/cni/ipam")]);
        }
        show(&["get", "wasmoperators", "-A", "-o", "yaml"]);
        // Why a replica restarted (last state, probe failures), and what it logged before.
        show(&["-n", HOST_NAMESPACE, "describe", "pods"]);
        let logs = [
            "-n",
            HOST_NAMESPACE,
            "logs",
            "-l",
            "app.kubernetes.io/name=wasm-operator",
            "--prefix",
            "--tail=-1",
        ];
        show(&[&logs[..], &["--previous"]].concat());
        show(&logs);
    }
}

/// Runs `command` and prints what it wrote under its command line; never panics (it runs while
/// a test is already failing).
fn print_output(command: &mut Command) {
    let line = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    match command.output() {
        Ok(output) => eprintln!(
            "== {line}\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => eprintln!("== {line}: {error}"),
    }
}

/// The Deployment's pods are all updated and available (`kubectl rollout status`, as the docs say).
fn wait_for_rollout() {
    kubectl(&[
        "-n",
        HOST_NAMESPACE,
        "rollout",
        "status",
        "deployment/wasm-operator",
        "--timeout=180s",
    ]);
}

/// Builds the image from the binary under test and imports it into the node, once per process.
fn import_host_image() {
    static IMPORTED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    IMPORTED.get_or_init(|| {
        let out =
            std::env::temp_dir().join(format!("wasm-operator-image-{}.tar", std::process::id()));
        let out = out.to_str().unwrap();
        let binary = env!("CARGO_BIN_EXE_wasm-operator");
        script(&["scripts/image.sh", "--binary", binary, "--out", out]);
        script(&["scripts/node.sh", "import", out]);
        std::fs::remove_file(out).unwrap();
    });
}

/// A helm command (built once by scripts/helm.sh) for the test control plane, run from the
/// repository root.
fn helm() -> Command {
    static HELM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let binary = HELM.get_or_init(|| {
        let output = script(&["scripts/helm.sh"]);
        PathBuf::from(
            output
                .lines()
                .last()
                .expect("scripts/helm.sh printed the helm binary's path"),
        )
    });
    let mut command = Command::new(binary);
    command
        .current_dir(workspace_root())
        .env("KUBECONFIG", control_plane().kubeconfig_path());
    command
}

/// deploy/examples/webapp as docs/deploy.md installs it, with the module built from this checkout.
fn install_webapp_example() {
    kubectl(&["apply", "-f", "crds/webapp.yaml"]);
    kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/webapps.demo.wasm-operator.dev",
        "--timeout=60s",
    ]);
    kubectl(&["create", "namespace", DEMO_NAMESPACE]);
    let module = guest_module("operator-webapp");
    let from_file = format!("--from-file=webapp.wasm={}", module.display());
    kubectl(&[
        "-n",
        DEMO_NAMESPACE,
        "create",
        "configmap",
        "webapp-module",
        &from_file,
    ]);
    kubectl(&["apply", "-k", "deploy/examples/webapp"]);
}

/// Removes the example as docs/deploy.md's Uninstall says: WebApps first (their finalizers need
/// the operator), then the WasmOperator, then the rest, waiting until the namespace is gone.
async fn uninstall_webapp_example(client: &Client) {
    kubectl(&[
        "-n",
        DEMO_NAMESPACE,
        "delete",
        "webapps",
        "--all",
        "--timeout=120s",
    ]);
    kubectl(&[
        "delete",
        "wasmoperators",
        "--all",
        "--all-namespaces",
        "--timeout=120s",
    ]);
    kubectl(&[
        "delete",
        "-k",
        "deploy/examples/webapp",
        "--ignore-not-found",
        "--timeout=120s",
    ]);
    wait_for_namespace_gone(client, DEMO_NAMESPACE).await;
}

/// Removes what an earlier, failed run on the same cluster left: the host first, its
/// cluster-wide objects included (the chart's have the same names), so that no operator puts a
/// finalizer back; then the example, whose WebApps' finalizers no operator is left to remove.
async fn clean_slate() {
    let client = control_plane().client().await;
    kubectl(&[
        "delete",
        "-k",
        "deploy/default",
        "--ignore-not-found",
        "--wait=false",
    ]);
    wait_for_namespace_gone(&client, HOST_NAMESPACE).await;
    let webapps: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), DEMO_NAMESPACE, &webapp_resource());
    if let Ok(list) = webapps.list(&ListParams::default()).await {
        let patch = json!({"metadata": {"finalizers": null}});
        for webapp in list.items {
            let name = webapp.metadata.name.unwrap();
            webapps
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
    }
    kubectl(&[
        "delete",
        "namespace",
        DEMO_NAMESPACE,
        "--ignore-not-found",
        "--wait=false",
    ]);
    wait_for_namespace_gone(&client, DEMO_NAMESPACE).await;
}

async fn uninstall(args: &[&str]) {
    let client = control_plane().client().await;
    kubectl(args);
    wait_for_namespace_gone(&client, HOST_NAMESPACE).await;
}

async fn wait_for_namespace_gone(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    wait_for(
        &format!("namespace {name} to be deleted"),
        POD_STARTUP,
        || async { namespaces.get_opt(name).await.ok()?.is_none().then_some(()) },
    )
    .await;
}

async fn create_webapp(client: &Client, name: &str) {
    let webapps: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), DEMO_NAMESPACE, &webapp_resource());
    let webapp = serde_json::from_value(json!({
        "apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "WebApp",
        "metadata": {"name": name}, "spec": {"image": "nginx:1.27", "replicas": 1},
    }))
    .unwrap();
    webapps
        .create(&PostParams::default(), &webapp)
        .await
        .unwrap();
}

/// The webapp operator's work: a Deployment and a Service, and the WebApp's status written.
async fn wait_for_webapp_reconciled(client: &Client, name: &str) {
    let webapps: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), DEMO_NAMESPACE, &webapp_resource());
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), DEMO_NAMESPACE);
    let services: Api<Service> = Api::namespaced(client.clone(), DEMO_NAMESPACE);
    wait_for(
        &format!("WebApp {name} to be reconciled"),
        POD_STARTUP,
        || async {
            deployments.get_opt(name).await.ok()??;
            services.get_opt(name).await.ok()??;
            let webapp = webapps.get_opt(name).await.ok()??;
            (webapp.data["status"]["observedGeneration"] == json!(1)).then_some(())
        },
    )
    .await;
}

fn webapp_resource() -> kube::discovery::ApiResource {
    kube::discovery::ApiResource {
        group: "demo.wasm-operator.dev".into(),
        version: "v1alpha1".into(),
        api_version: "demo.wasm-operator.dev/v1alpha1".into(),
        kind: "WebApp".into(),
        plural: "webapps".into(),
    }
}

async fn wait_for_operator(
    client: &Client,
    what: &str,
    check: impl Fn(&WasmOperator) -> bool,
) -> WasmOperator {
    wait_for_wasm_operator(client, DEMO_NAMESPACE, "webapp", what, check).await
}

fn host_of(operator: &WasmOperator) -> Option<&str> {
    operator.status.as_ref()?.host.as_deref()
}

async fn may_create_deployments(client: &Client, user: &str) -> bool {
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.into()),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(DEMO_NAMESPACE.into()),
                verb: Some("create".into()),
                group: Some("apps".into()),
                resource: Some("deployments".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = reviews
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    answer.status.map(|s| s.allowed).unwrap_or(false)
}

#[derive(Debug, Clone)]
struct HostPod {
    name: String,
    uid: String,
    ip: String,
}

/// The host's pods that are Ready (their readiness probe answered) and not being deleted.
async fn host_pods(client: &Client) -> Vec<HostPod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), HOST_NAMESPACE);
    let list = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=wasm-operator"))
        .await
        .unwrap();
    list.items
        .into_iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter(|pod| {
            let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
            conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .map(|pod| HostPod {
            name: pod.metadata.name.clone().unwrap(),
            uid: pod.metadata.uid.clone().unwrap(),
            ip: pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .unwrap_or_default(),
        })
        .collect()
}

/// The two Ready replicas of the manifests.
async fn ready_replicas(client: &Client) -> Vec<HostPod> {
    wait_for("two Ready replicas", POD_STARTUP, || async {
        let pods = host_pods(client).await;
        (pods.len() == 2).then_some(pods)
    })
    .await
}

/// The holder of the Lease of the webapp example's shard.
async fn shard_holder(client: &Client) -> Option<String> {
    let shard = shard_of(&operator_name(DEMO_NAMESPACE, "webapp"), SHARDS);
    let leases: Api<Lease> = Api::namespaced(client.clone(), HOST_NAMESPACE);
    leases
        .get_opt(&format!("wasm-operator-{shard}"))
        .await
        .ok()??
        .spec?
        .holder_identity
        .filter(|holder| !holder.is_empty())
}

/// The snapshot files on a pod's `state` emptyDir, read from the node's side.
fn snapshot_files(pod_uid: &str) -> Vec<PathBuf> {
    let node_dir = std::env::var("WASM_OPERATOR_NODE_DIR")
        .expect("WASM_OPERATOR_NODE_DIR names the node's directory");
    let dir = Path::new(&node_dir)
        .join("kubelet/pods")
        .join(pod_uid)
        .join("volumes/kubernetes.io~empty-dir/state/snapshots");
    // One directory per operator, holding its layers and its resume point.
    std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .flat_map(|operator| {
            std::fs::read_dir(operator.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "wosnap")
        })
        .collect()
}

async fn scrape_metrics(pod_ip: &str) -> String {
    let url = format!("http://{pod_ip}:9100/metrics");
    let response = reqwest::get(&url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response.text().await.unwrap()
}

/// Runs kubectl against the test control plane from the repository root; panics with its
/// output if it fails.
fn kubectl(args: &[&str]) -> String {
    run(Command::new("kubectl")
        .current_dir(workspace_root())
        .env("KUBECONFIG", control_plane().kubeconfig_path())
        .args(args))
}

fn script(args: &[&str]) -> String {
    run(Command::new("bash")
        .current_dir(workspace_root())
        .args(args))
}

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
