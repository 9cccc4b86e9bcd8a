//! The WasmOperator controller: keeps the operator manager running exactly the operators the
//! WasmOperators in its scope ask for.
//!
//! One task owns all state. Watch events (WasmOperators, and the metadata of ConfigMaps, whose
//! changes reload the operators they hold modules for) arrive on a channel and are handled one
//! at a time: a WasmOperator whose generation or module source changed is fetched, validated,
//! and loaded or reloaded; a deleted one is unloaded. The manager's stream of state changes
//! drives the swap and failure Events (one per change, however brief) and writes the status
//! at once when the phase changes in a way that matters (to or from Swapped, to Failed); the
//! rest (Running/Idle flips, reconcile counts) is written on the status timer. Failed
//! attempts are retried on the resync timer.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, ResourceExt};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::access::{self, ServiceAccountReadAccess};
use super::counts::ReconcileCounter;
use super::identity::impersonating_client;
use super::resource::WasmOperator;
use super::source::SourceFetcher;
use super::status::{self, Observation, Problem, RunningModule, StatusWriter};
use crate::cli::run_config::{parse_bytes, parse_duration};
use crate::operator::{OperatorManager, OperatorSpec, OperatorState, StateChange};
use crate::runtime::InstanceLimits;
use crate::scheduler::workqueue::BackoffConfig;

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct ControllerSettings {
    /// Only WasmOperators (and ConfigMaps) of this namespace; `None` = all namespaces.
    pub namespace: Option<String>,
    /// This host's identity, written to `status.host` and Events.
    pub identity: String,
    /// Limits of operators whose WasmOperator does not set them.
    pub limits: InstanceLimits,
    pub backoff: BackoffConfig,
    /// How often statuses are refreshed with the reconcile counts and Running/Idle flips
    /// (swaps and failures are written when they happen).
    pub status_interval: Duration,
    /// How often failed WasmOperators are tried again.
    pub resync_interval: Duration,
}

/// `namespace/name` of a WasmOperator or ConfigMap.
type Key = (String, String);

/// The manager's name for the operator of WasmOperator `namespace/name`: `<namespace>-<name>`,
/// shortened with a hash suffix when that is not a DNS label of at most 63 characters.
pub fn operator_name(namespace: &str, name: &str) -> String {
    let joined = format!("{namespace}-{name}").replace('.', "-");
    if joined.len() <= 63 {
        return joined;
    }
    let hash = hex::encode(Sha256::digest(format!("{namespace}/{name}").as_bytes()));
    format!("{}-{}", joined[..54].trim_end_matches('-'), &hash[..8])
}

/// What the controller knows of one WasmOperator.
struct Entry {
    operator: String,
    /// The (generation, module source version) last acted on.
    attempted: Option<(Option<i64>, Option<String>)>,
    running: Option<RunningModule>,
    problem: Option<Problem>,
    /// The manager's state of the operator as last reported (from the stream of state
    /// changes), for swap and failure Events.
    reported: Option<OperatorState>,
    written: Option<super::resource::WasmOperatorStatus>,
    /// The last warning recorded, so a retry failing the same way is not an Event each time.
    last_warning: Option<String>,
}

enum Change {
    Upsert(Box<WasmOperator>),
    Delete(Key),
    Relisted(Vec<WasmOperator>),
    ConfigMap(Key, Option<String>),
    ConfigMapsRelisted(HashMap<Key, Option<String>>),
}

pub struct Controller {
    manager: OperatorManager,
    host_client: kube::Client,
    host_config: kube::Config,
    fetcher: SourceFetcher,
    counter: ReconcileCounter,
    writer: StatusWriter,
    settings: ControllerSettings,
    objects: HashMap<Key, WasmOperator>,
    config_maps: HashMap<Key, Option<String>>,
    entries: HashMap<Key, Entry>,
    /// The WasmOperator of each operator name in `entries`.
    operators: HashMap<String, Key>,
}

