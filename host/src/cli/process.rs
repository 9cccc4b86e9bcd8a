//! What both long-running commands (`run` and `cluster`) do the same way as a process: log
//! format and logging set-up, default directories, the operations endpoint (/metrics and the
//! probes), the shutdown signals, and clearing the state directory at start.
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueEnum;

use super::log_format::init_tracing;
use crate::metrics::server::{MetricsServer, Readiness};
use crate::metrics::HostMetrics;
use crate::runtime::{ensure_private_dir, remove_snapshots};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `$XDG_CACHE_HOME/wasm-operator/modules`, else `$HOME/.cache/wasm-operator/modules`. Never a
/// shared directory such as /tmp: precompiled code is executed, so it must live where only the
/// host's user can write. Without either variable the flag is required.
pub(crate) fn default_cache_dir() -> Result<PathBuf, String> {
    private_user_dir(
        "XDG_CACHE_HOME",
        ".cache",
        "modules",
        "cache directory",
        "--cache-dir",
    )
}

/// `$XDG_STATE_HOME/wasm-operator/snapshots`, else under `$HOME/.local/state`; never a shared
/// directory such as /tmp (snapshots are mapped into guest memory). Without either variable
/// the flag is required.
pub(crate) fn default_state_dir() -> Result<PathBuf, String> {
    private_user_dir(
        "XDG_STATE_HOME",
        ".local/state",
        "snapshots",
        "state directory",
        "--state-dir",
    )
}

/// `$<xdg_variable>/wasm-operator/<leaf>`, else `$HOME/<under_home>/wasm-operator/<leaf>`: the
/// XDG base directory convention, with no fallback to a directory other users may write.
fn private_user_dir(
    xdg_variable: &str,
    under_home: &str,
    leaf: &str,
    what: &str,
    flag: &str,
) -> Result<PathBuf, String> {
    let base = std::env::var_os(xdg_variable)
        .filter(|base| !base.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(under_home))
        })
        .ok_or_else(|| {
            format!(
                "neither {xdg_variable} nor HOME is set, so there is no default {what}: pass \
                 {flag} with a directory only the host's user can write"
            )
        })?;
    Ok(base.join("wasm-operator").join(leaf))
}

/// Resolves on SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the host");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => tracing::info!("SIGTERM received: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received: shutting down"),
    }
}

/// Prepares `state_dir`: removes snapshot files an earlier release left directly in it (it
/// kept no resume points; each operator's own directory, with what a later process may resume,
/// is dealt with when the operator starts).
/// The directory must be the host's own (snapshots are mapped into guest memory: a file someone
/// else could truncate would crash the host); it is created with mode 0700 if missing.
pub(crate) fn clear_state_dir(state_dir: &Path) -> Result<(), String> {
    ensure_private_dir(state_dir, "state directory")?;
    let removed = remove_snapshots(state_dir).map_err(|error| {
        format!(
            "cannot clear the state directory {}: {error}",
            state_dir.display()
        )
    })?;
    if removed > 0 {
        tracing::info!(removed, dir = %state_dir.display(), "removed snapshots left by an earlier run");
    }
    Ok(())
}

/// The body of a long-running command: sets up logging, resolves its settings (a bad setting
/// exits 2 with the reason), then runs `run` on a multi-threaded runtime (an error exits 1).
pub(crate) fn run_command<S, F>(
    command: &str,
    log_format: LogFormat,
    resolve: impl FnOnce() -> Result<S, String>,
    run: impl FnOnce(S) -> F,
) -> ExitCode
where
    F: Future<Output = Result<(), String>>,
{
    init_tracing(log_format);
    let settings = match resolve() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("wasm-operator {command}: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("wasm-operator {command}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("wasm-operator {command}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// /metrics, /healthz and /readyz for the life of a command: not ready until [`Self::ready`],
/// not ready again as soon as [`Self::stop`] begins.
pub(crate) struct OperationsEndpoint {
    server: MetricsServer,
    readiness: Readiness,
    stop_server: tokio::sync::oneshot::Sender<()>,
}

impl OperationsEndpoint {
    pub async fn start(
        addr: std::net::SocketAddr,
        metrics: HostMetrics,
    ) -> Result<OperationsEndpoint, String> {
        let readiness = Readiness::default();
        let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
        let server = MetricsServer::start(addr, metrics, readiness.clone(), async {
            let _ = server_stopped.await;
        })
        .await
        .map_err(|error| error.to_string())?;
        tracing::info!(addr = %server.local_addr, "metrics server listening on {}", server.local_addr);
        Ok(OperationsEndpoint {
            server,
            readiness,
            stop_server,
        })
    }

    pub fn ready(&self) {
        self.readiness.set(true);
        tracing::info!("ready");
    }

    /// Turns not-ready at once; `shutdown` (the host's own) runs before the server goes away,
    /// so /metrics answers while operators finish.
    pub async fn stop<T>(self, shutdown: impl Future<Output = T>) -> T {
        self.readiness.set(false);
        let result = shutdown.await;
        let _ = self.stop_server.send(());
        self.server.join().await;
        tracing::info!("stopped");
        result
    }
}
