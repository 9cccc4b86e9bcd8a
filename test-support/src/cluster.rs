//! One real control plane per test process.
//!
//! Either reuse a running one (`WASM_OPERATOR_KUBECONFIG=<path>`, as `make test` does to start
//! it once for all test binaries), or start `controlplane run` as a child process. The child is
//! tied to this process through its standard input: when this process ends in any way (normal
//! exit, panic, Ctrl-C, SIGKILL) the pipe closes and the control plane shuts down and removes its
//! data directory.
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::guests::workspace_root;

/// How long a cold control plane may take to answer /readyz.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// A control plane the tests of this process talk to.
pub struct ControlPlane {
    kubeconfig: PathBuf,
    /// Held for the life of the process: dropping it (at exit) closes the child's stdin.
    _owned: Option<Mutex<(Child, ChildStdin)>>,
}

/// The control plane of this test process, started on first use.
pub fn control_plane() -> &'static ControlPlane {
    static CONTROL_PLANE: OnceLock<ControlPlane> = OnceLock::new();
    CONTROL_PLANE.get_or_init(|| match std::env::var_os("WASM_OPERATOR_KUBECONFIG") {
        Some(path) => ControlPlane {
            kubeconfig: PathBuf::from(path),
            _owned: None,
        },
        None => start().unwrap_or_else(|e| panic!("could not start the test control plane: {e:#}")),
    })
}

impl ControlPlane {
    /// The admin kubeconfig.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Injects a fault through the control plane's control socket (next to its kubeconfig):
    /// `"stop kube-apiserver"`, `"start kube-apiserver"` (returns once it is ready again) or
    /// `"restart etcd"`.
    pub fn inject_fault(&self, command: &str) -> anyhow::Result<()> {
        use std::io::{BufRead, Write};
        let socket = self.kubeconfig.with_file_name("control.sock");
        let mut stream = std::os::unix::net::UnixStream::connect(&socket)
            .map_err(|e| anyhow::anyhow!("connecting to {}: {e}", socket.display()))?;
        writeln!(stream, "{command}")?;
        let mut answer = String::new();
        std::io::BufReader::new(stream).read_line(&mut answer)?;
        match answer.trim() {
            "ok" => Ok(()),
            other => anyhow::bail!("{command}: {other}"),
        }
    }

    /// A new admin client. Each `#[tokio::test]` has a runtime of its own and a client's
    /// connections belong to the runtime that made them, so clients are not shared between tests.
    pub async fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config().await).expect("building a kube client")
    }

    /// A client acting as ServiceAccount `namespace/name` through impersonation, so the API
    /// server's RBAC judges its requests as that account's.
    pub async fn client_as_service_account(&self, namespace: &str, name: &str) -> kube::Client {
        let mut config = self.config().await;
        config.auth_info.impersonate = Some(format!("system:serviceaccount:{namespace}:{name}"));
        config.auth_info.impersonate_groups = Some(vec![
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".to_string(),
        ]);
        kube::Client::try_from(config).expect("building an impersonating kube client")
    }

    /// The admin client configuration, read from the kubeconfig.
    pub async fn config(&self) -> kube::Config {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)
            .unwrap_or_else(|e| panic!("reading {}: {e}", self.kubeconfig.display()));
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap_or_else(|e| panic!("loading {}: {e}", self.kubeconfig.display()))
    }
}

/// A control plane of the caller's own, even when `WASM_OPERATOR_KUBECONFIG` names a shared one:
/// for tests that break it on purpose. It stops when the returned value is dropped.
pub fn private_control_plane() -> anyhow::Result<ControlPlane> {
    start()
}

fn start() -> anyhow::Result<ControlPlane> {
    let binary = controlplane_binary()?;
    // Numbered: a process may start a private control plane beside its shared one.
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "wasm-operator-cp-{}-{}",
        std::process::id(),
        STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = dir.join("kubeconfig");
    let log_path = std::env::temp_dir().join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path)?;
    let mut child = Command::new(&binary)
        .arg("run")
        .arg("--dir")
        .arg(&dir)
        .arg("--exit-on-stdin-close")
        .stdin(Stdio::piped())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .map_err(|e| anyhow::anyhow!("spawning {}: {e}", binary.display()))?;
    let stdin = child.stdin.take().expect("stdin was piped");

    let deadline = Instant::now() + READY_TIMEOUT;
    while !kubeconfig.exists() {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            anyhow::bail!("controlplane exited ({status}) before it was ready:\n{log}");
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            anyhow::bail!(
                "controlplane not ready within {READY_TIMEOUT:?}; log: {}",
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(ControlPlane {
        kubeconfig,
        _owned: Some(Mutex::new((child, stdin))),
    })
}

/// The controlplane binary: `WASM_OPERATOR_CONTROLPLANE`, or built (and cached) by
/// `scripts/controlplane.sh build`, which prints its path.
fn controlplane_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("WASM_OPERATOR_CONTROLPLANE") {
        return Ok(PathBuf::from(path));
    }
    let script = workspace_root().join("scripts").join("controlplane.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg("build")
        .stderr(Stdio::inherit())
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "{} build failed ({})",
        script.display(),
        output.status
    );
    let stdout = String::from_utf8(output.stdout)?;
    let path = stdout.lines().last().unwrap_or_default().trim();
    anyhow::ensure!(
        !path.is_empty(),
        "{} build printed no path",
        script.display()
    );
    Ok(PathBuf::from(path))
}
