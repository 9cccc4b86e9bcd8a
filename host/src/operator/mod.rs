//! The operator manager: the host's API to load, observe and unload operators at run time.
//!
//! `load` compiles (or takes from the cache) and validates the module, starts one task that owns
//! the operator's instance, runs `_initialize` and `init`, subscribes the watches its
//! Registration asks for, and then reconciles from its workqueue. `unload` stops taking work,
//! lets an in-flight reconcile finish within the stop deadline, drops the operator's watch
//! subscriptions (closing watches nobody else uses) and its instance. Both can be repeated any
//! number of times without restarting the host; the command line and, later, a custom resource
//! controller are only callers of this API.
//!
//! An operator idle for its swap period, or the least recently used idle one when resident
//! operators exceed the memory budget, is swapped out to a snapshot file ([`residency`]); the
//! next event restores it before the reconcile is delivered (see `worker`).
mod queue;
mod registration;
mod reload;
mod residency;
mod resume;
pub(crate) mod services;
mod state;
mod swapping;
mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use wasm_operator_abi::{
    HostResponse, HttpRequest, InitInput, KubeRequest, ReconcileRequest, ReconcileResult,
};

use crate::egress::{AdminPolicy, EgressPolicy, HttpEgress};
use crate::kube::discovery::Discovery;
use crate::kube::watch_scope::WatchScope;
use crate::kube::watches::{WatchGauges, WatchManager};
use crate::metrics::{HostMetrics, OperatorLabels};
use crate::runtime::{InstanceLimits, LoadError, Runtime};
use crate::scheduler::mapping::ObjectKey;
use crate::scheduler::workqueue::BackoffConfig;

pub use registration::RegistrationLimits;
pub use services::ReadAccess;
pub use state::{OperatorState, StateChange};

/// Everything needed to run one operator.
#[derive(Clone)]
pub struct OperatorSpec {
    /// Unique within the host; a DNS label (lower-case letters, digits, `-`, at most 63).
    pub name: String,
    /// The module (`.wasm` bytes).
    pub wasm: Arc<[u8]>,
    /// URL prefixes the operator may reach with outbound HTTP; empty = none.
    pub allow_http: Vec<String>,
    pub limits: InstanceLimits,
    /// Handed to the guest's init as `config` (a JSON object).
    pub config: Value,
    /// Retry backoff for failed reconciles and instance recreation.
    pub backoff: BackoffConfig,
    /// The identity the operator's Kubernetes requests use; `None` = the host's client.
    pub client: Option<kube::Client>,
    /// How long the operator may stay idle before it is swapped out; `None` = the host's
    /// [`SwapConfig::swap_after`], `Some(Duration::MAX)` = never because of idleness.
    pub swap_after: Option<Duration>,
    /// Which kinds the operator's `cached: true` reads may be answered from the shared cache
    /// for (e.g. those its ServiceAccount may list and watch); `None` = every kind it watches.
    /// A read it denies goes to the API server with the operator's client.
    pub read_access: Option<Arc<dyn ReadAccess>>,
}

impl OperatorSpec {
    /// What the operator's `wasm_operator_init` is called with.
    pub fn init_input(&self) -> InitInput {
        InitInput {
            abi_version: 1,
            operator_name: self.name.clone(),
            config: self.config.clone(),
        }
    }
}

/// What happened in one reconcile, for observers.
#[derive(Clone, Debug)]
pub enum ReconcileOutcome {
    /// The guest's result (`requeueAfterMs` as it asked, before the host's bounds).
    Succeeded { result: ReconcileResult },
    /// `reason` is the metric label (guest, trap, deadline, memory, abi, host).
    Failed {
        reason: &'static str,
        message: String,
    },
}

