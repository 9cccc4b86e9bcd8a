//! Where a namespaced watch is opened: in the namespace asked for, or as one cluster-wide watch
//! of the kind that serves every namespace (watch coalescing).
//!
//! A hundred operators that each watch the same kind in their own namespace would otherwise hold
//! a hundred watches: a hundred connections to the API server with their buffers, a hundred
//! watcher tasks, each relisting and re-watching on its own schedule (and all at once after an
//! API server restart). When the host's identity may `list` and `watch` the kind in all
//! namespaces, [`WatchScope::ClusterWideWhenAllowed`] serves them from one watch and hands each
//! subscriber only its namespace's objects. The trade-off is the one controller-runtime's
//! default cache makes: the shared cache then also holds the kind's objects in namespaces no
//! operator watches. [`WatchScope::PerNamespace`] keeps one watch per namespace for clusters where
//! that matters (a kind with many objects, few of them watched).
//!
//! The host asks the API server once per resource with two SelfSubjectAccessReviews (`list` and
//! `watch`, all namespaces) and remembers a definite answer for the process's lifetime; a review
//! that fails is not remembered, and that subscription falls back to its own namespace. What an
//! operator may read is decided elsewhere ([`crate::cluster::access`]) and per subscription, so
//! serving it from a wider watch gives it nothing more: see `Subscription::get` and
//! `Subscription::store`.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use super::discovery::ResolvedKind;

/// How namespaced watches of one kind are opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WatchScope {
    /// One watch per (kind, namespace, label selector).
    PerNamespace,
    /// One cluster-wide watch per (kind, label selector) when the host may list and watch the
    /// kind in all namespaces; per namespace otherwise.
    #[default]
    ClusterWideWhenAllowed,
}

/// Decides, and remembers, whether a kind's namespaced watches are served cluster-wide.
pub(crate) struct ScopeDecider {
    scope: WatchScope,
    client: kube::Client,
    /// (group, plural) → may the host list and watch it in all namespaces.
    answers: Mutex<HashMap<(String, String), bool>>,
}

impl ScopeDecider {
    pub(crate) fn new(scope: WatchScope, client: kube::Client) -> Self {
        ScopeDecider {
            scope,
            client,
            answers: Mutex::default(),
        }
    }

    /// True when watches of `kind` in single namespaces are to share one cluster-wide watch.
    pub(crate) async fn cluster_wide(&self, kind: &ResolvedKind) -> bool {
        if self.scope == WatchScope::PerNamespace || !kind.namespaced {
            return false;
        }
        let key = (kind.resource.group.clone(), kind.resource.plural.clone());
        if let Some(allowed) = self.remembered(&key) {
            return allowed;
        }
        let mut allowed = true;
        for verb in ["list", "watch"] {
            match self.review(kind, verb).await {
                Ok(true) => {}
                Ok(false) => {
                    allowed = false;
                    break;
                }
                Err(error) => {
                    tracing::warn!(
                        kind = %kind.gvk_string(), %error,
                        "could not ask whether the host may {verb} this kind in all namespaces; \
                         watching it per namespace for now"
                    );
                    return false;
                }
            }
        }
        tracing::info!(
            kind = %kind.gvk_string(), cluster_wide = allowed,
            "watch scope decided for this kind's namespaced watches"
        );
        self.answers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key, allowed);
        allowed
    }

    fn remembered(&self, key: &(String, String)) -> Option<bool> {
        self.answers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(key)
            .copied()
    }

    async fn review(&self, kind: &ResolvedKind, verb: &str) -> Result<bool, kube::Error> {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(kind.resource.group.clone()),
                    resource: Some(kind.resource.plural.clone()),
                    verb: Some(verb.to_owned()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let answer = Api::<SelfSubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        Ok(answer.status.is_some_and(|status| status.allowed))
    }
}
