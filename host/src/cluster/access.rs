//! Whether an operator may be given reads from the host's shared cache, and whether its
//! Registration may be served at all: only kinds its ServiceAccount may both `list` and `watch`
//! in the namespace asked for (cluster-wide for cluster-scoped reads or all-namespace watches),
//! as a SubjectAccessReview says.
//!
//! Answers are cached per (kind, namespace) for a while, so a busy operator costs the API server
//! one review per kind and namespace per period, and an RBAC change takes effect within that
//! period. The cache is bounded ([`MAX_ANSWERS`], oldest answers evicted first), and a guest
//! naming random namespaces in cached gets cannot turn each into reviews: the cluster-wide
//! answer is asked first and answers every namespace when it allows, and at most
//! [`MAX_NEW_NAMESPACES`] namespaces not already cached are reviewed per period; beyond that
//! the read is refused from the cache (it then goes to the API server as the operator, where
//! RBAC answers it), so nothing is ever served that should not be.
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

/// Most answers kept per ServiceAccount.
pub const MAX_ANSWERS: usize = 1024;

/// Most namespaces without a cached answer reviewed per ServiceAccount and TTL period.
pub const MAX_NEW_NAMESPACES: usize = 32;

type CacheKey = (String, String, Option<String>);

/// An answer: `None` = list and watch allowed, `Some(verb)` = the first verb refused.
type Answer = Option<&'static str>;

/// The cached answers of one account, bounded.
#[derive(Default)]
struct Answers {
    entries: HashMap<CacheKey, (Answer, Instant)>,
    /// When the current period of namespace reviews began, and how many it made.
    period: Option<(Instant, usize)>,
}

impl Answers {
    fn get(&self, key: &CacheKey, ttl: Duration) -> Option<Answer> {
        let (answer, at) = self.entries.get(key)?;
        (at.elapsed() < ttl).then_some(*answer)
    }

    /// The answer however old: used when a review cannot be made, so an API server hiccup
    /// does not fail operators that were allowed (or serve ones that were not).
    fn last(&self, key: &CacheKey) -> Option<Answer> {
        self.entries.get(key).map(|(answer, _)| *answer)
    }

