//! Whether an operator may be given reads from the host's shared cache: only for kinds its
//! ServiceAccount may both `list` and `watch` in the namespace asked for (cluster-wide for
//! cluster-scoped reads), as a SubjectAccessReview says. Answers are cached per (user, kind,
//! namespace) for a while, so a busy operator costs the API server one review per kind and
//! namespace per period; an RBAC change takes effect within that period.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::discovery::{pinned_kind, ApiResource};
use kube::Api;

use super::identity::service_account_user;

pub use crate::operator::ReadAccess;

/// How long an answer is reused.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

type CacheKey = (String, String, Option<String>);

/// [`ReadAccess`] for one ServiceAccount, checked with SubjectAccessReviews made by the host.
#[derive(Clone)]
pub struct ServiceAccountReadAccess {
    inner: Arc<Inner>,
}

struct Inner {
    /// The host's client: creating SubjectAccessReviews needs `create` on them.
    client: kube::Client,
    user: String,
    groups: Vec<String>,
    ttl: Duration,
    answers: Mutex<HashMap<CacheKey, (bool, Instant)>>,
    resources: Mutex<HashMap<(String, String), ApiResource>>,
    reviews: std::sync::atomic::AtomicU64,
}

impl ServiceAccountReadAccess {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        service_account: &str,
        ttl: Duration,
    ) -> Self {
        ServiceAccountReadAccess {
            inner: Arc::new(Inner {
                client,
                user: service_account_user(namespace, service_account),
                groups: vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{namespace}"),
                    "system:authenticated".into(),
                ],
                ttl,
                answers: Mutex::default(),
                resources: Mutex::default(),
                reviews: Default::default(),
            }),
        }
    }

    /// SubjectAccessReviews sent so far (the rest were answered from the cache).
    pub fn reviews_sent(&self) -> u64 {
        self.inner
            .reviews
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the account may list and watch `kind` in `namespace` (all namespaces: `None`).
    /// Any failure to find out (unknown kind, review refused) is a "no".
    pub async fn check(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> bool {
        let key = (
            api_version.to_string(),
            kind.to_string(),
            namespace.map(str::to_string),
        );
        if let Some((allowed, at)) = lock(&self.inner.answers).get(&key) {
            if at.elapsed() < self.inner.ttl {
                return *allowed;
            }
        }
        let allowed = match self.review(api_version, kind, namespace).await {
            Ok(allowed) => allowed,
            Err(error) => {
                tracing::warn!(user = %self.inner.user, api_version, kind, "cannot check access, treating it as denied: {error}");
                // Not cached: the next read asks again.
                return false;
            }
        };
        lock(&self.inner.answers).insert(key, (allowed, Instant::now()));
        allowed
    }

    async fn review(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<bool, String> {
        let resource = self.resource(api_version, kind).await?;
        for verb in ["list", "watch"] {
            let review = SubjectAccessReview {
                spec: SubjectAccessReviewSpec {
                    user: Some(self.inner.user.clone()),
                    groups: Some(self.inner.groups.clone()),
                    resource_attributes: Some(ResourceAttributes {
                        group: Some(resource.group.clone()),
                        version: Some(resource.version.clone()),
                        resource: Some(resource.plural.clone()),
                        namespace: namespace.map(str::to_string),
                        verb: Some(verb.into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let api: Api<SubjectAccessReview> = Api::all(self.inner.client.clone());
            self.inner
                .reviews
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let answer = api
                .create(&PostParams::default(), &review)
                .await
                .map_err(|error| {
                    format!(
                        "SubjectAccessReview for {verb} {}: {error}",
                        resource.plural
                    )
                })?;
            if !answer.status.map(|status| status.allowed).unwrap_or(false) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn resource(&self, api_version: &str, kind: &str) -> Result<ApiResource, String> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = lock(&self.inner.resources).get(&key) {
            return Ok(found.clone());
        }
        let gvk = kube::api::GroupVersionKind::try_from(&kube::core::TypeMeta {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        })
        .map_err(|error| format!("{api_version} {kind}: {error}"))?;
        let (resource, _) = pinned_kind(&self.inner.client, &gvk)
            .await
            .map_err(|error| {
                format!("the API server does not serve {api_version} {kind}: {error}")
            })?;
        lock(&self.inner.resources).insert(key, resource.clone());
        Ok(resource)
    }
}

impl ReadAccess for ServiceAccountReadAccess {
    fn may_list_watch(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> BoxFuture<'static, bool> {
        let this = self.clone();
        let (api_version, kind, namespace) = (
            api_version.to_string(),
            kind.to_string(),
            namespace.map(str::to_string),
        );
        async move { this.check(&api_version, &kind, namespace.as_deref()).await }.boxed()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
