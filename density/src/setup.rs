//! The setups compared: N ring instances as N native kube-rs processes, as N native
//! controller-runtime processes, or as N operators in one `wasm-operator run` host (Rust, Go or
//! TinyGo ring module, resident or swapped out when idle). [`Running`] is one of them started:
//! its processes, in a cgroup of its own where possible.

use std::fmt;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use operators_tests::Lang;
use serde_json::json;
use wasm_operator_soak::host::{Host, HostSettings, OperatorEntry};
use wasm_operator_soak::measure::Metrics;
use wasm_operator_soak::rings::Ring;

use crate::accounting::{join_in_child, total_pss, Cgroup, CpuClock};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    KubeRs,
    ControllerRuntime,
    Host { lang: Lang, swapped: bool },
}

impl Setup {
    /// Every setup, in the report's order.
    pub fn all() -> Vec<Setup> {
        let mut all = vec![Setup::KubeRs, Setup::ControllerRuntime];
        for lang in [Lang::Rust, Lang::Go, Lang::TinyGo] {
            for swapped in [false, true] {
                all.push(Setup::Host { lang, swapped });
            }
        }
        all
    }

    /// Short and unique: `--setups`, cgroup and directory names.
    pub fn key(self) -> String {
        match self {
            Setup::KubeRs => "kube-rs".into(),
            Setup::ControllerRuntime => "controller-runtime".into(),
            Setup::Host { lang, swapped } => {
                format!(
                    "host-{lang}-{}",
                    if swapped { "swapped" } else { "resident" }
                )
            }
        }
    }

    pub fn is_native(self) -> bool {
        !matches!(self, Setup::Host { .. })
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Setup::KubeRs => f.write_str("native kube-rs"),
            Setup::ControllerRuntime => f.write_str("native controller-runtime"),
            Setup::Host { lang, swapped } => {
                let lang = match lang {
                    Lang::Rust => "Rust",
                    Lang::Go => "Go",
                    Lang::TinyGo => "TinyGo",
                };
                let mode = if *swapped { "swapped" } else { "resident" };
                write!(f, "host, {lang} ring, {mode}")
            }
        }
    }
}

/// The programs a run starts.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub host: PathBuf,
    pub kube_rs: PathBuf,
    pub controller_runtime: PathBuf,
}

/// What every setup of a run shares.
pub struct Context<'a> {
    pub binaries: &'a Binaries,
    pub kubeconfig: &'a Path,
    /// Compiled modules, shared by every host of the run (as by a restarted host).
    pub module_cache: &'a Path,
    /// The host's idle period in swapped setups.
    pub swap_after: &'a str,
}

/// One setup running: its processes and how their CPU is counted.
pub struct Running {
    pub setup: Setup,
    natives: Vec<(Child, PathBuf)>,
    host: Option<Host>,
    /// Declared last: the cgroup it may hold is removed after the processes are gone.
    pub clock: CpuClock,
}

