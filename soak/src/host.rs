//! The host under test as an operating system process: `wasm-operator run` with a config file
//! the experiment writes, its metrics scraped over HTTP, its resident memory sampled from /proc,
//! stopped gracefully or killed with SIGKILL, and restarted on the same state directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::measure::{process_rss_bytes, Metrics};

/// One operator in the host's config file.
#[derive(Clone, Debug)]
pub struct OperatorEntry {
    pub name: String,
    pub module: PathBuf,
    pub config: serde_json::Value,
    pub allow_http: Vec<String>,
    pub memory_limit: Option<String>,
    /// Overrides the host's swap period for this operator.
    pub swap_after: Option<String>,
}

/// Everything a host process is started with; kept so that a restart uses the same.
#[derive(Clone, Debug)]
pub struct HostSettings {
    pub binary: PathBuf,
    pub kubeconfig: PathBuf,
    /// Precompiled modules: shared by every host of a run, as across restarts of a real host.
    pub cache_dir: PathBuf,
    pub state_dir: PathBuf,
    pub swap_after: String,
    pub memory_budget: Option<String>,
    pub operators: Vec<OperatorEntry>,
}

impl HostSettings {
    fn config_yaml(&self) -> String {
        let mut yaml = serde_json::json!({
            "kubeconfig": self.kubeconfig,
            "metricsAddr": "127.0.0.1:0",
            "cacheDir": self.cache_dir,
            "stateDir": self.state_dir,
            "swapAfter": self.swap_after,
            "callDeadline": "10s",
            "backoffBase": "100ms",
            "backoffMax": "5s",
            "egressAllowNetworks": ["127.0.0.0/8"],
            "operators": self.operators.iter().map(|operator| {
                let mut entry = serde_json::json!({
                    "name": operator.name,
                    "module": operator.module,
                    "config": operator.config,
                    "allowHttp": operator.allow_http,
                });
                if let Some(limit) = &operator.memory_limit {
                    entry["memoryLimit"] = limit.clone().into();
                }
                if let Some(swap_after) = &operator.swap_after {
                    entry["swapAfter"] = swap_after.clone().into();
                }
                entry
            }).collect::<Vec<_>>(),
        });
        if let Some(budget) = &self.memory_budget {
            yaml["memoryBudget"] = budget.clone().into();
        }
        // JSON is YAML.
        yaml.to_string()
    }
}

/// A running host process.
pub struct Host {
    pub settings: HostSettings,
    child: Child,
    log_path: PathBuf,
    metrics_url: String,
    rss: RssSampler,
}

/// Resident memory of a process, sampled every 250 ms by a background thread.
#[derive(Clone, Default)]
struct RssSampler {
    samples: Arc<Mutex<Vec<u64>>>,
}

impl Host {
    /// Starts the host, waits until its metrics server answers and every operator is loaded.
    pub fn start(settings: HostSettings, work_dir: &Path) -> anyhow::Result<Host> {
        let config_path = work_dir.join("host.yaml");
        std::fs::write(&config_path, settings.config_yaml())?;
        let log_path = work_dir.join("host.log");
        // Appended to: a restarted host's log follows the killed one's.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let log_offset = log.metadata()?.len() as usize;
        let child = Command::new(&settings.binary)
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", settings.binary.display()))?;
        let mut host = Host {
            settings,
            child,
            metrics_url: String::new(),
            log_path,
            rss: RssSampler::default(),
        };
        host.metrics_url = host.wait_for_metrics_address(log_offset)?;
        host.rss.start(host.child.id());
        Ok(host)
    }

    /// Whether the process has not exited.
    pub fn is_running(&self) -> bool {
        process_rss_bytes(self.child.id()).is_some()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The metrics server's address, from the line the host logs when it listens (after
    /// `log_offset`: a restarted host appends to the log of the one before).
    fn wait_for_metrics_address(&mut self, log_offset: usize) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let log = std::fs::read(&self.log_path).unwrap_or_default();
            let log = String::from_utf8_lossy(log.get(log_offset..).unwrap_or_default());
            if let Some(line) = log.split("metrics server listening on ").nth(1) {
                let address = line.split_whitespace().next().unwrap_or_default();
                return Ok(format!("http://{address}/metrics"));
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the host exited ({status}) while starting:\n{}",
                    self.log_tail()
                );
            }
            if Instant::now() >= deadline {
                bail!("the host did not start within 120 s:\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The host's metrics now.
    pub async fn metrics(&self) -> anyhow::Result<Metrics> {
        match http_get(&self.metrics_url).await {
            Ok(text) => Ok(Metrics::parse(&text)),
            Err(error) if !self.is_running() => Err(error.context(format!(
                "the host is no longer running; the end of its log:\n{}",
                self.log_tail()
            ))),
            Err(error) => Err(error),
        }
    }

    /// Waits until every configured operator is loaded (idle, running or swapped).
    pub async fn wait_until_loaded(&self) -> anyhow::Result<()> {
        let wanted = self.settings.operators.len() as f64;
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if let Ok(metrics) = self.metrics().await {
                let loaded = ["idle", "running", "swapped"]
                    .iter()
                    .map(|state| metrics.sum("wasm_operator_operators", &[("state", state)]))
                    .sum::<f64>();
                if loaded >= wanted {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "the host did not load its {wanted} operators within 300 s:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// (max, last) resident memory sampled since the start, in bytes.
    pub fn rss(&self) -> (u64, u64) {
        let samples = self.rss.samples.lock().unwrap_or_else(|e| e.into_inner());
        let max = samples.iter().copied().max().unwrap_or(0);
        (max, samples.last().copied().unwrap_or(0))
    }

    /// Forgets the memory samples so far: the next [`Host::rss`] covers only what follows.
    pub fn reset_rss(&self) {
        self.rss
            .samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// SIGTERM, then waits for the exit (SIGKILL after 30 s).
    pub fn stop(mut self) -> anyhow::Result<()> {
        // SAFETY: kill(2) on our own child's pid, which cannot have been reused: not reaped yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait()?.is_none() {
            if Instant::now() >= deadline {
                self.child.kill()?;
                self.child.wait()?;
                bail!(
                    "the host did not stop within 30 s of SIGTERM:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// SIGKILL: no shutdown code runs, as when a node dies or the OOM killer strikes.
    pub fn kill(mut self) -> anyhow::Result<HostSettings> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(self.settings.clone())
    }

    /// The last lines of the host's log, for error messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Log lines containing `text`.
    pub fn log_lines_with(&self, text: &str) -> Vec<String> {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        log.lines()
            .filter(|line| line.contains(text))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // A failed experiment must not leave a host behind reconciling the next one's objects.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RssSampler {
    fn start(&self, pid: u32) {
        let samples = Arc::downgrade(&self.samples);
        std::thread::spawn(move || {
            while let Some(samples) = samples.upgrade() {
                let Some(rss) = process_rss_bytes(pid) else {
                    return;
                };
                samples.lock().unwrap_or_else(|e| e.into_inner()).push(rss);
                drop(samples);
                std::thread::sleep(Duration::from_millis(250));
            }
        });
    }
}

/// GET of the metrics endpoint, with a deadline: a host that stopped answering is an error.
async fn http_get(url: &str) -> anyhow::Result<String> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await?
        .error_for_status()?;
    Ok(response.text().await?)
}
