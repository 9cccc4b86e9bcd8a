//! The WasmOperator controller: keeps the operator manager running exactly the operators the
//! WasmOperators in its scope ask for.
//!
//! One task owns all state. Watch events (WasmOperators, and the metadata of ConfigMaps, whose
//! changes reload the operators they hold modules for) arrive on a channel and are handled one
//! at a time: a WasmOperator whose generation or module source changed is fetched (in a task of
//! its own, so a slow source holds back nobody else: [`fetch`]), then validated and loaded or
//! reloaded when its module arrives; a deleted one is unloaded. The manager's stream of state changes
//! drives the swap and failure Events (one per change, however brief) and writes the status
//! at once when the phase changes in a way that matters (to or from Swapped, to Failed); the
//! rest (Running/Idle flips, reconcile counts) is written on the status timer. Failed
//! attempts are retried on the resync timer, except an operator the manager is still retrying
//! by itself (a failing init, an instance that cannot be recreated): reloading it would only
//! throw its backoff away, and when its retry succeeds its status turns Ready at once.
//!
//! On a sharded host the controller runs only the WasmOperators of the shards the replica
//! holds ([`shards`]): an operator whose shard was given up is forgotten (the coordinator has
//! aborted it; its new holder writes the status from now on), and the WasmOperators of a
//! shard taken over are synced like new ones.
//!
//! This module owns the controller's state and its run loop; [`watch`] turns watch events into
//! changes, [`fetch`] runs module fetches concurrently, [`reconcile`] brings one WasmOperator's
//! operator in line with its spec, [`spec`]
//! translates a spec into the manager's `OperatorSpec`, and [`report`] writes statuses and
//! Events.
mod fetch;
mod reconcile;
mod report;
mod shards;
mod spec;
mod watch;

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::core::PartialObjectMeta;
use kube::Api;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::counts::ReconcileCounter;
use super::resource::WasmOperator;
use super::shards::{Held, ShardView};
use super::source::SourceFetcher;
use super::status::{Problem, RunningModule, StatusWriter};
use crate::operator::{OperatorManager, OperatorState};
use crate::runtime::InstanceLimits;
use crate::scheduler::workqueue::BackoffConfig;
use fetch::{Fetched, Fetches, InFlight};
use watch::{watch_config_maps, watch_wasm_operators};

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct ControllerSettings {
    /// Only WasmOperators (and ConfigMaps) of this namespace; `None` = all namespaces.
    pub namespace: Option<String>,
    /// This host's identity, written to `status.host` and Events.
    pub identity: String,
    /// Only WasmOperators matching this label selector (e.g. to shard tenants over hosts, or
    /// to keep tests apart); `None` = all of them in scope.
    pub selector: Option<String>,
    /// Limits of operators whose WasmOperator does not set them.
    pub limits: InstanceLimits,
    /// The most a WasmOperator may ask for; larger values are clamped (and the status says so).
    pub maxima: TenantMaxima,
    pub backoff: BackoffConfig,
    /// How often statuses are refreshed with the reconcile counts and Running/Idle flips
    /// (swaps and failures are written when they happen).
    pub status_interval: Duration,
    /// How often failed WasmOperators are tried again.
    pub resync_interval: Duration,
    /// How long a ServiceAccount's SubjectAccessReview answer is reused: an RBAC change
    /// reaches its operator (cached reads, the registration check) within this period.
    pub access_ttl: Duration,
}

pub use spec::TenantMaxima;

/// `namespace/name` of a WasmOperator or ConfigMap.
type Key = (String, String);

/// The manager's name for the operator of WasmOperator `namespace/name`: unique per
/// (namespace, name), stable across restarts, and a DNS label (so it is safe in snapshot file
/// names, cache paths and metric labels).
///
/// A namespace is a DNS label and a WasmOperator name a DNS subdomain, so `<namespace>-<name>`
/// alone is ambiguous: `team/a-b` and `team-a/b` would both be `team-a-b`, and `x/a.b` and
/// `x/a-b` both `x-a-b` once dots are replaced. The scheme:
/// - when both parts are only lower-case letters and digits, the name is `<namespace>-<name>`: it has exactly
///   one `-`, so the two parts can be read back from it (injective);
/// - otherwise it is `<namespace>-<name>` (dots as `-`, cut to fit) followed by `-` and the
///   first 12 hex digits of SHA-256(`namespace/name`). These names always contain at least
///   three `-` (separator, the `-` or `.` that made the name ambiguous, the hash's), so they
///   never equal a name of the first kind; two of them are equal only when 48-bit hashes
///   collide, and the controller refuses a second WasmOperator for a name already in use
///   (`NameCollision`) rather than ever handing it another tenant's operator.
pub fn operator_name(namespace: &str, name: &str) -> String {
    let plain = |part: &str| {
        part.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    let joined = format!("{namespace}-{name}");
    if plain(namespace) && plain(name) && joined.len() <= 63 {
        return joined;
    }
    let hash = hex::encode(Sha256::digest(format!("{namespace}/{name}").as_bytes()));
    // The API server only admits DNS names; anything else still maps to a valid label.
    let readable: String = joined
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' => c,
            _ => '-',
        })
        .take(50) // 63 - 1 (separator) - 12 (hash)
        .collect();
    let prefix = readable.trim_matches('-');
    let prefix = if prefix.is_empty() { "wo" } else { prefix };
    format!("{prefix}-{}", &hash[..12])
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
    /// The module fetch in flight, if any.
    fetching: Option<InFlight>,
    /// A module the manager holds although its load failed (its init fails and the manager
    /// retries it), with the problem recorded for that failure: once the operator starts, the
    /// module is running and the problem solved.
    pending: Option<(RunningModule, Problem)>,
}