impl Running {
    /// Starts `setup` for `rings`, its files (logs, host config, state) under `dir`.
    pub async fn start(
        setup: Setup,
        rings: &[Ring],
        context: &Context<'_>,
        dir: &Path,
    ) -> anyhow::Result<Running> {
        std::fs::create_dir_all(dir)?;
        let cgroup = Cgroup::create(&format!("{}-{}", setup.key(), rings.len()));
        match setup {
            Setup::Host { lang, swapped } => {
                let settings = HostSettings {
                    binary: context.binaries.host.clone(),
                    kubeconfig: context.kubeconfig.to_owned(),
                    cache_dir: context.module_cache.to_owned(),
                    state_dir: dir.join("state"),
                    swap_after: if swapped { context.swap_after } else { "never" }.to_owned(),
                    memory_budget: None,
                    operators: rings
                        .iter()
                        .enumerate()
                        .map(|(i, ring)| host_entry(i, ring, lang))
                        .collect(),
                };
                let work = dir.to_owned();
                let host =
                    tokio::task::spawn_blocking(move || Host::start(settings, &work)).await??;
                let clock = match cgroup {
                    Some(cgroup) => {
                        // The host is moved in once it has started; only its idle time is
                        // read from the group.
                        cgroup.add(host.pid())?;
                        CpuClock::Cgroup(cgroup)
                    }
                    None => CpuClock::Threads(vec![host.pid()]),
                };
                Ok(Running {
                    setup,
                    natives: Vec::new(),
                    host: Some(host),
                    clock,
                })
            }
            Setup::KubeRs | Setup::ControllerRuntime => {
                let binary = if setup == Setup::KubeRs {
                    &context.binaries.kube_rs
                } else {
                    &context.binaries.controller_runtime
                };
                let procs = cgroup.as_ref().map(Cgroup::procs_file).transpose()?;
                let mut natives = Vec::new();
                for (i, ring) in rings.iter().enumerate() {
                    let log_path = dir.join(format!("ring-{i}.log"));
                    let log = std::fs::File::create(&log_path)?;
                    let mut command = Command::new(binary);
                    command
                        .arg("--in-namespace")
                        .arg(&ring.input)
                        .arg("--out-namespace")
                        .arg(&ring.output)
                        .arg("--kubeconfig")
                        .arg(context.kubeconfig)
                        .stdin(Stdio::null())
                        .stdout(log.try_clone()?)
                        .stderr(log);
                    if let Some(procs) = &procs {
                        let fd = procs.as_raw_fd();
                        // SAFETY: the closure only calls write(2) (async-signal-safe).
                        unsafe { command.pre_exec(move || join_in_child(fd)) };
                    }
                    let child = command
                        .spawn()
                        .with_context(|| format!("starting {}", binary.display()))?;
                    natives.push((child, log_path));
                }
                let clock = match cgroup {
                    Some(cgroup) => CpuClock::Cgroup(cgroup),
                    None => CpuClock::Threads(natives.iter().map(|(c, _)| c.id()).collect()),
                };
                Ok(Running {
                    setup,
                    natives,
                    host: None,
                    clock,
                })
            }
        }
    }

    /// The setup's processes.
    pub fn pids(&self) -> Vec<u32> {
        match &self.host {
            Some(host) => vec![host.pid()],
            None => self.natives.iter().map(|(child, _)| child.id()).collect(),
        }
    }

    /// PSS summed over the setup's processes.
    pub fn pss(&self) -> anyhow::Result<u64> {
        total_pss(&self.pids())
    }

    /// The host's metrics (a host setup only).
    pub async fn metrics(&self) -> anyhow::Result<Metrics> {
        match &self.host {
            Some(host) => host.metrics().await,
            None => bail!("{} has no metrics endpoint", self.setup),
        }
    }

    /// Operators the host reports swapped out (0 for a native setup).
    pub async fn swapped(&self) -> anyhow::Result<usize> {
        if self.host.is_none() {
            return Ok(0);
        }
        let metrics = self.metrics().await?;
        Ok(metrics.sum("wasm_operator_operators", &[("state", "swapped")]) as usize)
    }

    /// An error, with the end of its log, when one of the setup's processes has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(host) = &self.host {
            if !host.is_running() {
                bail!("the host exited; the end of its log:\n{}", host.log_tail());
            }
        }
        for (child, log) in &mut self.natives {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{} (pid {}) exited ({status}); the end of its log:\n{}",
                    self.setup,
                    child.id(),
                    log_tail(log)
                );
            }
        }
        Ok(())
    }

    /// SIGTERM to every process, then waits (SIGKILL after 30 s); the cgroup is removed after.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let mut result = Ok(());
        if let Some(host) = self.host.take() {
            result = host.stop();
        }
        for (child, _) in &self.natives {
            // SAFETY: kill(2) on our own unreaped child.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for (child, log) in &mut self.natives {
            loop {
                match child.try_wait()? {
                    Some(_) => break,
                    None if Instant::now() >= deadline => {
                        child.kill()?;
                        child.wait()?;
                        result = Err(anyhow::anyhow!(
                            "{} (pid {}) did not stop within 30 s of SIGTERM:\n{}",
                            self.setup,
                            child.id(),
                            log_tail(log)
                        ));
                        break;
                    }
                    None => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
        self.natives.clear();
        result
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed measurement must not leave processes reconciling the next one's objects.
        for (child, _) in &mut self.natives {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn host_entry(index: usize, ring: &Ring, lang: Lang) -> OperatorEntry {
    OperatorEntry {
        name: format!("ring-{index}"),
        module: lang.module_path("ring"),
        config: json!({"inNamespace": ring.input, "outNamespace": ring.output}),
        allow_http: Vec::new(),
        memory_limit: None,
        swap_after: None,
    }
}

/// The last lines of a log file, for error messages.
pub fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
