//! Per-operator identity: a Kubernetes client that sends every request as the operator's
//! ServiceAccount (`Impersonate-User: system:serviceaccount:<ns>:<sa>`), so the API server's
//! RBAC for that account, not the host's, decides what the operator may do. The API server adds
//! the account's groups (`system:serviceaccounts`, `system:serviceaccounts:<ns>`,
//! `system:authenticated`) itself, so the host needs only `impersonate` on `serviceaccounts`.
//!
//! Also: the host's own configuration, from a kubeconfig or the in-cluster environment.
use std::path::{Path, PathBuf};

use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster,
    NamedContext,
};

/// Where a pod's ServiceAccount token, CA and namespace are mounted.
pub const DEFAULT_SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The user name Kubernetes gives ServiceAccount `namespace/name`.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// A client acting as ServiceAccount `namespace/name`, built from the host's configuration.
pub fn impersonating_client(
    host: &kube::Config,
    namespace: &str,
    service_account: &str,
) -> Result<kube::Client, String> {
    let mut config = host.clone();
    config.auth_info.impersonate = Some(service_account_user(namespace, service_account));
    config.auth_info.impersonate_groups = None;
    kube::Client::try_from(config).map_err(|error| {
        format!("cannot build a client for ServiceAccount {namespace}/{service_account}: {error}")
    })
}

/// The host's configuration: `kubeconfig` when given; else, when `KUBERNETES_SERVICE_HOST` is
/// set, the in-cluster ServiceAccount mounted at `service_account_dir` (default
/// [`DEFAULT_SERVICE_ACCOUNT_DIR`]); else `$KUBECONFIG` or `~/.kube/config`.
pub async fn host_config(
    kubeconfig: Option<&Path>,
    service_account_dir: Option<&Path>,
) -> Result<kube::Config, String> {
    if let Some(path) = kubeconfig {
        let file = Kubeconfig::read_from(path)
            .map_err(|error| format!("cannot read kubeconfig {}: {error}", path.display()))?;
        return kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
            .await
            .map_err(|error| format!("kubeconfig {} is not usable: {error}", path.display()));
    }
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        let dir = service_account_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SERVICE_ACCOUNT_DIR));
        return in_cluster_config(&dir).await;
    }
    kube::Config::infer().await.map_err(|error| {
        format!(
            "no Kubernetes configuration found ({error}); pass --kubeconfig PATH or run in a pod"
        )
    })
}

/// The in-cluster configuration with the ServiceAccount files read from `dir` (`token`,
/// `ca.crt`, `namespace`). The token file is re-read as the kubelet rotates it.
pub async fn in_cluster_config(dir: &Path) -> Result<kube::Config, String> {
    let env = |name: &str| {
        std::env::var(name).map_err(|_| format!("{name} is not set: the host is not in a pod"))
    };
    let host = env("KUBERNETES_SERVICE_HOST")?;
    let port = env("KUBERNETES_SERVICE_PORT")?;
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    for file in ["token", "ca.crt"] {
        if !dir.join(file).is_file() {
            return Err(format!(
                "{} is missing: mount the pod's ServiceAccount token (automountServiceAccountToken)",
                dir.join(file).display()
            ));
        }
    }
    let namespace = std::fs::read_to_string(dir.join("namespace"))
        .map(|text| text.trim().to_string())
        .ok();
    let kubeconfig = Kubeconfig {
        clusters: vec![NamedCluster {
            name: "in-cluster".into(),
            cluster: Some(Cluster {
                server: Some(format!("https://{host}:{port}")),
                certificate_authority: Some(dir.join("ca.crt").display().to_string()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: "service-account".into(),
            auth_info: Some(AuthInfo {
                token_file: Some(dir.join("token").display().to_string()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: "in-cluster".into(),
            context: Some(Context {
                cluster: "in-cluster".into(),
                user: Some("service-account".into()),
                namespace,
                ..Default::default()
            }),
            other: Default::default(),
        }],
        current_context: Some("in-cluster".into()),
        ..Default::default()
    };
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|error| {
            format!(
                "the in-cluster configuration from {} is not usable: {error}",
                dir.display()
            )
        })
}

/// The namespace the host runs in, from the mounted ServiceAccount (in a pod).
pub fn pod_namespace(service_account_dir: Option<&Path>) -> Option<String> {
    let dir = service_account_dir.unwrap_or(Path::new(DEFAULT_SERVICE_ACCOUNT_DIR));
    std::fs::read_to_string(dir.join("namespace"))
        .ok()
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
}