/// One finished reconcile, as seen by the host.
#[derive(Clone, Debug)]
pub struct ReconcileRecord {
    pub operator: String,
    pub key: ObjectKey,
    /// What the guest was called with.
    pub request: ReconcileRequest,
    /// When the host called into the guest.
    pub started_at: Instant,
    pub duration: Duration,
    pub outcome: ReconcileOutcome,
    /// For a reconcile a RequeueAfter or retry timer queued: when that timer was due.
    pub timer_deadline: Option<Instant>,
    /// The operator was swapped out when this key came up, so the reconcile waited for a
    /// swap-in (false when it was resident, e.g. woken early by pre-wake).
    pub swapped_in_first: bool,
}

impl ReconcileRecord {
    /// Whether the request carried the object (false: see its `absent_reason`).
    pub fn had_object(&self) -> bool {
        self.request.object.is_some()
    }
}

/// Called after every reconcile of every operator (audit, tests, tooling). Must be quick.
pub type ReconcileObserver = Arc<dyn Fn(&ReconcileRecord) + Send + Sync>;

/// One host call a guest made, with the answer it got.
#[derive(Clone, Debug)]
pub struct HostCallRecord {
    pub operator: String,
    pub call: HostCall,
    pub response: HostResponse,
}

#[derive(Clone, Debug)]
pub enum HostCall {
    Kube(KubeRequest),
    Http(HttpRequest),
}

/// Called after every host call of every operator, in the order each operator made them
/// (transcripts, audit). Must be quick.
pub type HostCallObserver = Arc<dyn Fn(&HostCallRecord) + Send + Sync>;

/// When operators are swapped out to disk.
#[derive(Clone, Debug, Default)]
pub struct SwapConfig {
    /// Where snapshot files are written; `None` disables swapping.
    pub state_dir: Option<PathBuf>,
    /// How long an operator may stay idle before it is swapped out, unless its spec says
    /// otherwise; `None` = never because of idleness (the budget and forced swaps still apply).
    pub swap_after: Option<Duration>,
    /// Upper bound of the linear memory of all resident instances together, in bytes. Beyond
    /// it the least recently used idle operators are swapped out, whatever their idle period.
    pub memory_budget: Option<u64>,
    /// Swap a swapped-out operator in this long before its next RequeueAfter or retry timer
    /// is due, so the reconcile starts on time instead of after the swap-in; `None`: off.
    pub pre_wake: Option<Duration>,
    /// This host's name in the resume points it writes (see `resume`): the replica identity.
    pub identity: String,
}

/// Host-wide settings of the manager.
#[derive(Clone)]
pub struct ManagerConfig {
    /// Upper bound of one outbound HTTP request (a guest may ask for less).
    pub http_timeout: Duration,
    /// Largest outbound HTTP response body handed to a guest.
    pub http_max_response_bytes: usize,
    /// The cluster admin's bounds on outbound HTTP (prefixes, non-public networks allowed).
    pub egress: AdminPolicy,
    /// How long `unload` and `shutdown` wait for an in-flight reconcile before abandoning it.
    pub stop_deadline: Duration,
    pub reconcile_observer: Option<ReconcileObserver>,
    pub host_call_observer: Option<HostCallObserver>,
    pub swap: SwapConfig,
    /// What each operator's Registration and requeues may ask of the host.
    pub registration_limits: RegistrationLimits,
    /// Whether namespaced watches of one kind share a cluster-wide watch.
    pub watch_scope: WatchScope,
    /// Asked before each reconcile whether the operator may still run on this host (a
    /// sharded host may have given its shard up); `None`: always.
    pub fence: Option<Fence>,
}

/// Whether operator `name` may start a reconcile on this host now. A worker that finds it
/// closed ends without reconciling; whoever closed it aborts the operator.
pub type Fence = Arc<dyn Fn(&str) -> bool + Send + Sync>;

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            http_timeout: Duration::from_secs(10),
            http_max_response_bytes: 4 * 1024 * 1024,
            egress: AdminPolicy::default(),
            stop_deadline: Duration::from_secs(10),
            reconcile_observer: None,
            host_call_observer: None,
            swap: SwapConfig::default(),
            registration_limits: RegistrationLimits::default(),
            watch_scope: WatchScope::default(),
            fence: None,
        }
    }
}

