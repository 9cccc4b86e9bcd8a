//! Shared watches: one Kubernetes watch and one reflector store per (kind, namespace, label
//! selector), whatever the number of operators interested in it; with watch coalescing
//! ([`watch_scope`](super::watch_scope)) one per (kind, label selector) for all namespaces.
//!
//! Each operator subscribes with an event handler for one [`WatchKey`]; the watch fans every
//! change out to the subscribers whose key covers the object's namespace, and a subscriber sees
//! the cache only through its key ([`ScopedStore`], [`Subscription::get`]), so a subscription
//! served by a cluster-wide watch behaves exactly like one with a watch of its own. Subscriptions are reference counts: the watch starts with the first one and
//! stops when the last [`Subscription`] is dropped. A subscriber that joins a watch that has
//! already listed its objects is handed the current objects as `Added` events first, like a new
//! handler on a controller-runtime informer.
//!
//! The watcher reports objects as "applied", with no old version. The store still holds the
//! previous version when an event arrives, so each event carries it (`previous`), which is
//! what update predicates compare against. During a (re)list the store only switches to the
//! new list at its end: events of a relist are held back until then, so a subscriber that reads
//! the store on an event always sees at least that event's state, and objects that vanished
//! while the watch was broken are reported as `Deleted`.
//!
//! Event handlers run on the watch task with the fan-out lock held: they must be quick and
//! never block (push a key onto a workqueue and return).
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::{store::Writer, ObjectRef, Store};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::ResourceExt;
use prometheus_client::metrics::gauge::Gauge;

use super::discovery::{Discovery, DiscoveryError, ResolvedKind};
use super::watch_scope::{ScopeDecider, WatchScope};

/// What a subscription covers. Subscriptions with equal keys share one watch; with coalescing,
/// keys that differ only in their namespace do too.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchKey {
    pub api_version: String,
    pub kind: String,
    /// `None` watches all namespaces.
    pub namespace: Option<String>,
    /// Kubernetes label selector syntax; `None` matches every object.
    pub label_selector: Option<String>,
}

impl std::fmt::Display for WatchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} in ", self.api_version, self.kind)?;
        match &self.namespace {
            Some(namespace) => write!(f, "namespace {namespace}")?,
            None => write!(f, "all namespaces")?,
        }
        if let Some(selector) = &self.label_selector {
            write!(f, " with labels {selector}")?;
        }
        Ok(())
    }
}