pub struct Controller {
    manager: OperatorManager,
    host_client: kube::Client,
    host_config: kube::Config,
    fetches: Fetches,
    /// Taken by `run`.
    fetched: Option<mpsc::UnboundedReceiver<Fetched>>,
    counter: ReconcileCounter,
    writer: StatusWriter,
    settings: ControllerSettings,
    objects: HashMap<Key, WasmOperator>,
    config_maps: HashMap<Key, Option<String>>,
    entries: HashMap<Key, Entry>,
    /// The WasmOperator of each operator name in `entries`.
    operators: HashMap<String, Key>,
    /// The shards this replica holds (`None`: not sharded, every WasmOperator is ours), and
    /// what they were when last acted on.
    shards: Option<(ShardView, Held)>,
}

/// The shards held once they change; never, when not sharded.
async fn next_shards(view: &mut Option<ShardView>) -> Held {
    match view {
        Some(view) => view.changed().await,
        None => std::future::pending().await,
    }
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
        let (fetches, fetched) = Fetches::new(fetcher);
        Ok(Controller {
            writer: StatusWriter::new(host_client.clone(), &settings.identity),
            manager,
            host_client,
            host_config,
            fetches,
            fetched: Some(fetched),
            counter,
            settings,
            objects: HashMap::new(),
            config_maps: HashMap::new(),
            entries: HashMap::new(),
            operators: HashMap::new(),
            shards: None,
        })
    }

    /// Runs only the WasmOperators of the shards `view` says this replica holds.
    pub fn with_shards(mut self, view: ShardView) -> Self {
        let held = view.held();
        self.shards = Some((view, held));
        self
    }

    /// Runs until dropped. Does not unload operators when dropped: the caller shuts the
    /// manager down.
    pub async fn run(mut self) {
        // Subscribed before anything is loaded, so no change is missed.
        let mut states = self.manager.state_changes();
        let (changes, mut incoming) = mpsc::unbounded_channel();
        let Some(mut fetched) = self.fetched.take() else {
            return; // `run` consumes the controller: cannot happen
        };
        let _tasks = AbortOnDrop(vec![
            tokio::spawn(watch_wasm_operators(
                self.api(),
                self.settings.selector.clone(),
                changes.clone(),
            )),
            tokio::spawn(watch_config_maps(self.config_map_api(), changes)),
        ]);
        let mut status_timer = tokio::time::interval(self.settings.status_interval);
        let mut resync_timer = tokio::time::interval(self.settings.resync_interval);
        let mut shard_changes = self.shards.as_ref().map(|(view, _)| view.clone());
        status_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resync_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                change = incoming.recv() => match change {
                    Some(change) => self.apply_change(change).await,
                    None => return,
                },
                // The controller holds the sender: never closed while it runs.
                Some(module) = fetched.recv() => self.module_fetched(module).await,
                held = next_shards(&mut shard_changes) => self.shards_changed(held).await,
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
                    // Failed to load, or failed while running (e.g. its ServiceAccount lost
                    // the reads its registration needs): both are tried again. Not an
                    // operator the manager is retrying by itself (its init fails): a reload
                    // would only reset its backoff.
                    let failed: Vec<Key> = self
                        .entries
                        .iter()
                        .filter(|(_, entry)| {
                            let retrying = self.manager.retrying(&entry.operator);
                            match &entry.problem {
                                Some(problem) => !(retrying
                                    && entry
                                        .pending
                                        .as_ref()
                                        .is_some_and(|(_, failure)| failure == problem)),
                                None => {
                                    !retrying
                                        && matches!(
                                            self.manager.state(&entry.operator),
                                            Some(OperatorState::Failed { .. })
                                        )
                                }
                            }
                        })
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
}

#[cfg(test)]
mod tests {
    use super::operator_name;
    use crate::operator::valid_name as dns_label;

    #[test]
    fn names_that_joined_collide_get_distinct_operators() {
        let pairs = [
            (("team", "a-b"), ("team-a", "b")),
            (("x", "a.b"), ("x", "a-b")),
            (("x-a", "b"), ("x", "a.b")),
            (("a", "b-c"), ("a-b", "c")),
        ];
        for ((ns1, n1), (ns2, n2)) in pairs {
            let (one, two) = (operator_name(ns1, n1), operator_name(ns2, n2));
            assert_ne!(one, two, "{ns1}/{n1} and {ns2}/{n2}");
            assert!(dns_label(&one) && dns_label(&two), "{one} {two}");
        }
    }

    #[test]
    fn names_are_stable_dns_labels() {
        assert_eq!(operator_name("team", "web"), "team-web");
        assert_eq!(operator_name("team", "a-b"), operator_name("team", "a-b"));
        let long = operator_name(&"n".repeat(63), &"x.y".repeat(80));
        assert!(dns_label(&long), "{long}");
        assert!(dns_label(&operator_name("-", ".")));
        assert!(dns_label(&operator_name("ns", "ÄÖ")));
        // A plain name is never a hashed one: plain names have exactly one '-'.
        let hashed = operator_name("team", "a-b");
        assert!(hashed.matches('-').count() >= 3, "{hashed}");
        // Plain names too long for a label are hashed as well.
        assert!(dns_label(&operator_name(&"a".repeat(40), &"b".repeat(40))));
    }
}
