//! Owner references, as controller-runtime's `SetControllerReference`: the link that makes the
//! garbage collector delete what an object created, and that the host follows to turn an event
//! on an owned object into a reconcile of its owner (`Controller::owns`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube_core::Resource;

use crate::error::{Error, Result};

/// The controller reference to `owner`: `controller: true` and `blockOwnerDeletion: true`, so
/// foreground deletion of the owner waits for the dependent. `None` when the owner has no name
/// or uid yet (it was not read from the API server).
pub fn controller_reference<K: Resource<DynamicType = ()>>(owner: &K) -> Option<OwnerReference> {
    Some(OwnerReference {
        block_owner_deletion: Some(true),
        ..owner.controller_owner_ref(&())?
    })
}

/// A plain (non-controller) reference to `owner`. `None` without a name or uid.
pub fn owner_reference<K: Resource<DynamicType = ()>>(owner: &K) -> Option<OwnerReference> {
    owner.owner_ref(&())
}

/// Makes `owner` the controller of `object`. Fails when the owner has no uid, when the two are
/// in different namespaces (owner references cannot cross namespaces), or when another object
/// already controls `object`. Setting the same controller again replaces its reference.
pub fn set_controller_reference<O, K>(owner: &O, object: &mut K) -> Result<()>
where
    O: Resource<DynamicType = ()>,
    K: Resource,
{
    let reference = controller_reference(owner).ok_or_else(|| {
        Error::msg(format!(
            "the {} has no name or uid yet: read it from the API server first",
            O::kind(&())
        ))
    })?;
    if let Some(owner_namespace) = &owner.meta().namespace {
        if object
            .meta()
            .namespace
            .as_ref()
            .is_some_and(|namespace| namespace != owner_namespace)
        {
            return Err(Error::msg(format!(
                "{} {} cannot own an object in another namespace",
                reference.kind, reference.name
            )));
        }
    }
    let references = object
        .meta_mut()
        .owner_references
        .get_or_insert_with(Vec::new);
    if let Some(other) = references
        .iter()
        .find(|existing| existing.controller == Some(true) && existing.uid != reference.uid)
    {
        return Err(Error::msg(format!(
            "already controlled by {} {}",
            other.kind, other.name
        )));
    }
    references.retain(|existing| existing.uid != reference.uid);
    references.push(reference);
    Ok(())
}

/// The controller reference of `object`, if it has one.
pub fn controller_of<K: Resource>(object: &K) -> Option<&OwnerReference> {
    object
        .meta()
        .owner_references
        .as_deref()?
        .iter()
        .find(|reference| reference.controller == Some(true))
}

/// Removes every owner reference to `owner` (matched by UID) from `object`; reports whether
/// one was there. An empty list is removed altogether, as the API server writes it.
pub fn remove_owner_reference<O, K>(owner: &O, object: &mut K) -> bool
where
    O: Resource,
    K: Resource,
{
    let Some(uid) = owner.meta().uid.as_deref() else {
        return false;
    };
    let references = &mut object.meta_mut().owner_references;
    let Some(list) = references.as_mut() else {
        return false;
    };
    let before = list.len();
    list.retain(|reference| reference.uid != uid);
    let removed = list.len() != before;
    if list.is_empty() {
        *references = None;
    }
    removed
}
