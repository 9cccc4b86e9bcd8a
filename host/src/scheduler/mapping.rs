//! Turns watch events into reconcile keys, as controller-runtime's handlers and predicates do.
//!
//! - `For`: the object itself.
//! - `Owns`: the owned object's controlling owner (the ownerReference with `controller: true`)
//!   when the owner is of the `for` kind (same API group and kind; the version may differ).
//! - `Watches`: by [`Mapping`]: every ownerReference of the `for` kind, the `for` object named by
//!   labels, or every cached `for` object.
//!
//! Predicates filter updates only: creates and deletes always pass, and an update passes when
//! any listed predicate holds between the previous and the new version (no predicates = every
//! update passes). For `Owns` and `Watches`, owners and label targets of the previous version
//! are enqueued too, so an object that changes owner or target wakes both the old and the new.
use std::collections::BTreeSet;
use std::fmt;

use kube::api::DynamicObject;
use kube::ResourceExt;
use wasm_operator_abi::{Mapping, Predicate};

use crate::kube::discovery::split_api_version;
use crate::kube::watches::{ChangeKind, WatchEvent};

/// Names one object of the operator's `for` kind: the unit of work of its workqueue.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: Option<&str>, name: &str) -> Self {
        ObjectKey {
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{namespace}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The operator's `for` kind, as far as mapping needs it.
#[derive(Clone, Debug)]
pub struct ForKind {
    /// API group (empty for the core group).
    pub group: String,
    pub kind: String,
    pub namespaced: bool,
    /// The namespace the operator's `for` watch is restricted to, if any: keys outside it are
    /// dropped because the operator would never see those objects.
    pub namespace: Option<String>,
}

impl ForKind {
    fn matches_owner(&self, owner_api_version: &str, owner_kind: &str) -> bool {
        owner_kind == self.kind
            && split_api_version(owner_api_version).is_ok_and(|(group, _)| group == self.group)
    }

    /// The key for `name` of the `for` kind, related to an object in `namespace`.
    fn key(&self, namespace: Option<&str>, name: &str) -> Option<ObjectKey> {
        let namespace = if self.namespaced {
            Some(namespace?)
        } else {
            None
        };
        if let (Some(wanted), Some(actual)) = (&self.namespace, namespace) {
            if wanted != actual {
                return None;
            }
        }
        Some(ObjectKey::new(namespace, name))
    }
}

/// Where a watch subscription came from in the Registration.
#[derive(Clone, Debug)]
pub enum EventSource {
    For {
        predicates: Vec<Predicate>,
    },
    Owns {
        predicates: Vec<Predicate>,
    },
    Watches {
        predicates: Vec<Predicate>,
        mapping: Mapping,
    },
}

impl EventSource {
    fn predicates(&self) -> &[Predicate] {
        match self {
            EventSource::For { predicates }
            | EventSource::Owns { predicates }
            | EventSource::Watches { predicates, .. } => predicates,
        }
    }
}

/// Whether an event passes the predicates (see the module documentation).
pub fn passes(predicates: &[Predicate], event: &WatchEvent) -> bool {
    if predicates.is_empty() || event.change != ChangeKind::Modified {
        return true;
    }
    let Some(previous) = &event.previous else {
        return true;
    };
    let (old, new) = (previous.as_ref(), event.object.as_ref());
    predicates.iter().any(|predicate| match predicate {
        Predicate::GenerationChanged => old.metadata.generation != new.metadata.generation,
        Predicate::LabelsChanged => old.labels() != new.labels(),
        Predicate::AnnotationsChanged => old.annotations() != new.annotations(),
    })
}

/// The keys to enqueue for `event`. `all_for_objects` lists the cached `for` objects, and is
/// only called for the `all` mapping.
pub fn keys_for_event(
    source: &EventSource,
    for_kind: &ForKind,
    event: &WatchEvent,
    all_for_objects: impl FnOnce() -> Vec<ObjectKey>,
) -> BTreeSet<ObjectKey> {
    let mut keys = BTreeSet::new();
    if !passes(source.predicates(), event) {
        return keys;
    }
    let versions: Vec<&DynamicObject> = std::iter::once(event.object.as_ref())
        .chain(event.previous.as_deref())
        .collect();
    match source {
        EventSource::For { .. } => {
            let object = event.object.as_ref();
            keys.extend(for_kind.key(object.namespace().as_deref(), &object.name_any()));
        }
        EventSource::Owns { .. } => {
            for object in versions {
                let namespace = object.namespace();
                for owner in object.owner_references() {
                    if owner.controller == Some(true)
                        && for_kind.matches_owner(&owner.api_version, &owner.kind)
                    {
                        keys.extend(for_kind.key(namespace.as_deref(), &owner.name));
                    }
                }
            }
        }
        EventSource::Watches {
            mapping: Mapping::Owner,
            ..
        } => {
            for object in versions {
                let namespace = object.namespace();
                for owner in object.owner_references() {
                    if for_kind.matches_owner(&owner.api_version, &owner.kind) {
                        keys.extend(for_kind.key(namespace.as_deref(), &owner.name));
                    }
                }
            }
        }
        EventSource::Watches {
            mapping:
                Mapping::Labels {
                    name_label,
                    namespace_label,
                },
            ..
        } => {
            for object in versions {
                let labels = object.labels();
                let Some(name) = labels.get(name_label) else {
                    continue;
                };
                let namespace = match namespace_label {
                    Some(label) => labels.get(label).cloned(),
                    None => object.namespace(),
                };
                keys.extend(for_kind.key(namespace.as_deref(), name));
            }
        }
        EventSource::Watches {
            mapping: Mapping::All,
            ..
        } => keys.extend(all_for_objects()),
    }
    keys
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use kube::api::ObjectMeta;

    use super::*;

    fn object(namespace: &str, name: &str) -> DynamicObject {
        DynamicObject {
            types: None,
            metadata: ObjectMeta {
                namespace: Some(namespace.into()),
                name: Some(name.into()),
                generation: Some(1),
                ..ObjectMeta::default()
            },
            data: serde_json::json!({}),
        }
    }

    fn owner(api_version: &str, kind: &str, name: &str, controller: bool) -> OwnerReference {
        OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            controller: Some(controller),
            block_owner_deletion: None,
        }
    }

    fn event(
        change: ChangeKind,
        object: DynamicObject,
        previous: Option<DynamicObject>,
    ) -> WatchEvent {
        WatchEvent {
            change,
            object: Arc::new(object),
            previous: previous.map(Arc::new),
        }
    }

    fn web_app() -> ForKind {
        ForKind {
            group: "demo.wasm-operator.dev".into(),
            kind: "WebApp".into(),
            namespaced: true,
            namespace: None,
        }
    }

    fn keys(source: &EventSource, event: &WatchEvent) -> Vec<String> {
        keys_for_event(source, &web_app(), event, || {
            vec![
                ObjectKey::new(Some("a"), "one"),
                ObjectKey::new(Some("b"), "two"),
            ]
        })
        .iter()
        .map(ToString::to_string)
        .collect()
    }

    #[test]
    fn for_events_enqueue_the_object_itself_including_deletes() {
        let source = EventSource::For { predicates: vec![] };
        assert_eq!(
            keys(
                &source,
                &event(ChangeKind::Added, object("ns", "web"), None)
            ),
            ["ns/web"]
        );
        let deleted = event(
            ChangeKind::Deleted,
            object("ns", "web"),
            Some(object("ns", "web")),
        );
        assert_eq!(keys(&source, &deleted), ["ns/web"]);
    }

    #[test]
    fn generation_predicate_skips_status_only_updates_but_never_creates_or_deletes() {
        let source = EventSource::For {
            predicates: vec![Predicate::GenerationChanged],
        };
        let old = object("ns", "web");
        let mut status_only = old.clone();
        status_only.data = serde_json::json!({"status": {"ready": true}});
        assert!(keys(
            &source,
            &event(ChangeKind::Modified, status_only, Some(old.clone()))
        )
        .is_empty());
        let mut spec_change = old.clone();
        spec_change.metadata.generation = Some(2);
        assert_eq!(
            keys(
                &source,
                &event(ChangeKind::Modified, spec_change, Some(old.clone()))
            ),
            ["ns/web"]
        );
        assert_eq!(
            keys(&source, &event(ChangeKind::Added, old.clone(), None)),
            ["ns/web"]
        );
        assert_eq!(
            keys(&source, &event(ChangeKind::Deleted, old.clone(), Some(old))),
            ["ns/web"]
        );
    }

    #[test]
    fn an_update_passes_when_any_listed_predicate_holds() {
        let source = EventSource::For {
            predicates: vec![Predicate::GenerationChanged, Predicate::LabelsChanged],
        };
        let old = object("ns", "web");
        let mut relabelled = old.clone();
        relabelled
            .labels_mut()
            .insert("tier".into(), "front".into());
        assert_eq!(
            keys(
                &source,
                &event(ChangeKind::Modified, relabelled, Some(old.clone()))
            ),
            ["ns/web"]
        );
        let mut annotated = old.clone();
        annotated
            .annotations_mut()
            .insert("note".into(), "x".into());
        assert!(keys(
            &source,
            &event(ChangeKind::Modified, annotated.clone(), Some(old.clone()))
        )
        .is_empty());
        let annotations_only = EventSource::For {
            predicates: vec![Predicate::AnnotationsChanged],
        };
        assert_eq!(
            keys(
                &annotations_only,
                &event(ChangeKind::Modified, annotated, Some(old))
            ),
            ["ns/web"]
        );
    }

    #[test]
    fn owned_objects_enqueue_only_their_controlling_owner_of_the_for_kind() {
        let source = EventSource::Owns { predicates: vec![] };
        let mut config_map = object("ns", "web-config");
        config_map.metadata.owner_references = Some(vec![
            owner("demo.wasm-operator.dev/v1alpha1", "WebApp", "web", true),
            owner(
                "demo.wasm-operator.dev/v1alpha1",
                "WebApp",
                "not-controller",
                false,
            ),
            owner("apps/v1", "Deployment", "other-kind", true),
            owner("other.example/v1", "WebApp", "other-group", true),
        ]);
        assert_eq!(
            keys(
                &source,
                &event(ChangeKind::Modified, config_map.clone(), None)
            ),
            ["ns/web"]
        );
        let mut orphan = config_map;
        orphan.metadata.owner_references = None;
        assert!(keys(&source, &event(ChangeKind::Added, orphan, None)).is_empty());
    }

    #[test]
    fn owner_version_does_not_matter_but_group_does() {
        let source = EventSource::Owns { predicates: vec![] };
        let mut owned = object("ns", "x");
        owned.metadata.owner_references = Some(vec![owner(
            "demo.wasm-operator.dev/v1",
            "WebApp",
            "web",
            true,
        )]);
        assert_eq!(
            keys(&source, &event(ChangeKind::Added, owned, None)),
            ["ns/web"]
        );
    }

    #[test]
    fn a_change_of_owner_enqueues_the_old_and_the_new_owner() {
        let source = EventSource::Owns { predicates: vec![] };
        let mut before = object("ns", "x");
        before.metadata.owner_references = Some(vec![owner(
            "demo.wasm-operator.dev/v1alpha1",
            "WebApp",
            "old",
            true,
        )]);
        let mut after = object("ns", "x");
        after.metadata.owner_references = Some(vec![owner(
            "demo.wasm-operator.dev/v1alpha1",
            "WebApp",
            "new",
            true,
        )]);
        assert_eq!(
            keys(&source, &event(ChangeKind::Modified, after, Some(before))),
            ["ns/new", "ns/old"]
        );
    }

    #[test]
    fn owner_mapping_enqueues_every_owner_of_the_for_kind() {
        let source = EventSource::Watches {
            predicates: vec![],
            mapping: Mapping::Owner,
        };
        let mut shared = object("ns", "secret");
        shared.metadata.owner_references = Some(vec![
            owner("demo.wasm-operator.dev/v1alpha1", "WebApp", "a", false),
            owner("demo.wasm-operator.dev/v1alpha1", "WebApp", "b", true),
            owner("v1", "ConfigMap", "c", false),
        ]);
        assert_eq!(
            keys(&source, &event(ChangeKind::Added, shared, None)),
            ["ns/a", "ns/b"]
        );
    }

    #[test]
    fn label_mapping_uses_the_name_label_and_the_namespace_label_or_own_namespace() {
        let mapping = Mapping::Labels {
            name_label: "app".into(),
            namespace_label: None,
        };
        let source = EventSource::Watches {
            predicates: vec![],
            mapping,
        };
        let mut labelled = object("ns", "cm");
        labelled.labels_mut().insert("app".into(), "web".into());
        assert_eq!(
            keys(&source, &event(ChangeKind::Added, labelled.clone(), None)),
            ["ns/web"]
        );

        let mapping = Mapping::Labels {
            name_label: "app".into(),
            namespace_label: Some("app-ns".into()),
        };
        let source = EventSource::Watches {
            predicates: vec![],
            mapping,
        };
        labelled
            .labels_mut()
            .insert("app-ns".into(), "elsewhere".into());
        assert_eq!(
            keys(&source, &event(ChangeKind::Added, labelled, None)),
            ["elsewhere/web"]
        );
        assert!(keys(
            &source,
            &event(ChangeKind::Added, object("ns", "unlabelled"), None)
        )
        .is_empty());
    }

    #[test]
    fn all_mapping_enqueues_every_cached_for_object() {
        let source = EventSource::Watches {
            predicates: vec![],
            mapping: Mapping::All,
        };
        assert_eq!(
            keys(&source, &event(ChangeKind::Added, object("x", "y"), None)),
            ["a/one", "b/two"]
        );
    }

    #[test]
    fn keys_outside_the_for_namespace_are_dropped() {
        let for_kind = ForKind {
            namespace: Some("only".into()),
            ..web_app()
        };
        let source = EventSource::For { predicates: vec![] };
        let other = event(ChangeKind::Added, object("elsewhere", "web"), None);
        assert!(keys_for_event(&source, &for_kind, &other, Vec::new).is_empty());
        let inside = event(ChangeKind::Added, object("only", "web"), None);
        assert_eq!(
            keys_for_event(&source, &for_kind, &inside, Vec::new).len(),
            1
        );
    }

    #[test]
    fn cluster_scoped_for_kind_keys_have_no_namespace() {
        let for_kind = ForKind {
            group: "".into(),
            kind: "Namespace".into(),
            namespaced: false,
            namespace: None,
        };
        let source = EventSource::Owns { predicates: vec![] };
        let mut owned = object("team-a", "quota");
        owned.metadata.owner_references = Some(vec![owner("v1", "Namespace", "team-a", true)]);
        let found = keys_for_event(
            &source,
            &for_kind,
            &event(ChangeKind::Added, owned, None),
            Vec::new,
        );
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            [ObjectKey::new(None, "team-a")]
        );
    }
}
