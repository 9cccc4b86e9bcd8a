//! The reconcile of a TestResource, as the ring example does it (docs/examples.md, "ring"): read
//! the copy in the out namespace, create it with the nonce or raise a lower nonce.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::types::{TestResource, TestResourceSpec};

/// What every reconcile shares: the client and this instance's out namespace.
pub struct Context {
    pub client: Client,
    pub out_namespace: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {0}: {1}")]
    Read(String, #[source] kube::Error),
    #[error("creating {0}: {1}")]
    Create(String, #[source] kube::Error),
    #[error("raising the nonce of {0}: {1}")]
    Raise(String, #[source] kube::Error),
}

/// Creates the next TestResource, or raises its nonce; a nonce is never lowered, so a ring that
/// goes round settles.
pub async fn reconcile(
    resource: Arc<TestResource>,
    context: Arc<Context>,
) -> Result<Action, Error> {
    let name = resource.name_any();
    let nonce = resource.spec.nonce;
    let next: Api<TestResource> = Api::namespaced(context.client.clone(), &context.out_namespace);
    let key = format!("{}/{name}", context.out_namespace);
    match next
        .get_opt(&name)
        .await
        .map_err(|e| Error::Read(key.clone(), e))?
    {
        None => {
            let copy = TestResource {
                metadata: ObjectMeta {
                    name: Some(name),
                    namespace: Some(context.out_namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: TestResourceSpec { nonce },
            };
            next.create(&PostParams::default(), &copy)
                .await
                .map_err(|e| Error::Create(key, e))?;
        }
        Some(existing) if existing.spec.nonce < nonce => {
            let patch = json!({"spec": {"nonce": nonce}});
            next.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| Error::Raise(key, e))?;
        }
        Some(_) => {}
    }
    Ok(Action::await_change())
}

/// A failed reconcile is retried after a second (the Wasm host backs off similarly).
pub fn error_policy(_: Arc<TestResource>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(%error, "reconcile failed; retrying in 1 s");
    Action::requeue(Duration::from_secs(1))
}
