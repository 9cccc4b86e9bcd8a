//! Subscribes the watches an operator's Registration asks for (For, Owns, Watches) and wires
//! each one's events, through the mapping and predicates, into the operator's workqueue.
use std::sync::Arc;

use kube::api::{DynamicObject, TypeMeta};
use kube::runtime::reflector::Store;
use kube::ResourceExt;
use serde_json::Value;
use wasm_operator_abi::{Registration, WatchSpec};

use crate::kube::selector::LabelSelector;
use crate::kube::watches::{EventHandler, Subscription, WatchKey, WatchManager};
use crate::scheduler::mapping::{keys_for_event, EventSource, ForKind, ObjectKey};

use super::queue::OperatorQueue;

/// The live watches of one operator. Dropping it unsubscribes them all.
pub(crate) struct OperatorWatches {
    /// The watch of the `for` kind: its cache supplies the object of each reconcile request.
    pub primary: Arc<Subscription>,
    /// Every subscription, the primary first.
    pub all: Vec<Arc<Subscription>>,
}

impl OperatorWatches {
    /// The cached `for` object as the API server would send it, or `None` if it is gone.
    pub fn object(&self, key: &ObjectKey) -> Option<Value> {
        let object = self.primary.get(key.namespace.as_deref(), &key.name)?;
        let mut object = DynamicObject::clone(&object);
        if object.types.is_none() {
            let resource = &self.primary.resolved().resource;
            object.types = Some(TypeMeta {
                api_version: resource.api_version.clone(),
                kind: resource.kind.clone(),
            });
        }
        serde_json::to_value(object).ok()
    }
}

fn watch_key(spec: &WatchSpec) -> Result<WatchKey, String> {
    let label_selector = spec
        .label_selector
        .clone()
        .filter(|selector| !selector.trim().is_empty());
    if let Some(selector) = &label_selector {
        LabelSelector::parse(selector)
            .map_err(|error| format!("watch of {}: {error}", spec.kind))?;
    }
    Ok(WatchKey {
        api_version: spec.api_version.clone(),
        kind: spec.kind.clone(),
        namespace: spec
            .namespace
            .clone()
            .filter(|namespace| !namespace.is_empty()),
        label_selector,
    })
}

fn handler(
    source: EventSource,
    for_kind: ForKind,
    queue: Arc<OperatorQueue>,
    primary_store: Option<Store<DynamicObject>>,
) -> EventHandler {
    Arc::new(move |event| {
        let all_for_objects = || {
            primary_store
                .as_ref()
                .map(|store| {
                    store
                        .state()
                        .iter()
                        .map(|object| {
                            ObjectKey::new(object.namespace().as_deref(), &object.name_any())
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        for key in keys_for_event(&source, &for_kind, event, all_for_objects) {
            queue.add(key);
        }
    })
}

/// Subscribes everything `registration` declares. The error says which watch failed and why.
pub(crate) async fn subscribe(
    watches: &WatchManager,
    registration: &Registration,
    queue: Arc<OperatorQueue>,
) -> Result<OperatorWatches, String> {
    let for_spec = &registration.for_;
    let resolved = watches
        .discovery()
        .resolve(&for_spec.api_version, &for_spec.kind)
        .await
        .map_err(|error| format!("the `for` kind cannot be watched: {error}"))?;
    let for_kind = ForKind {
        group: resolved.resource.group.clone(),
        kind: resolved.resource.kind.clone(),
        namespaced: resolved.namespaced,
        namespace: for_spec
            .namespace
            .clone()
            .filter(|namespace| !namespace.is_empty()),
    };
    let source = EventSource::For {
        predicates: for_spec.predicates.clone(),
    };
    let primary = watches
        .subscribe(
            watch_key(for_spec)?,
            handler(source, for_kind.clone(), queue.clone(), None),
        )
        .await
        .map_err(|error| format!("the `for` watch cannot be opened: {error}"))?;
    let primary = Arc::new(primary);
    let mut all = vec![primary.clone()];
    for owned in &registration.owns {
        let source = EventSource::Owns {
            predicates: owned.predicates.clone(),
        };
        let subscription = watches
            .subscribe(
                watch_key(owned)?,
                handler(source, for_kind.clone(), queue.clone(), None),
            )
            .await
            .map_err(|error| {
                format!(
                    "the `owns` watch of {} cannot be opened: {error}",
                    owned.kind
                )
            })?;
        all.push(Arc::new(subscription));
    }
    for watch in &registration.watches {
        let source = EventSource::Watches {
            predicates: watch.spec.predicates.clone(),
            mapping: watch.mapping.clone(),
        };
        let handler = handler(
            source,
            for_kind.clone(),
            queue.clone(),
            Some(primary.store()),
        );
        let subscription = watches
            .subscribe(watch_key(&watch.spec)?, handler)
            .await
            .map_err(|error| {
                format!(
                    "the `watches` watch of {} cannot be opened: {error}",
                    watch.spec.kind
                )
            })?;
        all.push(Arc::new(subscription));
    }
    Ok(OperatorWatches { primary, all })
}
