//! Why the cache holds no object for a key that is being reconciled ([`AbsentReason`]).
//!
//! An object leaves the cache of a watch with a label selector in two ways that look the same
//! from the watch (the API server sends a DELETED event either way, carrying the object's last
//! matching state): it was deleted, or its labels changed so that it no longer matches. An
//! operator holding a finalizer on it must not confuse the two, so when the `for` watch has a
//! selector the host asks the API server, listing the name with no label selector (the host's
//! identity may list the kind, since it watches it; it need not be allowed to get it).
use std::time::Duration;

use kube::api::{Api, DynamicObject, ListParams};
use wasm_operator_abi::AbsentReason;

use super::watches::Subscription;

/// How long the question may take before the reconcile goes ahead with `Unknown`.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// Why `namespace/name` is not in `subscription`'s cache, which must be synced.
pub async fn absent_reason(
    subscription: &Subscription,
    namespace: Option<&str>,
    name: &str,
) -> AbsentReason {
    if subscription.key().label_selector.is_none() {
        // The watch sees every object of its namespace(s): a synced cache without it means
        // the API server has none.
        return AbsentReason::Deleted;
    }
    let Some(client) = subscription.client() else {
        return AbsentReason::Unknown;
    };
    let resource = &subscription.resolved().resource;
    let api: Api<DynamicObject> = match namespace {
        Some(namespace) if subscription.resolved().namespaced => {
            Api::namespaced_with(client, namespace, resource)
        }
        _ => Api::all_with(client, resource),
    };
    let by_name = ListParams::default()
        .fields(&format!("metadata.name={name}"))
        .limit(1);
    match tokio::time::timeout(ASK_TIMEOUT, api.list_metadata(&by_name)).await {
        Ok(Ok(list)) if list.items.is_empty() => AbsentReason::Deleted,
        Ok(Ok(_)) => AbsentReason::NotSelected,
        Ok(Err(error)) => {
            tracing::warn!(%name, %error, "could not ask the API server why an object left the cache");
            AbsentReason::Unknown
        }
        Err(_) => {
            tracing::warn!(%name, "the API server did not say in time why an object left the cache");
            AbsentReason::Unknown
        }
    }
}
