//! Reads served from the shared watch caches instead of the API server.
//!
//! A guest opts in per request (`cached: true` on get and list) and only kinds the operator
//! itself watches are served, from the watches of its own Registration, once they have listed.
//! The cache answers only when its answer is the one the API server would give:
//! - get: an object found in any synced watch of the kind is returned; "not found" is answered
//!   only by a synced watch without label selector that covers the namespace;
//! - list: served by a synced watch without label selector covering the namespace (or by one
//!   whose selector equals the request's), filtered by the request's label selector; a request
//!   with a field selector always goes to the API server.
//!
//! Anything else falls through to the API server. Cached objects may lag the server by the watch
//! latency, which is the usual informer trade-off; the list's `resourceVersion` is empty.
use std::sync::Arc;

use kube::api::{DynamicObject, TypeMeta};
use kube::ResourceExt;
use serde_json::{json, Value};
use wasm_operator_abi::{HostError, HostResponse, KubeStatus};

use super::selector::LabelSelector;
use super::watches::Subscription;

fn same_kind(subscription: &Subscription, api_version: &str, kind: &str) -> bool {
    let key = subscription.key();
    key.api_version == api_version && key.kind == kind
}

fn covers_namespace(subscription: &Subscription, namespace: Option<&str>) -> bool {
    match (&subscription.key().namespace, namespace) {
        (None, _) => true,
        (Some(watched), Some(requested)) => watched == requested,
        (Some(_), None) => false,
    }
}

/// The object as the API server would send it: with its apiVersion and kind.
fn to_json(object: &DynamicObject, subscription: &Subscription) -> Value {
    let mut object = object.clone();
    if object.types.is_none() {
        let resource = &subscription.resolved().resource;
        object.types = Some(TypeMeta {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
        });
    }
    serde_json::to_value(&object).unwrap_or(Value::Null)
}

/// A cached `get`, or `None` when the cache cannot answer for sure.
pub fn get(
    subscriptions: &[Arc<Subscription>],
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Option<HostResponse> {
    let candidates: Vec<&Arc<Subscription>> = subscriptions
        .iter()
        .filter(|subscription| {
            same_kind(subscription, api_version, kind) && subscription.is_synced()
        })
        .collect();
    for subscription in &candidates {
        let object_namespace = namespace.filter(|_| subscription.resolved().namespaced);
        if let Some(object) = subscription.get(object_namespace, name) {
            return Some(HostResponse::Ok(to_json(&object, subscription)));
        }
    }
    let authoritative = candidates.iter().find(|subscription| {
        subscription.key().label_selector.is_none()
            && (!subscription.resolved().namespaced || covers_namespace(subscription, namespace))
    })?;
    let plural = &authoritative.resolved().resource.plural;
    let mut status = KubeStatus::failure(404, "NotFound", format!("{plural} \"{name}\" not found"));
    status.details = Some(
        json!({"name": name, "group": authoritative.resolved().resource.group, "kind": plural}),
    );
    Some(HostResponse::Error(HostError::api_status(status)))
}

/// A cached `list`, or `None` when the cache cannot answer for sure.
pub fn list(
    subscriptions: &[Arc<Subscription>],
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    label_selector: Option<&str>,
    field_selector: Option<&str>,
) -> Option<HostResponse> {
    if field_selector.is_some_and(|selector| !selector.trim().is_empty()) {
        return None;
    }
    let requested_selector = label_selector.filter(|selector| !selector.trim().is_empty());
    let subscription = subscriptions.iter().find(|subscription| {
        same_kind(subscription, api_version, kind)
            && subscription.is_synced()
            && covers_namespace(subscription, namespace)
            && match &subscription.key().label_selector {
                None => true,
                Some(watched) => Some(watched.as_str()) == requested_selector,
            }
    })?;
    let selector = match requested_selector.map(LabelSelector::parse).transpose() {
        Ok(selector) => selector,
        Err(error) => {
            return Some(HostResponse::Error(HostError::invalid_request(
                error.to_string(),
            )))
        }
    };
    let mut objects: Vec<_> = subscription
        .store()
        .state()
        .into_iter()
        .filter(|object| namespace.is_none() || object.namespace().as_deref() == namespace)
        .filter(|object| {
            selector
                .as_ref()
                .is_none_or(|selector| selector.matches(object.labels()))
        })
        .collect();
    // The API server lists in key order: namespace, then name.
    objects.sort_by_key(|object| (object.namespace(), object.name_any()));
    let items: Vec<Value> = objects
        .iter()
        .map(|object| to_json(object, subscription))
        .collect();
    let resource = &subscription.resolved().resource;
    Some(HostResponse::Ok(json!({
        "apiVersion": resource.api_version,
        "kind": format!("{}List", resource.kind),
        "metadata": {"resourceVersion": ""},
        "items": items,
    })))
}