/// An operator as listed by [`OperatorManager::list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorStatus {
    pub name: String,
    pub state: OperatorState,
    /// `sha256:<hex>` of the module, once it is compiled.
    pub digest: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("operator name {0:?} is not valid: use a DNS label (lower-case letters, digits and '-', at most 63 characters)")]
    InvalidName(String),
    #[error("operator {0:?} is already loaded: unload it first")]
    AlreadyLoaded(String),
    #[error("no operator named {0:?} is loaded")]
    NotLoaded(String),
    #[error("operator {name:?} config must be a JSON object, got {found}")]
    InvalidConfig { name: String, found: &'static str },
    #[error("operator {name:?} has an invalid HTTP allowlist: {reason}")]
    InvalidAllowlist { name: String, reason: String },
    #[error("operator {name:?} cannot be loaded: {source}")]
    Load {
        name: String,
        #[source]
        source: LoadError,
    },
    #[error("operator {name:?} failed to start: {reason}")]
    Start { name: String, reason: String },
    #[error("operator {0:?} was unloaded while it was loading")]
    UnloadedWhileLoading(String),
    #[error("operator {name:?} cannot be swapped: {reason}")]
    Swap { name: String, reason: String },
}

struct OperatorHandle {
    task: tokio::task::JoinHandle<()>,
    queue: Arc<queue::OperatorQueue>,
    stop: watch::Sender<bool>,
    control: mpsc::UnboundedSender<worker::Control>,
    digest: String,
    /// Held by the worker's swap-out thread while it writes (see [`worker::SwapPolicy::writing`]).
    writing: Arc<Mutex<()>>,
}

impl OperatorHandle {
    /// Waits until no swap-out of this operator is being written. Aborting the worker's task
    /// does not stop a swap-out thread already writing; an operator given up (its shard taken
    /// by another replica) must not write into its state directory after it is reported stopped.
    async fn writes_done(&self) {
        let writing = self.writing.clone();
        let _ = tokio::task::spawn_blocking(move || {
            drop(
                writing
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            );
        })
        .await;
    }
}

struct ManagerInner {
    runtime: Runtime,
    client: kube::Client,
    watches: WatchManager,
    metrics: HostMetrics,
    config: ManagerConfig,
    board: state::StateBoard,
    residency: residency::Residency,
    /// Bounds the swap-outs written at once, host-wide (see [`worker::SwapPolicy::writers`]).
    swap_writers: Arc<tokio::sync::Semaphore>,
    handles: Mutex<HashMap<String, OperatorHandle>>,
    /// Set by `shutdown`: stopping operators then leave their state to the next process
    /// instead of discarding it.
    shutting_down: Arc<std::sync::atomic::AtomicBool>,
}

/// Loads, runs and unloads operators. Cheap to clone.
#[derive(Clone)]
pub struct OperatorManager {
    inner: Arc<ManagerInner>,
}