impl WatchKey {
    /// True when an object in `namespace` (`None` for cluster-scoped ones) is within this key.
    fn covers(&self, namespace: Option<&str>) -> bool {
        match &self.namespace {
            None => true,
            Some(watched) => namespace == Some(watched.as_str()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One change of one object, as fanned out to subscribers.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub change: ChangeKind,
    /// The object now (for `Deleted`: its last state).
    pub object: Arc<DynamicObject>,
    /// The version the cache held before this change (`None` for a new object).
    pub previous: Option<Arc<DynamicObject>>,
}

/// Called for every event of a watch; see the module documentation for the rules.
pub type EventHandler = Arc<dyn Fn(&WatchEvent) + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(
        "{kind} in {api_version} is cluster-scoped, so it cannot be watched in namespace {namespace}: \
         set namespace to null"
    )]
    NamespaceOnClusterScopedKind {
        api_version: String,
        kind: String,
        namespace: String,
    },
}

/// Opens, shares and closes watches for all operators of the host.
#[derive(Clone)]
pub struct WatchManager {
    inner: Arc<ManagerInner>,
}

struct ManagerInner {
    client: kube::Client,
    discovery: Discovery,
    scope: ScopeDecider,
    /// Open watches by what they watch (for a coalesced watch: namespace `None`).
    watches: Mutex<HashMap<WatchKey, Arc<SharedWatch>>>,
    next_subscriber: AtomicU64,
    gauges: Option<WatchGauges>,
}

/// Gauges the manager keeps current: watches open and subscriptions across them.
#[derive(Clone, Default)]
pub struct WatchGauges {
    pub open: Gauge,
    pub subscriptions: Gauge,
}

struct SharedWatch {
    key: WatchKey,
    resolved: ResolvedKind,
    store: Store<DynamicObject>,
    fanout: Mutex<Fanout>,
    task: tokio::task::AbortHandle,
}

struct Fanout {
    writer: Writer<DynamicObject>,
    subscribers: BTreeMap<u64, Subscriber>,
    /// True once the first list completed: later subscribers get the store replayed.
    synced: bool,
    /// Events of a list in progress, delivered when the list completes.
    relist_events: Vec<(ObjectRef<DynamicObject>, DynamicObject)>,
}

struct Subscriber {
    key: WatchKey,
    handler: EventHandler,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Handlers run under these locks; a panicking handler must not wedge every watch after it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl WatchManager {
    /// `client` is the identity the watches run under (the host's own: watches are shared
    /// between operators, so they cannot use any single operator's identity).
    pub fn new(
        client: kube::Client,
        discovery: Discovery,
        scope: WatchScope,
        gauges: Option<WatchGauges>,
    ) -> Self {
        WatchManager {
            inner: Arc::new(ManagerInner {
                scope: ScopeDecider::new(scope, client.clone()),
                client,
                discovery,
                watches: Mutex::default(),
                next_subscriber: AtomicU64::new(1),
                gauges,
            }),
        }
    }

    pub fn discovery(&self) -> &Discovery {
        &self.inner.discovery
    }

    /// Number of watches open against the API server.
    pub fn open_watches(&self) -> usize {
        lock(&self.inner.watches).len()
    }

    /// The keys of the open watches with their subscriber counts.
    pub fn watch_subscribers(&self) -> Vec<(WatchKey, usize)> {
        let watches = lock(&self.inner.watches);
        let mut listed: Vec<_> = watches
            .iter()
            .map(|(key, watch)| (key.clone(), lock(&watch.fanout).subscribers.len()))
            .collect();
        listed.sort();
        listed
    }

    /// Subscribes `handler` to the watch for `key`, opening it if nobody watches it yet.
    pub async fn subscribe(
        &self,
        key: WatchKey,
        handler: EventHandler,
    ) -> Result<Subscription, WatchError> {
        let resolved = self
            .inner
            .discovery
            .resolve(&key.api_version, &key.kind)
            .await?;
        if let (false, Some(namespace)) = (resolved.namespaced, &key.namespace) {
            return Err(WatchError::NamespaceOnClusterScopedKind {
                api_version: key.api_version.clone(),
                kind: key.kind.clone(),
                namespace: namespace.clone(),
            });
        }
        let mut watched = key.clone();
        if key.namespace.is_some() && self.inner.scope.cluster_wide(&resolved).await {
            watched.namespace = None;
        }
        let id = self.inner.next_subscriber.fetch_add(1, Ordering::Relaxed);
        let mut watches = lock(&self.inner.watches);
        let watch = match watches.get(&watched) {
            Some(watch) => watch.clone(),
            None => {
                let watch = self.open(watched.clone(), resolved);
                watches.insert(watched, watch.clone());
                watch
            }
        };
        let subscription = Subscription {
            watch,
            key,
            id,
            manager: Arc::downgrade(&self.inner),
        };
        {
            let mut fanout = lock(&subscription.watch.fanout);
            if fanout.synced {
                for object in subscription.store().state() {
                    handler(&WatchEvent {
                        change: ChangeKind::Added,
                        object,
                        previous: None,
                    });
                }
            }
            let subscriber = Subscriber {
                key: subscription.key.clone(),
                handler,
            };
            fanout.subscribers.insert(id, subscriber);
        }
        update_gauges(&self.inner, &watches);
        drop(watches);
        Ok(subscription)
    }

    fn open(&self, key: WatchKey, resolved: ResolvedKind) -> Arc<SharedWatch> {
        let client = self.inner.client.clone();
        let api: Api<DynamicObject> = match &key.namespace {
            Some(namespace) => Api::namespaced_with(client, namespace, &resolved.resource),
            None => Api::all_with(client, &resolved.resource),
        };
        let mut config = watcher::Config::default();
        if let Some(selector) = &key.label_selector {
            config = config.labels(selector);
        }
        let writer = Writer::new(resolved.resource.clone());
        let store = writer.as_reader();
        // The task needs the watch (to fan out) and the watch needs the task's handle (to stop
        // it): build the watch around a channel that hands the task its own Arc.
        let (start_tx, start_rx) = tokio::sync::oneshot::channel::<Weak<SharedWatch>>();
        let events = watcher(api, config).default_backoff();
        let task = tokio::spawn(async move {
            let Ok(watch) = start_rx.await else { return };
            run_watch(watch, events).await;
        });
        let watch = Arc::new(SharedWatch {
            key,
            resolved,
            store,
            fanout: Mutex::new(Fanout {
                writer,
                subscribers: BTreeMap::new(),
                synced: false,
                relist_events: Vec::new(),
            }),
            task: task.abort_handle(),
        });
        let _ = start_tx.send(Arc::downgrade(&watch));
        tracing::info!(watch = %watch.key, "watch opened");
        watch
    }
}

/// Called with the watch map locked, so the figures are consistent with each other.
fn update_gauges(manager: &ManagerInner, watches: &HashMap<WatchKey, Arc<SharedWatch>>) {
    if let Some(gauges) = &manager.gauges {
        gauges.open.set(watches.len() as i64);
        let subscriptions: usize = watches
            .values()
            .map(|watch| lock(&watch.fanout).subscribers.len())
            .sum();
        gauges.subscriptions.set(subscriptions as i64);
    }
}

async fn run_watch(
    watch: Weak<SharedWatch>,
    events: impl futures::Stream<Item = Result<Event<DynamicObject>, watcher::Error>>,
) {
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        // The watch is gone once its last subscription dropped; the task is aborted then too.
        let Some(watch) = watch.upgrade() else { return };
        match event {
            Ok(event) => watch.apply(event),
            Err(error) => {
                // The watcher retries with backoff by itself; say why it has to.
                tracing::warn!(watch = %watch.key, %error, "watch failed; retrying with backoff");
            }
        }
    }
}

impl SharedWatch {
    fn object_ref(&self, object: &DynamicObject) -> ObjectRef<DynamicObject> {
        ObjectRef::from_obj_with(object, self.resolved.resource.clone())
    }