/// Aborts the watch tasks when the controller stops (it is dropped when leadership is lost).
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl Controller {
    pub fn new(
        manager: OperatorManager,
        host_config: kube::Config,
        fetcher: SourceFetcher,
        counter: ReconcileCounter,
        settings: ControllerSettings,
    ) -> Result<Self, String> {
        let host_client = kube::Client::try_from(host_config.clone())
            .map_err(|error| format!("cannot create the Kubernetes client: {error}"))?;
        Ok(Controller {
            writer: StatusWriter::new(host_client.clone(), &settings.identity),
            manager,
            host_client,
            host_config,
            fetcher,
            counter,
            settings,
            objects: HashMap::new(),
            config_maps: HashMap::new(),
            entries: HashMap::new(),
            operators: HashMap::new(),
        })
    }

    /// Runs until dropped. Does not unload operators when dropped: the caller shuts the
    /// manager down.
    pub async fn run(mut self) {
        // Subscribed before anything is loaded, so no change is missed.
        let mut states = self.manager.state_changes();
        let (changes, mut incoming) = mpsc::unbounded_channel();
        let _tasks = AbortOnDrop(vec![
            tokio::spawn(watch_wasm_operators(self.api(), changes.clone())),
            tokio::spawn(watch_config_maps(self.config_map_api(), changes)),
        ]);
        let mut status_timer = tokio::time::interval(self.settings.status_interval);
        let mut resync_timer = tokio::time::interval(self.settings.resync_interval);
        status_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resync_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                change = incoming.recv() => match change {
                    Some(change) => self.apply_change(change).await,
                    None => return,
                },
                change = states.recv() => match change {
                    Ok(change) => self.state_changed(change).await,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "fell behind the operators' state changes; resyncing from the manager");
                        self.resync_states().await;
                    }
                    // The manager outlives its clones; nothing is left to control without it.
                    Err(RecvError::Closed) => return,
                },
                _ = status_timer.tick() => {
                    let keys: Vec<Key> = self.entries.keys().cloned().collect();
                    for key in keys {
                        self.refresh(&key).await;
                    }
                }
                _ = resync_timer.tick() => {
                    let failed: Vec<Key> = self
                        .entries
                        .iter()
                        .filter(|(_, entry)| entry.problem.is_some())
                        .map(|(key, _)| key.clone())
                        .collect();
                    for key in failed {
                        if let Some(entry) = self.entries.get_mut(&key) {
                            entry.attempted = None;
                        }
                        self.sync(&key).await;
                    }
                }
            }
        }
    }

    fn api(&self) -> Api<WasmOperator> {
        match &self.settings.namespace {
            Some(namespace) => Api::namespaced(self.host_client.clone(), namespace),
            None => Api::all(self.host_client.clone()),
        }
    }

    fn config_map_api(&self) -> Api<PartialObjectMeta<ConfigMap>> {
        match &self.settings.namespace {
            Some(namespace) => Api::namespaced(self.host_client.clone(), namespace),
            None => Api::all(self.host_client.clone()),
        }
    }

    async fn apply_change(&mut self, change: Change) {
        match change {
            Change::Upsert(object) => {
                let key = key_of(&object);
                self.objects.insert(key.clone(), *object);
                self.sync(&key).await;
            }
            Change::Delete(key) => {
                self.objects.remove(&key);
                self.sync(&key).await;
            }
            Change::Relisted(objects) => {
                let mut keys: Vec<Key> = self.objects.keys().cloned().collect();
                self.objects = objects
                    .into_iter()
                    .map(|object| (key_of(&object), object))
                    .collect();
                keys.extend(self.objects.keys().cloned());
                keys.sort();
                keys.dedup();
                for key in keys {
                    self.sync(&key).await;
                }
            }
            Change::ConfigMap(key, version) => {
                self.config_maps.insert(key.clone(), version);
                for user in self.users_of(&key) {
                    self.sync(&user).await;
                }
            }
            Change::ConfigMapsRelisted(versions) => {
                self.config_maps = versions;
                let keys: Vec<Key> = self.objects.keys().cloned().collect();
                for key in keys {
                    self.sync(&key).await;
                }
            }
        }
    }

    /// WasmOperators whose module is in ConfigMap `key`.
    fn users_of(&self, key: &Key) -> Vec<Key> {
        self.objects
            .iter()
            .filter(|((namespace, _), object)| {
                namespace == &key.0
                    && object
                        .spec
                        .module
                        .config_map
                        .as_ref()
                        .map(|source| &source.name)
                        == Some(&key.1)
            })
            .map(|(user, _)| user.clone())
            .collect()
    }

    /// The version of the module source that can change without the WasmOperator changing.
    fn source_version(&self, key: &Key, object: &WasmOperator) -> Option<String> {
        let source = object.spec.module.config_map.as_ref()?;
        self.config_maps
            .get(&(key.0.clone(), source.name.clone()))
            .cloned()
            .flatten()
    }

    async fn sync(&mut self, key: &Key) {
        let object = self
            .objects
            .get(key)
            .filter(|object| object.metadata.deletion_timestamp.is_none())
            .cloned();
        let Some(object) = object else {
            if let Some(entry) = self.entries.remove(key) {
                self.operators.remove(&entry.operator);
                if self.manager.state(&entry.operator).is_some() {
                    let _ = self.manager.unload(&entry.operator).await;
                }
                self.counter.reset(&entry.operator);
                tracing::info!(wasmoperator = %format!("{}/{}", key.0, key.1), operator = %entry.operator, "WasmOperator deleted: operator unloaded");
            }
            return;
        };
        let generation = object.metadata.generation;
        let known_version = self.source_version(key, &object);
        let entry = self.entries.entry(key.clone()).or_insert_with(|| Entry {
            operator: operator_name(&key.0, &key.1),
            attempted: None,
            running: None,
            problem: None,
            reported: None,
            written: object.status.clone(),
            last_warning: None,
        });
        self.operators.insert(entry.operator.clone(), key.clone());
        let up_to_date =
            entry
                .attempted
                .as_ref()
                .is_some_and(|(attempted_generation, attempted_version)| {
                    *attempted_generation == generation
                        && (known_version.is_none() || *attempted_version == known_version)
                });
        if !up_to_date {
            let operator = entry.operator.clone();
            let was_running = entry.running.clone();
            let (attempted_version, outcome) = self.start(&key.0, &operator, &object).await;
            let entry = self.entries.get_mut(key).expect("inserted above");
            entry.attempted = Some((generation, attempted_version.or(known_version)));
            match outcome {
                Ok(running) => {
                    let (reason, note) = match &was_running {
                        Some(old) => (
                            "Reloaded",
                            format!("replaced module {} with {}", old.digest, running.digest),
                        ),
                        None => ("Loaded", format!("loaded module {}", running.digest)),
                    };
                    entry.running = Some(running);
                    entry.problem = None;
                    entry.last_warning = None;
                    self.counter.reset(&operator);
                    self.writer.event(&object, false, reason, &note).await;
                }
                Err(problem) => {
                    // A load failure leaves nothing running; a fetch or validation failure
                    // leaves the previous module running.
                    if self.manager.state(&operator).is_none()
                        || matches!(
                            self.manager.state(&operator),
                            Some(OperatorState::Failed { .. })
                        )
                    {
                        entry.running = None;
                    }
                    let warning = format!("{}: {}", problem.reason, problem.message);
                    let repeated = entry.last_warning.as_ref() == Some(&warning);
                    entry.last_warning = Some(warning);
                    entry.problem = Some(problem.clone());
                    tracing::warn!(wasmoperator = %format!("{}/{}", key.0, key.1), reason = problem.reason, "{}", problem.message);
                    if !repeated {
                        self.writer
                            .event(&object, true, problem.reason, &problem.message)
                            .await;
                    }
                }
            }
        }
        self.refresh(key).await;
    }

    /// Fetches, validates and (re)loads the module; returns the source version fetched.
    async fn start(
        &self,
        namespace: &str,
        operator: &str,
        object: &WasmOperator,
    ) -> (Option<String>, Result<RunningModule, Problem>) {
        let fetched = match self.fetcher.fetch(namespace, &object.spec.module).await {
            Ok(fetched) => fetched,
            Err(error) => {
                return (
                    None,
                    Err(Problem {
                        reason: error.reason,
                        message: error.message,
                    }),
                )
            }
        };
        let version = fetched.source_version.clone();
        let outcome = async {
            let info = wasm_operator_abi::validate(&fetched.wasm).map_err(|error| Problem {
                reason: "ValidationFailed",
                message: format!(
                    "module {} is not a valid operator module: {}",
                    fetched.digest,
                    error.to_string().replace('\n', "; ")
                ),
            })?;
            let spec = self.operator_spec(namespace, operator, object, fetched.wasm)?;
            let result = if self.manager.state(operator).is_some() {
                self.manager.reload(spec).await
            } else {
                self.manager.load(spec).await
            };
            result.map_err(|error| Problem {
                reason: "LoadFailed",
                message: error.to_string(),
            })?;
            Ok(RunningModule {
                digest: fetched.digest.clone(),
                capabilities: info
                    .capabilities
                    .iter()
                    .map(|capability| capability.as_str().to_string())
                    .collect(),
            })
        }
        .await;
        (version, outcome)
    }

    fn operator_spec(
        &self,
        namespace: &str,
        operator: &str,
        object: &WasmOperator,
        wasm: Vec<u8>,
    ) -> Result<OperatorSpec, Problem> {
        let invalid = |message: String| Problem {
            reason: "InvalidSpec",
            message,
        };
        let spec = &object.spec;
        let limits = spec.limits.clone().unwrap_or_default();
        let limits = InstanceLimits {
            max_memory_bytes: match &limits.memory {
                Some(memory) => parse_bytes(memory)
                    .map_err(|error| invalid(format!("spec.limits.memory: {error}")))?,
                None => self.settings.limits.max_memory_bytes,
            },
            call_deadline: match &limits.call_deadline {
                Some(deadline) => parse_duration(deadline)
                    .map_err(|error| invalid(format!("spec.limits.callDeadline: {error}")))?,
                None => self.settings.limits.call_deadline,
            },
        };
        let swap_after = match spec.swap.as_ref().and_then(|swap| swap.after_idle.as_ref()) {
            Some(after) => Some(
                parse_duration(after)
                    .map_err(|error| invalid(format!("spec.swap.afterIdle: {error}")))?,
            ),
            None => None,
        };
        let config = spec
            .config
            .clone()
            .unwrap_or_else(|| Value::Object(Default::default()));
        if !config.is_object() {
            return Err(invalid("spec.config must be an object".into()));
        }
        let service_account = spec.service_account_name.as_deref().unwrap_or("default");
        let client = impersonating_client(&self.host_config, namespace, service_account).map_err(
            |message| Problem {
                reason: "LoadFailed",
                message,
            },
        )?;
        Ok(OperatorSpec {
            name: operator.to_string(),
            wasm: Arc::from(wasm),
            allow_http: spec.allow_http.clone(),
            limits,
            config,
            backoff: self.settings.backoff,
            client: Some(client),
            swap_after,
            read_access: Some(Arc::new(ServiceAccountReadAccess::new(
                self.host_client.clone(),
                namespace,
                service_account,
                access::DEFAULT_TTL,
            ))),
        })
    }

    /// An operator changed state: records swap and failure Events, and writes the status at
    /// once when the change is one to show promptly.
    async fn state_changed(&mut self, change: StateChange) {
        if let Some(key) = self.operators.get(&change.operator).cloned() {
            self.report(&key, change.state).await;
        }
    }

    /// Some state changes were missed: compares every operator's current state with the one
    /// last reported (so a missed swap is reported as one), then refreshes every status.
    async fn resync_states(&mut self) {
        let states: HashMap<String, OperatorState> = self
            .manager
            .list()
            .into_iter()
            .map(|operator| (operator.name, operator.state))
            .collect();
        let keys: Vec<Key> = self.entries.keys().cloned().collect();
        for key in keys {
            let state = self
                .entries
                .get(&key)
                .and_then(|entry| states.get(&entry.operator).cloned());
            if let Some(state) = state {
                self.report(&key, state).await;
            }
            self.refresh(&key).await;
        }
    }

    /// Records the Event of the operator of `key` entering `state`; writes the status now if
    /// it went to or from Swapped, or to Failed.
    async fn report(&mut self, key: &Key, state: OperatorState) {
        let (Some(object), Some(entry)) = (self.objects.get(key), self.entries.get_mut(key)) else {
            return;
        };
        if entry.reported.as_ref() == Some(&state) {
            return;
        }
        let previous = entry.reported.replace(state.clone());
        let was_swapped = previous == Some(OperatorState::Swapped);
        let was_failed = matches!(previous, Some(OperatorState::Failed { .. }));
        let event = match &state {
            OperatorState::Swapped => Some((
                false,
                "SwappedOut",
                "the idle operator was swapped out to disk".to_string(),
            )),
            // A load failure was reported when the load failed.
            OperatorState::Failed { reason } if !was_failed && entry.problem.is_none() => {
                Some((true, "Failed", reason.clone()))
            }
            _ if was_swapped => Some((
                false,
                "SwappedIn",
                "the operator was restored from its snapshot".to_string(),
            )),
            _ => None,
        };
        let prompt =
            was_swapped || matches!(state, OperatorState::Swapped | OperatorState::Failed { .. });
        if let Some((warning, reason, note)) = event {
            let object = object.clone();
            self.writer.event(&object, warning, reason, &note).await;
        }
        if prompt {
            self.refresh(key).await;
        }
    }

    /// Recomputes the status of `key` from the manager's state and the reconcile counts, and
    /// writes it if it changed.
    async fn refresh(&mut self, key: &Key) {
        let (Some(object), Some(entry)) = (self.objects.get(key), self.entries.get(key)) else {
            return;
        };
        let observation = Observation {
            generation: object.metadata.generation,
            running: entry.running.as_ref(),
            state: self.manager.state(&entry.operator),
            problem: entry.problem.as_ref(),
            counts: self.counter.get(&entry.operator),
            host: &self.settings.identity,
        };
        let new_status = status::status(&observation, entry.written.as_ref());
        let changed = entry
            .written
            .as_ref()
            .is_none_or(|written| status::differs(written, &new_status));
        if !changed {
            return;
        }
        match self.writer.write(object, &new_status).await {
            Ok(()) => {
                if let Some(entry) = self.entries.get_mut(key) {
                    entry.written = Some(new_status);
                }
            }
            Err(error) => {
                tracing::warn!(wasmoperator = %format!("{}/{}", key.0, key.1), "cannot write the status: {error}")
            }
        }
    }
}

