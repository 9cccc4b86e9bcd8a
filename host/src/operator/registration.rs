//! Subscribes the watches an operator's Registration asks for (For, Owns, Watches) and wires
//! each one's events, through the mapping and predicates, into the operator's workqueue. Before
//! anything is subscribed, the Registration is checked against the host's per-operator limits
//! ([`RegistrationLimits`]): a guest must not make the host open unbounded watches or parse
//! unbounded selectors.
use std::sync::Arc;
use std::time::Duration;

use kube::api::{DynamicObject, TypeMeta};
use kube::ResourceExt;
use serde_json::Value;
use wasm_operator_abi::{Registration, WatchSpec};

use crate::kube::selector::LabelSelector;
use crate::kube::watches::{EventHandler, ScopedStore, Subscription, WatchKey, WatchManager};
use crate::scheduler::mapping::{keys_for_event, EventSource, ForKind, ObjectKey};
use crate::scheduler::ratelimit::RateLimit;

use super::queue::OperatorQueue;

/// What one operator's Registration and reconcile results may ask of the host. The defaults are
/// documented in docs/abi.md ("Limits") and docs/running.md.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegistrationLimits {
    /// Watches of one Registration: `for` + `owns` + `watches`.
    pub max_watches: usize,
    /// Bytes of one watch's label selector.
    pub max_label_selector_bytes: usize,
    /// A shorter `requeueAfterMs` (in a ReconcileResult or a GuestError) is raised to this.
    pub min_requeue_after: Duration,
    /// Guest-requested requeues of one operator (all keys together): beyond the burst, each is
    /// delayed until the rate allows it.
    pub requeue_rate: RateLimit,
}

impl Default for RegistrationLimits {
    /// 16 watches is twice what the largest operators in this repository use; 1 KiB of selector
    /// holds dozens of requirements; at 20 requeues/s a spinning operator costs a few percent of
    /// one core, while an operator polling 1000 objects every minute (17/s) is not slowed.
    fn default() -> Self {
        RegistrationLimits {
            max_watches: 16,
            max_label_selector_bytes: 1024,
            min_requeue_after: Duration::from_millis(100),
            requeue_rate: RateLimit {
                per_second: 20.0,
                burst: 50,
            },
        }
    }
}

/// Checks `registration` against `limits`; the error names the limit and what to do.
pub(crate) fn check_limits(
    registration: &Registration,
    limits: &RegistrationLimits,
) -> Result<(), String> {
    let count = 1 + registration.owns.len() + registration.watches.len();
    if count > limits.max_watches {
        return Err(format!(
            "it asks for {count} watches (for + owns + watches); the host allows at most {} per operator: watch fewer kinds, or ask the host's administrator to raise the limit",
            limits.max_watches
        ));
    }
    let specs = std::iter::once(&registration.for_)
        .chain(&registration.owns)
        .chain(registration.watches.iter().map(|watch| &watch.spec));
    for spec in specs {
        let bytes = spec.label_selector.as_deref().map_or(0, str::len);
        if bytes > limits.max_label_selector_bytes {
            return Err(format!(
                "the label selector of its {} watch is {bytes} bytes; the host allows at most {} bytes per selector: use a shorter selector",
                spec.kind, limits.max_label_selector_bytes
            ));
        }
    }
    Ok(())
}

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
    primary_store: Option<ScopedStore>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_operator_abi::{Mapping, Watch, WatchSpec};

    fn registration(owns: usize, selector: Option<String>) -> Registration {
        let mut for_ = WatchSpec::new("v1", "ConfigMap");
        for_.label_selector = selector;
        let mut registration = Registration::new(for_);
        registration.owns = vec![WatchSpec::new("v1", "Secret"); owns];
        registration
    }

    #[test]
    fn too_many_watches_are_refused_naming_the_limit() {
        let limits = RegistrationLimits::default();
        assert!(check_limits(&registration(15, None), &limits).is_ok());
        let error = check_limits(&registration(16, None), &limits).unwrap_err();
        assert!(
            error.contains("17 watches") && error.contains("at most 16"),
            "{error}"
        );
        let mut with_watches = registration(10, None);
        let watch = Watch {
            spec: WatchSpec::new("v1", "Pod"),
            mapping: Mapping::Owner,
        };
        with_watches.watches = vec![watch; 6];
        assert!(check_limits(&with_watches, &limits).is_err());
    }

    #[test]
    fn an_oversized_selector_is_refused_naming_the_limit() {
        let limits = RegistrationLimits::default();
        let fits = format!("a in ({})", "x,".repeat(500));
        assert!(fits.len() <= 1024);
        assert!(check_limits(&registration(0, Some(fits)), &limits).is_ok());
        let error = check_limits(&registration(0, Some("a=b,".repeat(300))), &limits).unwrap_err();
        assert!(
            error.contains("1200 bytes") && error.contains("at most 1024"),
            "{error}"
        );
    }
}