    /// The Added or Modified event for `object`, just taken into the store (which hands out
    /// its own shared copy).
    fn stored_change(
        &self,
        reference: &ObjectRef<DynamicObject>,
        object: DynamicObject,
        previous: Option<Arc<DynamicObject>>,
    ) -> WatchEvent {
        let object = self
            .store
            .get(reference)
            .unwrap_or_else(|| Arc::new(object));
        let change = if previous.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        WatchEvent {
            change,
            object,
            previous,
        }
    }

    fn apply(&self, event: Event<DynamicObject>) {
        let mut fanout = lock(&self.fanout);
        match event {
            Event::Init => {
                fanout.relist_events.clear();
                fanout.writer.apply_watcher_event(&Event::Init);
            }
            Event::InitApply(object) => {
                let reference = self.object_ref(&object);
                fanout
                    .writer
                    .apply_watcher_event(&Event::InitApply(object.clone()));
                fanout.relist_events.push((reference, object));
            }
            Event::InitDone => {
                let before: HashMap<ObjectRef<DynamicObject>, Arc<DynamicObject>> = self
                    .store
                    .state()
                    .into_iter()
                    .map(|object| (self.object_ref(&object), object))
                    .collect();
                fanout.writer.apply_watcher_event(&Event::InitDone);
                fanout.synced = true;
                let listed = std::mem::take(&mut fanout.relist_events);
                let mut still_there = HashSet::new();
                for (reference, object) in listed {
                    let previous = before.get(&reference).cloned();
                    still_there.insert(reference.clone());
                    if previous
                        .as_ref()
                        .is_some_and(|old| old.resource_version() == object.resource_version())
                    {
                        continue; // unchanged across the relist
                    }
                    fanout.dispatch(&self.stored_change(&reference, object, previous));
                }
                for (reference, object) in before {
                    if !still_there.contains(&reference) {
                        let event = WatchEvent {
                            change: ChangeKind::Deleted,
                            object: object.clone(),
                            previous: Some(object),
                        };
                        fanout.dispatch(&event);
                    }
                }
            }
            Event::Apply(object) => {
                let reference = self.object_ref(&object);
                let previous = self.store.get(&reference);
                fanout
                    .writer
                    .apply_watcher_event(&Event::Apply(object.clone()));
                fanout.dispatch(&self.stored_change(&reference, object, previous));
            }
            Event::Delete(object) => {
                let reference = self.object_ref(&object);
                let previous = self.store.get(&reference);
                fanout
                    .writer
                    .apply_watcher_event(&Event::Delete(object.clone()));
                fanout.dispatch(&WatchEvent {
                    change: ChangeKind::Deleted,
                    object: Arc::new(object),
                    previous,
                });
            }
        }
    }
}

impl Fanout {
    /// Hands `event` to every subscriber whose key covers the object's namespace.
    fn dispatch(&self, event: &WatchEvent) {
        let namespace = event.object.metadata.namespace.as_deref();
        for subscriber in self.subscribers.values() {
            if subscriber.key.covers(namespace) {
                (subscriber.handler)(event);
            }
        }
    }
}

/// A subscription's view of its watch's cache: only the objects its key covers.
#[derive(Clone)]
pub struct ScopedStore {
    store: Store<DynamicObject>,
    key: WatchKey,
}

impl ScopedStore {
    /// The cached objects within the key, in no particular order.
    pub fn state(&self) -> Vec<Arc<DynamicObject>> {
        let mut objects = self.store.state();
        if self.key.namespace.is_some() {
            objects.retain(|object| self.key.covers(object.metadata.namespace.as_deref()));
        }
        objects
    }
}

/// A live subscription to a shared watch. Dropping it unsubscribes; the last drop stops the watch.
pub struct Subscription {
    watch: Arc<SharedWatch>,
    /// What was subscribed to; the watch may cover more (all namespaces when coalesced).
    key: WatchKey,
    id: u64,
    manager: Weak<ManagerInner>,
}

impl Subscription {
    pub fn key(&self) -> &WatchKey {
        &self.key
    }

