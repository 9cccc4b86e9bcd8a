//! Running the host in a cluster: operators declared as `WasmOperator` resources.
//!
//! [`ClusterHost`] ties the pieces together: Lease-based leader election ([`leader`]), so of
//! several replicas only one runs operators; the WasmOperator controller ([`controller`]),
//! which fetches modules ([`source`]), loads, reloads and unloads them in the operator manager
//! with a client impersonating each operator's ServiceAccount ([`identity`]), and writes status
//! and Events ([`status`]); and the SubjectAccessReview check that decides which kinds an
//! operator may read from the shared cache ([`access`]).
pub mod access;
pub mod controller;
pub mod counts;
pub mod identity;
pub mod leader;
pub mod resource;
pub mod source;
pub mod status;

use std::future::Future;
use std::path::PathBuf;

use crate::metrics::HostMetrics;
use crate::operator::{ManagerConfig, OperatorManager};
use crate::runtime::Runtime;

pub use controller::{operator_name, ControllerSettings, TenantMaxima};
pub use leader::LeaseSettings;
pub use resource::{WasmOperator, WasmOperatorSpec, WasmOperatorStatus};

/// Everything a [`ClusterHost`] needs besides the runtime and the manager's settings.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    pub controller: ControllerSettings,
    /// `None` runs without leader election (a single replica).
    pub lease: Option<LeaseSettings>,
    /// Root of `spec.module.path` sources; `None` refuses them.
    pub modules_dir: Option<PathBuf>,
    /// Size and time bounds of module fetches.
    pub sources: source::SourceLimits,
}

/// The host as it runs in a cluster.
pub struct ClusterHost {
    manager: OperatorManager,
    counter: counts::ReconcileCounter,
    host_config: kube::Config,
    client: kube::Client,
    settings: ClusterSettings,
}

impl ClusterHost {
    /// `host_config` is the host's own identity. The manager's reconcile observer (if any)
    /// still sees every reconcile; the host counts them for the statuses first.
    pub fn new(
        runtime: Runtime,
        host_config: kube::Config,
        metrics: HostMetrics,
        mut manager_config: ManagerConfig,
        settings: ClusterSettings,
    ) -> Result<Self, String> {
        let client = kube::Client::try_from(host_config.clone())
            .map_err(|error| format!("cannot create the Kubernetes client: {error}"))?;
        let counter = counts::ReconcileCounter::default();
        manager_config.reconcile_observer =
            Some(counter.observer(manager_config.reconcile_observer.take()));
        let manager = OperatorManager::new(runtime, client.clone(), metrics, manager_config);
        Ok(ClusterHost {
            manager,
            counter,
            host_config,
            client,
            settings,
        })
    }

    pub fn manager(&self) -> &OperatorManager {
        &self.manager
    }

    /// Runs until `shutdown` resolves: waits for leadership (if elected), runs the
    /// controller while leading, stops every operator when leadership is lost, and on shutdown
    /// stops them and releases the Lease.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), String> {
        tokio::pin!(shutdown);
        let elector = self
            .settings
            .lease
            .clone()
            .map(|lease| leader::LeaderElector::new(self.client.clone(), lease));
        let fetcher = source::SourceFetcher::new(
            self.client.clone(),
            self.settings.modules_dir.clone(),
            self.settings.sources.clone(),
        )?;
        loop {
            let mut acquired_at = std::time::Instant::now();
            if let Some(elector) = &elector {
                tokio::select! {
                    at = elector.acquire() => acquired_at = at,
                    _ = &mut shutdown => return Ok(()),
                }
            }
            let controller = controller::Controller::new(
                self.manager.clone(),
                self.host_config.clone(),
                fetcher.clone(),
                self.counter.clone(),
                self.settings.controller.clone(),
            )?;
            let keep_leading = async {
                match &elector {
                    Some(elector) => elector.keep_leading(acquired_at).await,
                    None => std::future::pending().await,
                }
            };
            let shutting_down = tokio::select! {
                _ = controller.run() => false,
                _ = keep_leading => false,
                _ = &mut shutdown => true,
            };
            if shutting_down {
                // Still the leader: in-flight reconciles may finish within the stop deadline.
                self.manager.shutdown().await;
            } else {
                // Another replica may take over once the stop margin has passed: nothing may
                // finish gracefully (fencing), every reconcile is abandoned now.
                let started = std::time::Instant::now();
                self.manager.abort_all().await;
                tracing::warn!(
                    took_ms = started.elapsed().as_millis() as u64,
                    "leadership lost: every operator aborted"
                );
            }
            if shutting_down {
                if let Some(elector) = &elector {
                    elector.release().await;
                }
                return Ok(());
            }
            tracing::warn!("no longer the leader: all operators stopped; standing by");
        }
    }
}