/// Whether `name` may name an operator: a DNS label (it names files, metrics and log fields).
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl OperatorManager {
    /// `client` is the host's identity: it runs discovery and the shared watches, and the
    /// requests of operators whose spec has no client of their own.
    pub fn new(
        runtime: Runtime,
        client: kube::Client,
        metrics: HostMetrics,
        config: ManagerConfig,
    ) -> Self {
        let discovery = Discovery::new(client.clone());
        let gauges = WatchGauges {
            open: metrics.watches_open.clone(),
            subscriptions: metrics.watch_subscriptions.clone(),
        };
        let watches =
            WatchManager::new(client.clone(), discovery, config.watch_scope, Some(gauges));
        let board = state::StateBoard::new(metrics.clone());
        let residency = residency::Residency::new(config.swap.memory_budget);
        OperatorManager {
            inner: Arc::new(ManagerInner {
                runtime,
                client,
                watches,
                metrics,
                config,
                board,
                residency,
                swap_writers: Arc::new(tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(2, |cores| cores.get()),
                )),
                handles: Mutex::default(),
                shutting_down: Arc::default(),
            }),
        }
    }

    pub fn watches(&self) -> &WatchManager {
        &self.inner.watches
    }

    pub fn metrics(&self) -> &HostMetrics {
        &self.inner.metrics
    }

    fn handles(&self) -> std::sync::MutexGuard<'_, HashMap<String, OperatorHandle>> {
        self.inner
            .handles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Loads and starts an operator; returns once it is initialised and watching. On failure the
    /// operator stays listed as Failed with the reason (unload it before loading it again),
    /// except for an invalid name or a name already in use. A failed init is the exception that
    /// heals itself: `load` returns the first failure, and the operator keeps retrying init in a
    /// fresh instance with its backoff (Failed with the latest error meanwhile) until it starts
    /// or is unloaded.
    pub async fn load(&self, spec: OperatorSpec) -> Result<(), OperatorError> {
        let name = spec.name.clone();
        if !valid_name(&name) {
            return Err(OperatorError::InvalidName(name));
        }
        if !spec.config.is_object() {
            return Err(OperatorError::InvalidConfig {
                name,
                found: json_type(&spec.config),
            });
        }
        if !self.inner.board.claim(&name) {
            return Err(OperatorError::AlreadyLoaded(name));
        }
        let egress = match HttpEgress::new(EgressPolicy {
            allow_prefixes: spec.allow_http.clone(),
            default_timeout: self.inner.config.http_timeout,
            max_response_bytes: self.inner.config.http_max_response_bytes,
            admin: self.inner.config.egress.clone(),
        }) {
            Ok(egress) => egress,
            Err(error) => {
                self.inner.board.remove(&name);
                return Err(OperatorError::InvalidAllowlist {
                    name,
                    reason: error.to_string(),
                });
            }
        };
        // Capabilities are enforced at load: a module importing one its operator was not
        // granted never runs. So is the memory limit: a module whose initial memory exceeds it
        // could never be instantiated.
        let granted = crate::runtime::granted_capabilities(&spec.allow_http);
        let loaded = self.inner.runtime.load(&spec.wasm).await;
        let module = match loaded.and_then(|module| {
            module.check_grants(&name, &granted)?;
            module.check_memory_limit(&name, &spec.limits)?;
            Ok(module)
        }) {
            Ok(module) => module,
            Err(source) => {
                self.inner.board.set(
                    &name,
                    OperatorState::Failed {
                        reason: source.to_string(),
                    },
                );
                return Err(OperatorError::Load { name, source });
            }
        };
        let client = spec
            .client
            .clone()
            .unwrap_or_else(|| self.inner.client.clone());
        let services = Arc::new(services::OperatorServices::new(
            &name,
            client,
            self.inner.watches.discovery().clone(),
            egress,
            self.inner.config.host_call_observer.clone(),
            spec.read_access.clone(),
            &self.inner.metrics,
        ));
        let depth = self
            .inner
            .metrics
            .queue_depth
            .get_or_create(&OperatorLabels {
                operator: name.clone(),
            })
            .clone();
        let queue = Arc::new(queue::OperatorQueue::new(spec.backoff, depth));
        let (stop, stop_receiver) = watch::channel(false);
        let (control, controls) = mpsc::unbounded_channel();
        let swap = &self.inner.config.swap;
        let writing = Arc::new(Mutex::new(()));
        let swap_policy = worker::SwapPolicy {
            state_dir: swap
                .state_dir
                .as_deref()
                .map(|dir| resume::operator_dir(dir, &name)),
            identity: swap.identity.clone(),
            init_digest: resume::init_digest(&spec.init_input(), &spec.limits),
            keep_on_stop: self.inner.shutting_down.clone(),
            writing: writing.clone(),
            after: spec.swap_after.or(swap.swap_after),
            pre_wake: swap.pre_wake.filter(|lead| !lead.is_zero()),
            writers: self.inner.swap_writers.clone(),
        };
        self.inner.residency.register(&name, control.clone());
        let worker = worker::Worker {
            name: name.clone(),
            module: module.clone(),
            limits: spec.limits,
            init_input: spec.init_input(),
            services,
            queue: queue.clone(),
            watches: self.inner.watches.clone(),
            board: self.inner.board.clone(),
            metrics: self.inner.metrics.clone(),
            backoff: spec.backoff,
            observer: self.inner.config.reconcile_observer.clone(),
            stop: stop_receiver,
            controls,
            swap: swap_policy,
            residency: self.inner.residency.clone(),
            registration_limits: self.inner.config.registration_limits,
            registration: None,
            fence: self.inner.config.fence.clone(),
            requeue_bucket: crate::scheduler::ratelimit::TokenBucket::new(
                self.inner.config.registration_limits.requeue_rate,
                Instant::now(),
            ),
        };
        let (ready_sender, ready) = oneshot::channel();
        let task = tokio::spawn(worker.run(ready_sender));
        let handle = OperatorHandle {
            task,
            queue,
            stop,
            control,
            digest: module.digest().to_string(),
            writing,
        };
        self.handles().insert(name.clone(), handle);
        let started = ready
            .await
            .unwrap_or_else(|_| Err("its task ended before it was initialised".into()));
        if self.inner.board.get(&name).is_none() {
            // `unload` ran meanwhile and removed it from the board; finish the job.
            self.stop_operator(&name).await;
            return Err(OperatorError::UnloadedWhileLoading(name));
        }
        started.map_err(|reason| OperatorError::Start { name, reason })
    }

    /// Stops an operator: no new reconciles, the in-flight one may finish within the stop
    /// deadline, its watch subscriptions and instance are dropped, and it is no longer listed.
    pub async fn unload(&self, name: &str) -> Result<(), OperatorError> {
        if self.inner.board.get(name).is_none() {
            return Err(OperatorError::NotLoaded(name.to_string()));
        }
        self.inner.board.remove(name);
        self.stop_operator(name).await;
        tracing::info!(operator = name, "operator unloaded");
        Ok(())
    }

    async fn stop_operator(&self, name: &str) {
        let handle = self.handles().remove(name);
        if let Some(mut handle) = handle {
            let _ = handle.stop.send(true);
            handle.queue.shut_down();
            let deadline = self.inner.config.stop_deadline;
            if tokio::time::timeout(deadline, &mut handle.task)
                .await
                .is_err()
            {
                tracing::warn!(
                    operator = name,
                    deadline_ms = deadline.as_millis() as u64,
                    "the in-flight reconcile did not finish within the stop deadline; abandoning it"
                );
                handle.task.abort();
                let _ = (&mut handle.task).await;
                handle.writes_done().await;
            }
        }
        self.inner.residency.remove(name);
        self.inner.metrics.forget_operator(name);
    }

    /// Swaps the operator out now, whatever its idle period; returns once its snapshot is
    /// written (after the reconcile in flight, if any). Already swapped out: nothing to do.
    pub async fn swap_out(&self, name: &str) -> Result<(), OperatorError> {
        self.control(name, |reply| worker::Control::SwapOut {
            reply: Some(reply),
        })
        .await
    }

    /// Restores a swapped-out operator now, without delivering a reconcile. Already resident:
    /// nothing to do.
    pub async fn swap_in(&self, name: &str) -> Result<(), OperatorError> {
        self.control(name, |reply| worker::Control::SwapIn { reply })
            .await
    }

    async fn control(
        &self,
        name: &str,
        command: impl FnOnce(oneshot::Sender<Result<(), String>>) -> worker::Control,
    ) -> Result<(), OperatorError> {
        let not_loaded = || OperatorError::NotLoaded(name.to_string());
        let (reply, answer) = oneshot::channel();
        let sent = self
            .handles()
            .get(name)
            .map(|handle| handle.control.send(command(reply)).is_ok());
        if sent != Some(true) {
            return Err(not_loaded());
        }
        answer
            .await
            .map_err(|_| not_loaded())?
            .map_err(|reason| OperatorError::Swap {
                name: name.to_string(),
                reason,
            })
    }

    /// Stops every operator at once, abandoning in-flight reconciles instead of letting them
    /// finish (for a replica that lost leadership: another may take over any moment).
    /// Returns once every operator's task has ended.
    pub async fn abort_all(&self) {
        let names = self.inner.board.all().into_iter().map(|(name, _)| name);
        self.abort(names.collect()).await;
    }

    /// Stops operators `names` at once, abandoning their in-flight reconciles (for a replica
    /// that gave their shard up). Names not loaded are skipped. Returns once their tasks ended.
    pub async fn abort(&self, names: Vec<String>) {
        for name in &names {
            self.inner.board.remove(name);
        }
        let handles: Vec<(String, OperatorHandle)> = {
            let mut all = self.handles();
            names
                .into_iter()
                .filter_map(|name| all.remove(&name).map(|handle| (name, handle)))
                .collect()
        };
        for (_, handle) in &handles {
            let _ = handle.stop.send(true);
            handle.queue.shut_down();
            handle.task.abort();
        }
        for (name, mut handle) in handles {
            let _ = (&mut handle.task).await;
            handle.writes_done().await;
            self.inner.residency.remove(&name);
            self.inner.metrics.forget_operator(&name);
            tracing::info!(operator = %name, "operator aborted");
        }
    }

    /// Unloads every operator, letting in-flight reconciles finish within the stop deadline.
    /// With a state directory, each operator is swapped out and its snapshot left for the next
    /// process to resume (see `resume`), instead of being discarded as by `unload`.
    pub async fn shutdown(&self) {
        self.inner
            .shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let names: Vec<String> = self
            .inner
            .board
            .all()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let stops = names.iter().map(|name| self.unload(name));
        futures::future::join_all(stops).await;
    }

    /// Every state change of every operator from now on, in the order each operator went
    /// through them (loading and unloading are not changes: see [`OperatorManager::list`]).
    /// A receiver that falls more than a thousand changes behind gets `Lagged` and skips ahead.
    pub fn state_changes(&self) -> tokio::sync::broadcast::Receiver<StateChange> {
        self.inner.board.subscribe()
    }

    /// The operator's current state, or `None` if no operator of that name is loaded.
    pub fn state(&self, name: &str) -> Option<OperatorState> {
        self.inner.board.get(name)
    }

    /// Whether operator `name` is Failed and its task is still retrying by itself (a failed
    /// init, or an instance it cannot recreate): it starts on its own once the cause is gone,
    /// so reloading it would only reset its backoff.
    pub fn retrying(&self, name: &str) -> bool {
        matches!(self.state(name), Some(OperatorState::Failed { .. }))
            && self
                .handles()
                .get(name)
                .is_some_and(|handle| !handle.task.is_finished())
    }

    /// Every loaded operator (including failed ones), by name.
    pub fn list(&self) -> Vec<OperatorStatus> {
        let handles = self.handles();
        self.inner
            .board
            .all()
            .into_iter()
            .map(|(name, state)| {
                let digest = handles.get(&name).map(|handle| handle.digest.clone());
                OperatorStatus {
                    name,
                    state,
                    digest,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names_are_dns_labels() {
        for good in ["web", "web-app", "a1", &"x".repeat(63)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            "Web",
            "web_app",
            "-web",
            "web-",
            "web.app",
            &"x".repeat(64),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
