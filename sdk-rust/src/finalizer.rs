//! Finalizers, as controller-runtime's `controllerutil` has them: check, add, remove, each
//! reporting whether it changed the object, so the caller knows whether to write it back.
//!
//! The usual shape: when the object is being deleted and carries your finalizer, clean up what
//! owner references cannot (objects in other namespaces, things outside the cluster), then
//! remove the finalizer and `replace` the object; otherwise add the finalizer first.

use kube_core::{Resource, ResourceExt};

/// Whether `object` carries `finalizer`.
pub fn has<K: Resource>(object: &K, finalizer: &str) -> bool {
    object
        .finalizers()
        .iter()
        .any(|present| present == finalizer)
}

/// Appends `finalizer` unless present; returns whether it was added.
pub fn add<K: Resource>(object: &mut K, finalizer: &str) -> bool {
    if has(object, finalizer) {
        return false;
    }
    object.finalizers_mut().push(finalizer.to_owned());
    true
}

/// Removes every occurrence of `finalizer`, keeping the others in order; returns whether any
/// was removed. The list stays present (possibly empty) so an update sends `"finalizers": []`.
pub fn remove<K: Resource>(object: &mut K, finalizer: &str) -> bool {
    if !has(object, finalizer) {
        // `finalizers_mut` would create an empty list on an object that had none.
        return false;
    }
    object
        .finalizers_mut()
        .retain(|present| present != finalizer);
    true
}

/// Whether the object is being deleted (`metadata.deletionTimestamp` is set) and only waits for
/// finalizers.
pub fn is_being_deleted<K: Resource>(object: &K) -> bool {
    object.meta().deletion_timestamp.is_some()
}
