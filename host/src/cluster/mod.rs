//! Running the host in a cluster: operators declared as `WasmOperator` resources.
//!
//! [`ClusterHost`] ties the pieces together: WasmOperators sharded over replicas with Leases
//! ([`shards`]; with one shard, leader election), so each operator runs on exactly one
//! replica; the WasmOperator controller ([`controller`]),
//! which fetches modules ([`source`]), loads, reloads and unloads them in the operator manager
//! with a client impersonating each operator's ServiceAccount ([`identity`]), and writes status
//! and Events ([`status`]); and the SubjectAccessReview check that decides which kinds an
//! operator may read from the shared cache ([`access`]).
pub mod access;
pub mod controller;
pub mod counts;
pub mod identity;
pub mod resource;
pub mod shards;
pub mod source;
pub mod status;

use std::future::Future;
use std::path::PathBuf;

use crate::metrics::HostMetrics;
use crate::operator::{ManagerConfig, OperatorManager};
use crate::runtime::Runtime;

pub use controller::{operator_name, ControllerSettings, TenantMaxima};
pub use resource::{WasmOperator, WasmOperatorSpec, WasmOperatorStatus};
pub use shards::LeaseSettings;

/// Everything a [`ClusterHost`] needs besides the runtime and the manager's settings.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    pub controller: ControllerSettings,
    /// `None` runs every operator without Leases (a single replica).
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
    /// The shards this replica holds, when sharded.
    shards: Option<(tokio::sync::watch::Sender<shards::Held>, shards::ShardView)>,
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
        let shards = settings
            .lease
            .as_ref()
            .map(|lease| shards::ShardView::channel(lease.shards));
        if let Some((_, view)) = &shards {
            manager_config.fence = Some(view.fence());
        }
        let manager = OperatorManager::new(runtime, client.clone(), metrics, manager_config);
        Ok(ClusterHost {
            manager,
            counter,
            host_config,
            client,
            settings,
            shards,
        })
    }

    pub fn manager(&self) -> &OperatorManager {
        &self.manager
    }

    /// Runs until `shutdown` resolves: takes part in sharding (if there are Leases), runs
    /// the controller on the shards held, and on shutdown stops every operator, letting
    /// in-flight reconciles finish within the stop deadline, then releases the Leases.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), String> {
        let fetcher = source::SourceFetcher::new(
            self.client.clone(),
            self.settings.modules_dir.clone(),
            self.settings.sources.clone(),
        )?;
        let mut controller = controller::Controller::new(
            self.manager.clone(),
            self.host_config.clone(),
            fetcher,
            self.counter.clone(),
            self.settings.controller.clone(),
        )?;
        let mut coordinator = None;
        if let (Some(lease), Some((held, view))) = (&self.settings.lease, self.shards) {
            controller = controller.with_shards(view);
            coordinator = Some(shards::Coordinator::new(
                self.client.clone(),
                lease.clone(),
                self.manager.clone(),
                held,
            ));
        }
        tokio::select! {
            _ = controller.run() => {}
            _ = coordinate(&mut coordinator) => {}
            _ = shutdown => {}
        }
        // In-flight reconciles may finish within the stop deadline, which can be longer than a
        // Lease stays valid: the shards held are still renewed meanwhile (and given up, their
        // operators aborted, if they cannot be), and no other shard is taken.
        if let Some(coordinator) = &mut coordinator {
            coordinator.drain();
        }
        tokio::select! {
            _ = self.manager.shutdown() => {}
            _ = coordinate(&mut coordinator) => {}
        }
        if let Some(coordinator) = &mut coordinator {
            coordinator.release_all().await;
        }
        Ok(())
    }
}

/// Runs the coordinator's rounds; never resolves without one (a host without Leases).
async fn coordinate(coordinator: &mut Option<shards::Coordinator>) {
    match coordinator {
        Some(coordinator) => coordinator.run().await,
        None => std::future::pending().await,
    }
}
