//! The messages of `wasm_operator_reconcile` (ReconcileRequest in, ReconcileResult out), and
//! GuestError, the result of either export when it returns 1.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Input of `wasm_operator_reconcile`: one object of the registered `for` kind to reconcile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileRequest {
    pub api_version: String,
    pub kind: String,
    /// Absent for cluster-scoped kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// The object from the host's cache, exactly as the API server sent it; absent or `null` when
    /// the cache does not hold it ([`absent_reason`](Self::absent_reason) says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
    /// Why `object` is absent; `None` when it is present (and from hosts that predate the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absent_reason: Option<AbsentReason>,
    /// How many reconciles of this key failed in a row before this one; 0 on the first try.
    #[serde(default)]
    pub attempt: u32,
}

/// Why a [`ReconcileRequest`] carries no object. An operator with a finalizer must only treat
/// `Deleted` as the object being gone: a `NotSelected` object still exists and may still carry
/// the finalizer, which a later delete will wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AbsentReason {
    /// The object no longer exists in the API server.
    Deleted,
    /// The object exists but no longer matches the label selector of the `for` watch.
    NotSelected,
    /// The host could not tell (for example, the API server did not answer); also what a guest
    /// reads any reason it does not know as, so newer hosts may add reasons.
    #[serde(other)]
    Unknown,
}

impl AbsentReason {
    /// The reason as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AbsentReason::Deleted => "deleted",
            AbsentReason::NotSelected => "notSelected",
            AbsentReason::Unknown => "unknown",
        }
    }
}

impl fmt::Display for AbsentReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Result of a successful `wasm_operator_reconcile`. `{}` means done until the next event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileResult {
    /// Reconcile this key again after this many milliseconds (a host-owned timer, which survives
    /// swapping the instance out). Takes precedence over `requeue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeue_after_ms: Option<u64>,
    /// Reconcile this key again soon, subject to the queue's backoff rate limiting.
    #[serde(default, skip_serializing_if = "is_false")]
    pub requeue: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl ReconcileResult {
    /// Done: nothing to do until the next event.
    pub fn done() -> Self {
        ReconcileResult::default()
    }

    /// Reconcile again after `delay` (rounded down to whole milliseconds).
    pub fn requeue_after(delay: Duration) -> Self {
        ReconcileResult {
            requeue_after_ms: Some(duration_to_millis(delay)),
            requeue: false,
        }
    }

    /// Reconcile again soon, with backoff rate limiting.
    pub fn requeue() -> Self {
        ReconcileResult {
            requeue_after_ms: None,
            requeue: true,
        }
    }
}

/// Result of `wasm_operator_init` or `wasm_operator_reconcile` when it returns 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestError {
    /// What went wrong, for people: it ends up in logs, Events and the operator's status.
    pub message: String,
    /// Retry after this many milliseconds instead of the backoff delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeue_after_ms: Option<u64>,
}

impl GuestError {
    /// An error retried with the host's backoff.
    pub fn new(message: impl Into<String>) -> Self {
        GuestError {
            message: message.into(),
            requeue_after_ms: None,
        }
    }

    /// Retry after `delay` instead of the backoff delay.
    pub fn with_requeue_after(mut self, delay: Duration) -> Self {
        self.requeue_after_ms = Some(duration_to_millis(delay));
        self
    }
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GuestError {}

fn duration_to_millis(delay: Duration) -> u64 {
    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
}
