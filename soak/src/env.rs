//! What every experiment shares: a control plane of the run's own (faults are injected into
//! it), the ring workload on it, the host binary under test, and a work directory (host configs,
//! logs, the precompiled-module cache every host of the run shares).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use kube::Client;
use operators_tests::Lang;
use wasm_operator_test_support::{
    apply_crd, private_control_plane, target_dir, workspace_root, ControlPlane,
};

use crate::host::{Host, HostSettings, OperatorEntry};
use crate::measure::find_process;
use crate::rings::Rings;
use crate::Profile;

const CRDS: [&str; 2] = [
    include_str!("../../crds/testresource.yaml"),
    include_str!("../../crds/metricscaler.yaml"),
];

pub struct Env {
    pub profile: Profile,
    pub client: Client,
    pub rings: Rings,
    pub host_binary: PathBuf,
    pub work: tempfile::TempDir,
    control_plane: ControlPlane,
}

impl Env {
    /// Starts a control plane, applies the example CRDs, creates the rings and their objects,
    /// and builds the ring modules (Rust, Go and TinyGo).
    pub async fn start(profile: Profile, host_binary: PathBuf) -> anyhow::Result<Env> {
        let control_plane = tokio::task::spawn_blocking(private_control_plane).await??;
        let client = control_plane.client().await;
        for crd in CRDS {
            apply_crd(&client, crd).await?;
        }
        let langs = Lang::available("ring");
        // Built before any host starts, so that no experiment's clock includes a build.
        for lang in &langs {
            let lang = *lang;
            tokio::task::spawn_blocking(move || lang.module_path("ring")).await?;
        }
        let rings = Rings::create(&client, profile.rings, profile.objects_per_ring, &langs).await?;
        let work = tempfile::Builder::new()
            .prefix("wasm-operator-soak-")
            .tempdir()?;
        Ok(Env {
            profile,
            client,
            rings,
            host_binary,
            work,
            control_plane,
        })
    }

    /// Keeps the work directory (host logs and configs) after the run, to look at a failure;
    /// returns where it is.
    pub fn keep_work_dir(&mut self) -> PathBuf {
        self.work.disable_cleanup(true);
        self.work.path().to_owned()
    }

    /// Host settings running every ring operator, with a state directory of `name`'s own.
    pub fn host_settings(&self, name: &str, swap_after: &str) -> HostSettings {
        HostSettings {
            binary: self.host_binary.clone(),
            kubeconfig: self.control_plane.kubeconfig_path().to_owned(),
            cache_dir: self.work.path().join("modules"),
            state_dir: self.work.path().join(name).join("state"),
            swap_after: swap_after.to_owned(),
            memory_budget: None,
            operators: self.rings.operators(),
        }
    }

    /// Starts a host with `settings`; its config and log go to a directory named after the
    /// state directory's parent.
    pub async fn start_host(&self, settings: HostSettings) -> anyhow::Result<Host> {
        let dir = settings
            .state_dir
            .parent()
            .context("a state directory has a parent")?
            .to_owned();
        std::fs::create_dir_all(&dir)?;
        let host = tokio::task::spawn_blocking(move || Host::start(settings, &dir)).await??;
        host.wait_until_loaded().await?;
        Ok(host)
    }

    /// [`Env::start_host`], then waits until every ring's output matches its input: an
    /// experiment starts from a converged workload.
    pub async fn start_host_in_sync(&self, settings: HostSettings) -> anyhow::Result<Host> {
        let host = self.start_host(settings).await?;
        let initial = self.rings.converge(self.profile.converge_within).await;
        anyhow::ensure!(
            initial.converged,
            "the rings did not start in sync: {:?}",
            initial.lost
        );
        Ok(host)
    }

    /// `"stop kube-apiserver"`, `"start kube-apiserver"` or `"restart etcd"`.
    pub async fn inject_fault(&self, command: &'static str) -> anyhow::Result<()> {
        // A blocking exchange on a Unix socket; starting the API server waits for /readyz.
        tokio::task::block_in_place(|| self.control_plane.inject_fault(command))
    }

    /// The kube-apiserver's and the supervisor's (which runs etcd) pids, for CPU figures.
    pub fn control_plane_pids(&self) -> Vec<(&'static str, u32)> {
        let dir = self
            .control_plane
            .kubeconfig_path()
            .parent()
            .unwrap_or(Path::new("/"))
            .display()
            .to_string();
        let mut pids = Vec::new();
        if let Some(pid) = find_process(&["kube-apiserver", &dir]) {
            pids.push(("kube-apiserver", pid));
        }
        if let Some(pid) = find_process(&["controlplane", " run ", &dir]) {
            pids.push(("etcd (in the control plane's supervisor)", pid));
        }
        pids
    }

    /// An operator entry for `example` in Rust.
    pub fn example(&self, name: &str, example: &str, config: serde_json::Value) -> OperatorEntry {
        OperatorEntry {
            name: name.to_owned(),
            module: Lang::Rust.module_path(example),
            config,
            allow_http: Vec::new(),
            memory_limit: None,
            swap_after: None,
        }
    }
}

/// The host binary to test: `WASM_OPERATOR_BIN`, or this workspace's debug build (built now if
/// needed, as test-support builds guests).
pub fn host_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("WASM_OPERATOR_BIN") {
        return Ok(PathBuf::from(path));
    }
    let status = cargo()
        .args([
            "build",
            "--locked",
            "-p",
            "wasm-operator",
            "--bin",
            "wasm-operator",
        ])
        .current_dir(workspace_root())
        .status()
        .context("running cargo build")?;
    anyhow::ensure!(status.success(), "building the host failed ({status})");
    Ok(target_dir().join("debug").join("wasm-operator"))
}

/// A `cargo` command for a nested build (of the host, or of another binary a harness runs).
pub fn cargo() -> Command {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // Run from `cargo test` or `cargo run`, this process carries the variables Cargo sets for
    // the package being built; build scripts that watch such variables would then rebuild
    // their crates on every call. The nested build gets the environment a shell would give it.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_CFG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&name.as_ref())
        {
            cargo.env_remove(name.as_ref());
        }
    }
    cargo
}