    /// True when this subscription is served by a watch of all namespaces although it asked
    /// for one.
    pub fn is_coalesced(&self) -> bool {
        self.key.namespace.is_some() && self.watch.key.namespace.is_none()
    }

    pub fn resolved(&self) -> &ResolvedKind {
        &self.watch.resolved
    }

    /// The client the watch uses (the host's identity); `None` once the manager is gone.
    pub fn client(&self) -> Option<kube::Client> {
        self.manager.upgrade().map(|manager| manager.client.clone())
    }

    /// The watch's cache (shared with every other subscriber of the same watch), restricted
    /// to this subscription's key.
    pub fn store(&self) -> ScopedStore {
        ScopedStore {
            store: self.watch.store.clone(),
            key: self.key.clone(),
        }
    }

    /// True once the watch listed its objects, so the store is complete for its key.
    pub fn is_synced(&self) -> bool {
        lock(&self.watch.fanout).synced
    }

    /// The cached object `namespace/name`, if the watch has it and this subscription's key
    /// covers it: a coalesced watch holds other namespaces' objects too, which are not this
    /// subscriber's to read.
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<DynamicObject>> {
        if self.watch.resolved.namespaced && !self.key.covers(namespace) {
            return None;
        }
        let mut reference = ObjectRef::new_with(name, self.watch.resolved.resource.clone());
        if let Some(namespace) = namespace {
            reference = reference.within(namespace);
        }
        self.watch.store.get(&reference)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let Some(manager) = self.manager.upgrade() else {
            self.watch.task.abort();
            return;
        };
        // Same lock order as `subscribe` (map, then fan-out), so a concurrent subscribe either
        // joins before the watch is closed or opens a new one after.
        let mut watches = lock(&manager.watches);
        let now_unused = {
            let mut fanout = lock(&self.watch.fanout);
            fanout.subscribers.remove(&self.id);
            fanout.subscribers.is_empty()
        };
        if now_unused {
            if watches
                .get(&self.watch.key)
                .is_some_and(|open| Arc::ptr_eq(open, &self.watch))
            {
                watches.remove(&self.watch.key);
            }
            self.watch.task.abort();
            tracing::info!(watch = %self.watch.key, "watch closed: no subscriber left");
        }
        update_gauges(&manager, &watches);
    }
}
