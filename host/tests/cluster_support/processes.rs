//! `wasm-operator cluster` as separate processes, as it runs in a pod: the in-cluster
//! environment (KUBERNETES_SERVICE_HOST/PORT and a ServiceAccount token issued through the
//! TokenRequest API), the RBAC of deploy/default, flags for a short Lease; and reading what
//! the processes log and serve.
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding, Subject};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use wasm_operator_test_support::{control_plane, workspace_root};

use super::{role_ref, service_account, FIELD_MANAGER, PROMPTLY};

/// Applies the ClusterRoles of deploy/default/rbac.yaml and binds them, and its leader
/// election Role, to ServiceAccount `namespace/host` as the manifests do.
pub async fn grant_host_rbac(client: &Client, namespace: &str) {
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

pub async fn delete_cluster_bindings(client: &Client, namespace: &str) {
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    for name in ["wasm-operator-host", "wasm-operator-watch"] {
        let _ = bindings
            .delete(&format!("{namespace}-{name}"), &DeleteParams::default())
            .await;
    }
}

/// What a pod gets mounted: a TokenRequest token, the cluster CA and the namespace; and the
/// API server's host and port.
pub async fn service_account_dir(client: &Client, namespace: &str, dir: &Path) -> (String, String) {
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
pub struct HostProcess {
    pub identity: String,
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub log: Vec<String>,
    pub metrics_addr: String,
}

impl HostProcess {
    /// Starts `wasm-operator cluster` as `identity`, scoped to `namespace`, talking to
    /// `server` with the ServiceAccount files in `sa_dir`; `extra` flags are appended. Returns
    /// once it logged its metrics address.
    pub fn spawn(
        identity: &str,
        namespace: &str,
        sa_dir: &Path,
        server: &(String, String),
        cache: &Path,
        lease_duration: Duration,
        extra: &[&str],
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
            .args(extra)
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
            identity: identity.to_string(),
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

    /// Stops the process with SIGTERM, as the kubelet does, and asserts it exits 0.
    pub fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let status = self.child.wait().unwrap();
        let log = self.drain();
        assert!(
            status.success(),
            "{} exited with {status}:\n{log}",
            self.identity
        );
    }

    pub fn next_line(&mut self) -> Option<String> {
        let line = self.lines.recv_timeout(PROMPTLY).ok()?;
        self.log.push(line.clone());
        Some(line)
    }

    pub fn drain(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
        self.log.join("\n")
    }

    /// Operators loaded in this host, from its `/metrics`.
    pub async fn operators(&self) -> Option<i64> {
        Some(self.metric_sum("wasm_operator_operators", "").await? as i64)
    }

    /// The sum of metric `name` over its label sets whose labels contain `labels` (e.g.
    /// `result="resumed"`, or empty for all), from this host's `/metrics`.
    pub async fn metric_sum(&self, name: &str, labels: &str) -> Option<f64> {
        let text = reqwest::get(format!("http://{}/metrics", self.metrics_addr))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        Some(sum_of_metric(&text, name, labels))
    }

    pub async fn ready(&self) -> bool {
        matches!(reqwest::get(format!("http://{}/readyz", self.metrics_addr)).await, Ok(r) if r.status() == 200)
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test explains itself with what each replica logged.
        if std::thread::panicking() {
            let log = self.drain();
            eprintln!("== the log of {}\n{log}", self.identity);
        }
    }
}

/// The holder of Lease `name` in `namespace`, if it has one.
pub async fn lease_holder_of(client: &Client, namespace: &str, name: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    leases
        .get_opt(name)
        .await
        .ok()??
        .spec?
        .holder_identity
        .filter(|holder| !holder.is_empty())
}

/// The holder of Lease `hosts` (the Lease name the processes are started with).
pub async fn lease_holder(client: &Client, namespace: &str) -> Option<String> {
    lease_holder_of(client, namespace, "hosts").await
}

/// When the line was logged (the text format starts with an RFC 3339 timestamp, possibly
/// coloured).
pub fn logged_at(line: &str) -> Option<k8s_openapi::jiff::Timestamp> {
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

/// The sum of metric `name` over its label sets whose labels contain `labels` (empty: all of
/// them) in a Prometheus text exposition.
pub fn sum_of_metric(exposition: &str, name: &str, labels: &str) -> f64 {
    let series = format!("{name}{{");
    exposition
        .lines()
        .filter(|line| line.starts_with(&series) && line.contains(labels))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
