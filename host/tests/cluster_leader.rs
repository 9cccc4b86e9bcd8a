//! `wasm-operator cluster` as it runs in a pod: two replicas with the in-cluster environment
//! (KUBERNETES_SERVICE_HOST/PORT and a ServiceAccount token issued through the TokenRequest
//! API), the RBAC of deploy/default, and a 3 s Lease. Only the leader runs operators; killing
//! it hands over within the lease period; a clean stop releases the Lease.
mod cluster_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding, Subject};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use wasm_operator_test_support::{control_plane, test_namespace, wait_for, workspace_root};

use cluster_support::*;

const LEASE_DURATION: Duration = Duration::from_secs(3);

/// Applies the ClusterRoles of deploy/default/rbac.yaml and binds them, and its leader
/// election Role, to ServiceAccount `namespace/host` as the manifests do.
async fn grant_host_rbac(client: &Client, namespace: &str) {
    let text = std::fs::read_to_string(workspace_root().join("deploy/default/rbac.yaml")).unwrap();
    let subject = service_account(namespace, "host");
    let cluster_roles: Api<ClusterRole> = Api::all(client.clone());
    let roles: Api<Role> = Api::namespaced(client.clone(), namespace);
    for value in serde_saphyr::from_multiple::<serde_json::Value>(&text).unwrap() {
        match value["kind"].as_str() {
            Some("ClusterRole") => {
                let role: ClusterRole = serde_json::from_value(value).unwrap();
                let name = role.metadata.name.clone().unwrap();
                cluster_roles
                    .patch(
                        &name,
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&role),
                    )
                    .await
                    .unwrap();
                // Cluster-wide for the host's own needs and its watches; impersonation only
                // in this namespace, as the manifests bind it per tenant namespace.
                if name == "wasm-operator-impersonator" {
                    bind(client, namespace, "ClusterRole", &name, &subject).await;
                } else {
                    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
                    let binding = ClusterRoleBinding {
                        metadata: ObjectMeta {
                            name: Some(format!("{namespace}-{name}")),
                            ..Default::default()
                        },
                        role_ref: role_ref("ClusterRole", &name),
                        subjects: Some(vec![subject.clone()]),
                    };
                    bindings
                        .create(&PostParams::default(), &binding)
                        .await
                        .unwrap();
                }
            }
            Some("Role") => {
                let role: Role = serde_json::from_value(value).unwrap();
                let name = role.metadata.name.clone().unwrap();
                roles.create(&PostParams::default(), &role).await.unwrap();
                bind(client, namespace, "Role", &name, &subject).await;
            }
            _ => {}
        }
    }
}

async fn bind(client: &Client, namespace: &str, kind: &str, name: &str, subject: &Subject) {
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        role_ref: role_ref(kind, name),
        subjects: Some(vec![subject.clone()]),
    };
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

async fn delete_cluster_bindings(client: &Client, namespace: &str) {
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    for name in ["wasm-operator-host", "wasm-operator-watch"] {
        let _ = bindings
            .delete(&format!("{namespace}-{name}"), &DeleteParams::default())
            .await;
    }
}

/// What a pod gets mounted: a TokenRequest token, the cluster CA and the namespace; and the
/// API server's host and port.
async fn service_account_dir(client: &Client, namespace: &str, dir: &Path) -> (String, String) {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = accounts
        .create_token_request("host", &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token
        .expect("the API server issues a token");
    std::fs::write(dir.join("token"), token).unwrap();
    std::fs::write(dir.join("namespace"), namespace).unwrap();
    let kubeconfig =
        kube::config::Kubeconfig::read_from(control_plane().kubeconfig_path()).unwrap();
    let cluster = kubeconfig.clusters[0].cluster.clone().unwrap();
    let ca = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        // ByteString's serde form is base64.
        (Some(data), _) => {
            serde_json::from_value::<k8s_openapi::ByteString>(json!(data))
                .unwrap()
                .0
        }
        (None, Some(path)) => std::fs::read(path).unwrap(),
        _ => panic!("the control plane's kubeconfig has no CA"),
    };
    std::fs::write(dir.join("ca.crt"), ca).unwrap();
    let server = reqwest::Url::parse(&cluster.server.unwrap()).unwrap();
    (
        server.host_str().unwrap().to_string(),
        server.port_or_known_default().unwrap().to_string(),
    )
}

