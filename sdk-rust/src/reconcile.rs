//! What a reconcile receives ([`Request`]) and returns ([`Action`]).

use std::time::Duration;

use wasm_operator_abi::{AbsentReason, ReconcileResult};

/// One object to reconcile, of the kind the [`crate::Controller`] registered.
#[derive(Debug, Clone, PartialEq)]
pub struct Request<K> {
    pub api_version: String,
    pub kind: String,
    /// `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    pub name: String,
    /// The object from the host's cache, exactly as the API server sent it; `None` when the
    /// cache does not hold it, which is not always a deletion: see [`absent_reason`](Self::absent_reason).
    pub object: Option<K>,
    /// Why `object` is `None` (`None` when it is present, or from a host that does not say):
    /// `Deleted`, or `NotSelected` when the object still exists but no longer matches the
    /// controller's label selector. An operator with a finalizer cleans up only when
    /// [`is_deleted`](Self::is_deleted) says so.
    pub absent_reason: Option<AbsentReason>,
    /// How many reconciles of this object failed in a row before this one (0 on the first try).
    pub attempt: u32,
}

impl<K> Request<K> {
    /// `namespace/name`, or `name` for cluster-scoped kinds.
    pub fn key(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("{namespace}/{}", self.name),
            None => self.name.clone(),
        }
    }

    /// True when the object no longer exists in the API server (not merely out of the
    /// controller's label selector, and not when the host could not tell).
    pub fn is_deleted(&self) -> bool {
        self.object.is_none() && self.absent_reason == Some(AbsentReason::Deleted)
    }

    /// The namespace, `""` for cluster-scoped kinds.
    pub fn namespace_or_empty(&self) -> &str {
        self.namespace.as_deref().unwrap_or_default()
    }
}

/// What to do after a successful reconcile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Action {
    result: ReconcileResult,
}

impl Action {
    /// Nothing more until the next event on the object (or on something it owns or watches).
    pub fn await_change() -> Self {
        Action::default()
    }

    /// Reconcile again after `delay`. The timer is the host's: it fires even if the instance is
    /// swapped out meanwhile, and an earlier event replaces it.
    pub fn requeue_after(delay: Duration) -> Self {
        Action {
            result: ReconcileResult::requeue_after(delay),
        }
    }

    /// Reconcile again soon, subject to the host's backoff rate limiting.
    pub fn requeue() -> Self {
        Action {
            result: ReconcileResult::requeue(),
        }
    }

    pub fn into_result(self) -> ReconcileResult {
        self.result
    }
}