fn key_of(object: &WasmOperator) -> Key {
    (object.namespace().unwrap_or_default(), object.name_any())
}

async fn watch_wasm_operators(api: Api<WasmOperator>, changes: mpsc::UnboundedSender<Change>) {
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut relisted = Vec::new();
    while let Some(event) = stream.next().await {
        let change = match event {
            Ok(Event::Apply(object)) => Change::Upsert(Box::new(object)),
            Ok(Event::Delete(object)) => Change::Delete(key_of(&object)),
            Ok(Event::Init) => {
                relisted.clear();
                continue;
            }
            Ok(Event::InitApply(object)) => {
                relisted.push(object);
                continue;
            }
            Ok(Event::InitDone) => Change::Relisted(std::mem::take(&mut relisted)),
            Err(error) => {
                tracing::warn!("watching WasmOperators: {error}; retrying");
                continue;
            }
        };
        if changes.send(change).is_err() {
            return;
        }
    }
}

async fn watch_config_maps(
    api: Api<PartialObjectMeta<ConfigMap>>,
    changes: mpsc::UnboundedSender<Change>,
) {
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut relisted = HashMap::new();
    let key = |meta: &PartialObjectMeta<ConfigMap>| {
        (meta.namespace().unwrap_or_default(), meta.name_any())
    };
    while let Some(event) = stream.next().await {
        let change = match event {
            Ok(Event::Apply(meta)) => Change::ConfigMap(key(&meta), meta.resource_version()),
            Ok(Event::Delete(meta)) => Change::ConfigMap(key(&meta), None),
            Ok(Event::Init) => {
                relisted.clear();
                continue;
            }
            Ok(Event::InitApply(meta)) => {
                relisted.insert(key(&meta), meta.resource_version());
                continue;
            }
            Ok(Event::InitDone) => Change::ConfigMapsRelisted(std::mem::take(&mut relisted)),
            Err(error) => {
                tracing::warn!("watching ConfigMaps: {error}; retrying");
                continue;
            }
        };
        if changes.send(change).is_err() {
            return;
        }
    }
}