/// A host process; its log lines arrive on `lines`.
struct HostProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
    metrics_addr: String,
}

impl HostProcess {
    fn spawn(
        identity: &str,
        namespace: &str,
        sa_dir: &Path,
        server: &(String, String),
        cache: &Path,
    ) -> HostProcess {
        Self::spawn_with_lease(identity, namespace, sa_dir, server, cache, LEASE_DURATION)
    }

    fn spawn_with_lease(
        identity: &str,
        namespace: &str,
        sa_dir: &Path,
        server: &(String, String),
        cache: &Path,
        lease_duration: Duration,
    ) -> HostProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wasm-operator"))
            .args([
                "cluster",
                "--namespace",
                namespace,
                "--lease-name",
                "hosts",
                "--lease-duration",
            ])
            .arg(format!("{}s", lease_duration.as_secs()))
            .args(["--identity", identity, "--metrics-addr", "127.0.0.1:0"])
            .args([
                "--status-interval",
                "200ms",
                "--resync-interval",
                "2s",
                "--shutdown-deadline",
                "2s",
            ])
            .arg("--cache-dir")
            .arg(cache)
            .env_remove("KUBECONFIG")
            .env_remove("WASM_OPERATOR_KUBECONFIG")
            .env("HOME", cache)
            .env("KUBERNETES_SERVICE_HOST", &server.0)
            .env("KUBERNETES_SERVICE_PORT", &server.1)
            .env("WASM_OPERATOR_SERVICE_ACCOUNT_DIR", sa_dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting wasm-operator cluster");
        let (sender, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let mut host = HostProcess {
            child,
            lines,
            log: Vec::new(),
            metrics_addr: String::new(),
        };
        host.metrics_addr = loop {
            let line = host.next_line().unwrap_or_else(|| {
                panic!(
                    "{identity}: no metrics address logged:\n{}",
                    host.log.join("\n")
                )
            });
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
            }
        };
        host
    }

    fn next_line(&mut self) -> Option<String> {
        let line = self.lines.recv_timeout(PROMPTLY).ok()?;
        self.log.push(line.clone());
        Some(line)
    }

    fn drain(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
        self.log.join("\n")
    }