    fn insert(&mut self, key: CacheKey, answer: Answer, ttl: Duration, capacity: usize) {
        if self.entries.len() >= capacity && !self.entries.contains_key(&key) {
            self.entries.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        while self.entries.len() >= capacity && !self.entries.contains_key(&key) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(key, _)| key.clone());
            match oldest {
                Some(oldest) => self.entries.remove(&oldest),
                None => break,
            };
        }
        if capacity > 0 {
            self.entries.insert(key, (answer, Instant::now()));
        }
    }

    /// Takes one of the period's namespace reviews; `false` when none is left.
    fn take_namespace_review(&mut self, ttl: Duration, per_period: usize) -> bool {
        let now = Instant::now();
        let (started, used) = self.period.get_or_insert((now, 0));
        if started.elapsed() >= ttl {
            *started = now;
            *used = 0;
        }
        if *used >= per_period {
            return false;
        }
        *used += 1;
        true
    }
}

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
    capacity: usize,
    namespaces_per_period: usize,
    answers: Mutex<Answers>,
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
        Self::with_bounds(
            client,
            namespace,
            service_account,
            ttl,
            MAX_ANSWERS,
            MAX_NEW_NAMESPACES,
        )
    }

    /// As [`new`](Self::new), with the cache capacity and the namespace reviews per period.
    pub fn with_bounds(
        client: kube::Client,
        namespace: &str,
        service_account: &str,
        ttl: Duration,
        capacity: usize,
        namespaces_per_period: usize,
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
                capacity,
                namespaces_per_period,
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

    /// Answers cached now (at most the capacity).
    pub fn answers_cached(&self) -> usize {
        lock(&self.inner.answers).entries.len()
    }

    /// Whether the account may list and watch `kind` in `namespace` (all namespaces: `None`).
    /// Any failure to find out (unknown kind, review refused) is a "no".
    pub async fn check(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> bool {
        self.missing(api_version, kind, namespace).await.is_none()
    }

    /// The verb the account lacks to list and watch `kind` in `namespace`, with why when the
    /// review could not be made; `None` when it may do both.
    pub async fn missing(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Option<String> {
        // Cluster-wide access answers every namespace, from one cached review.
        let everywhere = self.answer(api_version, kind, None, false).await;
        let Some(namespace) = namespace else {
            return match everywhere {
                Ok(answer) => answer.map(String::from),
                Err(why) => Some(why),
            };
        };
        if everywhere == Ok(None) {
            return None;
        }
        match self.answer(api_version, kind, Some(namespace), true).await {
            Ok(None) => None,
            Ok(Some(verb)) => Some(verb.to_string()),
            Err(why) => Some(why),
        }
    }

    /// The cached or freshly reviewed answer; `Err` says why no review could be made (not
    /// cached: the next check asks again).
    async fn answer(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        rate_limited: bool,
    ) -> Result<Answer, String> {
        let key = (
            api_version.to_string(),
            kind.to_string(),
            namespace.map(str::to_string),
        );
        {
            let mut answers = lock(&self.inner.answers);
            if let Some(answer) = answers.get(&key, self.inner.ttl) {
                return Ok(answer);
            }
            if rate_limited
                && !answers.take_namespace_review(self.inner.ttl, self.inner.namespaces_per_period)
            {
                return Err(format!(
                    "list (not checked: more than {} namespaces reviewed for it this period)",
                    self.inner.namespaces_per_period
                ));
            }
        }
        let answer = match self.review(api_version, kind, namespace).await {
            Ok(answer) => answer,
            Err(error) => {
                if let Some(last) = lock(&self.inner.answers).last(&key) {
                    tracing::warn!(user = %self.inner.user, api_version, kind, "cannot check access, keeping the last answer: {error}");
                    return Ok(last);
                }
                tracing::warn!(user = %self.inner.user, api_version, kind, "cannot check access, treating it as denied: {error}");
                return Err(format!("list (the access check failed: {error})"));
            }
        };
        lock(&self.inner.answers).insert(key, answer, self.inner.ttl, self.inner.capacity);
        Ok(answer)
    }

    async fn review(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Answer, String> {
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
                return Ok(Some(verb));
            }
        }
        Ok(None)
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

    fn missing_verb(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> BoxFuture<'static, Option<String>> {
        let this = self.clone();
        let (api_version, kind, namespace) = (
            api_version.to_string(),
            kind.to_string(),
            namespace.map(str::to_string),
        );
        async move {
            this.missing(&api_version, &kind, namespace.as_deref())
                .await
        }
        .boxed()
    }

    fn identity(&self) -> String {
        self.inner.user.clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(namespace: usize) -> CacheKey {
        (
            "v1".into(),
            "ConfigMap".into(),
            Some(format!("ns-{namespace}")),
        )
    }

    #[test]
    fn the_answer_cache_is_bounded_and_evicts_the_oldest() {
        let ttl = Duration::from_secs(600);
        let mut answers = Answers::default();
        for namespace in 0..10_000 {
            answers.insert(key(namespace), None, ttl, 64);
            assert!(answers.entries.len() <= 64);
        }
        assert_eq!(answers.get(&key(9_999), ttl), Some(None));
        assert_eq!(answers.get(&key(0), ttl), None, "the oldest was evicted");
        assert_eq!(answers.get(&key(9_999), Duration::ZERO), None, "expired");
        assert_eq!(
            answers.last(&key(9_999)),
            Some(None),
            "but kept as the last answer"
        );
        let mut none = Answers::default();
        none.insert(key(1), None, ttl, 0);
        assert!(none.entries.is_empty());
    }

    #[test]
    fn namespace_reviews_are_limited_per_period() {
        let mut answers = Answers::default();
        let ttl = Duration::from_secs(600);
        let granted = (0..100)
            .filter(|_| answers.take_namespace_review(ttl, 32))
            .count();
        assert_eq!(granted, 32);
        // A new period starts once the TTL has passed.
        let mut answers = Answers::default();
        assert!(answers.take_namespace_review(Duration::ZERO, 1));
        assert!(answers.take_namespace_review(Duration::ZERO, 1));
    }
}