    /// Operators loaded in this host, from its `/metrics`.
    async fn operators(&self) -> Option<i64> {
        let text = reqwest::get(format!("http://{}/metrics", self.metrics_addr))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        Some(
            text.lines()
                .filter(|line| line.starts_with("wasm_operator_operators{"))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<i64>().ok())
                .sum(),
        )
    }

    async fn ready(&self) -> bool {
        matches!(reqwest::get(format!("http://{}/readyz", self.metrics_addr)).await, Ok(r) if r.status() == 200)
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn lease_holder(client: &Client, namespace: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    leases.get_opt("hosts").await.ok()??.spec?.holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_runs_operators_and_a_stopped_leader_hands_over() {
    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let namespace = test_namespace(&client, "cluster-leader").await;
    let registry = test_namespace(&client, "cluster-leader-registry").await;
    let ns = namespace.name.as_str();
    create_service_account(&client, ns, "host").await;
    grant_host_rbac(&client, ns).await;
    create_service_account(&client, ns, "webapp").await;
    grant(&client, ns, "webapp", ns, "webapp", webapp_rules(true)).await;
    grant_reads_everywhere(&client, ns, "webapp", WEBAPP_READS).await;
    grant(
        &client,
        &registry.name,
        "webapp-registry",
        ns,
        "webapp",
        vec![rule(
            "",
            &["configmaps"],
            &["get", "create", "update", "patch", "delete"],
        )],
    )
    .await;
    let module = webapp_module();
    put_module(&client, ns, "modules", &module).await;

    let dir = tempfile::tempdir().unwrap();
    let sa_dir = dir.path().join("serviceaccount");
    std::fs::create_dir_all(&sa_dir).unwrap();
    let server = service_account_dir(&client, ns, &sa_dir).await;
    let cache = dir.path().join("cache");

    let mut a = HostProcess::spawn("host-a", ns, &sa_dir, &server, &cache);
    wait_for("host-a to hold the Lease", PROMPTLY, || async {
        (lease_holder(&client, ns).await.as_deref() == Some("host-a")).then_some(())
    })
    .await;
    let mut b = HostProcess::spawn("host-b", ns, &sa_dir, &server, &cache);
    wait_for("host-b to be ready (standing by)", PROMPTLY, || async {
        b.ready().await.then_some(())
    })
    .await;

    create_wasm_operator(
        &client,
        ns,
        "webapp",
        webapp_from_config_map(&registry.name),
    )
    .await;
    wait_for_wasm_operator(
        &client,
        ns,
        "webapp",
        "host-a to run the operator",
        |object| {
            phase(object) == "Idle"
                && object.status.as_ref().and_then(|s| s.host.as_deref()) == Some("host-a")
        },
    )
    .await;
    assert_eq!(a.operators().await, Some(1), "{}", a.drain());
    assert_eq!(b.operators().await, Some(0), "{}", b.drain());

    // The operator acts as its ServiceAccount through the host's impersonation rights.
    let webapps: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &kube::discovery::ApiResource {
            group: "demo.wasm-operator.dev".into(),
            version: "v1alpha1".into(),
            api_version: "demo.wasm-operator.dev/v1alpha1".into(),
            kind: "WebApp".into(),
            plural: "webapps".into(),
        },
    );
    let webapp = serde_json::from_value(json!({
        "apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "WebApp",
        "metadata": {"name": "shop", "namespace": ns}, "spec": {"image": "nginx:1.27"},
    }))
    .unwrap();
    webapps
        .create(&PostParams::default(), &webapp)
        .await
        .unwrap();
    let entries: Api<ConfigMap> = Api::namespaced(client.clone(), &registry.name);
    let entry = format!("webapp-{ns}-shop");
    wait_for(
        "the registry entry written by the operator",
        PROMPTLY,
        || async { entries.get_opt(&entry).await.ok()?.map(|_| ()) },
    )
    .await;

    // Killed without releasing the Lease: host-b takes over once it expires.
    a.child.kill().unwrap();
    let killed_at = Instant::now();
    wait_for("host-b to take the Lease over", PROMPTLY, || async {
        (lease_holder(&client, ns).await.as_deref() == Some("host-b")).then_some(())
    })
    .await;
    let handover = killed_at.elapsed();
    // Expired after LEASE_DURATION at most, noticed within one retry period (a fifth of it).
    assert!(
        handover <= LEASE_DURATION + LEASE_DURATION / 3 + Duration::from_secs(1),
        "handover took {handover:?}"
    );
    wait_for_wasm_operator(
        &client,
        ns,
        "webapp",
        "host-b to run the operator",
        |object| {
            phase(object) == "Idle"
                && object.status.as_ref().and_then(|s| s.host.as_deref()) == Some("host-b")
        },
    )
    .await;
    assert_eq!(b.operators().await, Some(1), "{}", b.drain());
    eprintln!("lease handover after the leader was killed: {handover:?}");

    // A clean stop releases the Lease at once.
    let pid = b.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = b.child.wait().unwrap();
    assert!(
        status.success(),
        "host-b exited with {status}:\n{}",
        b.drain()
    );
    assert_eq!(lease_holder(&client, ns).await, None);
    delete_cluster_bindings(&client, ns).await;
}

/// When the line was logged (the text format starts with an RFC 3339 timestamp, possibly
/// coloured).
fn logged_at(line: &str) -> Option<k8s_openapi::jiff::Timestamp> {
    let mut plain = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An ANSI escape: skip to its final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain.split_whitespace().next()?.parse().ok()
}

/// Fencing: a leader cut off from the API server (its connection goes through a proxy the test
/// cuts) must have aborted every reconcile before another replica may take the Lease over. The
/// operator reconciles every 200 ms from the host's cache, so a partitioned leader that kept
/// its operators would go on reconciling; its log must show the last reconcile before it
/// aborted, and the abort before the new leader's acquireTime (the API server's view) and
/// before the new leader's first reconcile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_stops_reconciling_before_another_takes_over() {
    use cluster_support::proxy::CuttableProxy;
    use k8s_openapi::jiff::Timestamp;

    let client = control_plane().client().await;
    ensure_crds(&client).await;
    let namespace = test_namespace(&client, "cluster-fence").await;
    let ns = namespace.name.as_str();
    create_service_account(&client, ns, "host").await;
    grant_host_rbac(&client, ns).await;
    grant(
        &client,
        ns,
        "reads",
        ns,
        "default",
        vec![rule("", &["configmaps"], &["list", "watch"])],
    )
    .await;
    wait_for_access(&client, ns, "default", ("v1", "ConfigMap"), Some(ns), true).await;
    let module = std::fs::read(wasm_operator_test_support::guest_module(
        "test-guest-behaviours",
    ))
    .unwrap();
    put_module(&client, ns, "modules", &module).await;

    let dir = tempfile::tempdir().unwrap();
    let sa_dir = dir.path().join("serviceaccount");
    std::fs::create_dir_all(&sa_dir).unwrap();
    let server = service_account_dir(&client, ns, &sa_dir).await;
    let upstream: std::net::SocketAddr = format!("{}:{}", server.0, server.1).parse().unwrap();
    let proxy = CuttableProxy::start(upstream).await;
    let through_proxy = ("127.0.0.1".to_string(), proxy.addr.port().to_string());
    let cache = dir.path().join("cache");

    // Longer than the other test's: the 3 s margin between the old leader's abort and the
    // Lease's expiry must hold on a loaded machine.
    let lease = Duration::from_secs(6);
    let mut a = HostProcess::spawn_with_lease("host-a", ns, &sa_dir, &through_proxy, &cache, lease);
    wait_for("host-a to hold the Lease", PROMPTLY, || async {
        (lease_holder(&client, ns).await.as_deref() == Some("host-a")).then_some(())
    })
    .await;
    let mut b = HostProcess::spawn_with_lease("host-b", ns, &sa_dir, &server, &cache, lease);
    wait_for("host-b to be ready (standing by)", PROMPTLY, || async {
        b.ready().await.then_some(())
    })
    .await;
    create_wasm_operator(
        &client,
        ns,
        "ticker",
        json!({
            "module": {"configMap": {"name": "modules", "key": "webapp.wasm"}},
            "allowHttp": [GRANTS_HTTP_ONLY],
            "config": {
                "requeueAfterMs": 200,
                "registration": {"for": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": ns}},
            },
        }),
    )
    .await;
    let reconcile_line = |line: &str| line.contains("count=");
    wait_for("host-a to reconcile", PROMPTLY, || {
        let seen = {
            a.drain();
            a.log.iter().any(|line| reconcile_line(line))
        };
        std::future::ready(seen.then_some(()))
    })
    .await;

    proxy.cut();
    let cut_at = Timestamp::now();
    wait_for("host-b to take the Lease over", PROMPTLY, || async {
        (lease_holder(&client, ns).await.as_deref() == Some("host-b")).then_some(())
    })
    .await;
    wait_for("host-b to reconcile", PROMPTLY, || {
        let seen = {
            b.drain();
            b.log.iter().any(|line| reconcile_line(line))
        };
        std::future::ready(seen.then_some(()))
    })
    .await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    let acquired = leases
        .get("hosts")
        .await
        .unwrap()
        .spec
        .unwrap()
        .acquire_time
        .unwrap()
        .0;

    let log_a = a.drain();
    let aborted = a
        .log
        .iter()
        .find(|line| line.contains("every operator aborted"))
        .and_then(|line| logged_at(line))
        .unwrap_or_else(|| panic!("host-a never aborted its operators:\n{log_a}"));
    let last_a = a
        .log
        .iter()
        .filter(|line| reconcile_line(line))
        .filter_map(|line| logged_at(line))
        .max()
        .unwrap();
    let first_b = b
        .log
        .iter()
        .filter(|line| reconcile_line(line))
        .filter_map(|line| logged_at(line))
        .min()
        .unwrap();
    eprintln!(
        "cut {cut_at}; host-a last reconcile {last_a}, aborted {aborted}; \
         host-b acquired {acquired}, first reconcile {first_b}"
    );
    assert!(last_a <= aborted, "host-a reconciled after aborting");
    assert!(
        aborted < acquired,
        "host-a aborted at {aborted}, after host-b acquired the Lease at {acquired}"
    );
    assert!(last_a < first_b, "the two leaders' reconciles overlap");
    // The abort came at the renew deadline (half the lease), not at the lease's end.
    let stopped_after = aborted.duration_since(cut_at);
    assert!(
        stopped_after < k8s_openapi::jiff::SignedDuration::try_from(lease).unwrap(),
        "host-a stopped {stopped_after:?} after the cut"
    );
    delete_cluster_bindings(&client, ns).await;
}
