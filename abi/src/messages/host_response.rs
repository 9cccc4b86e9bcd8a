//! HostResponse, what `response_read` yields after `kube_request` or `http_request`: either
//! `{"ok": value}` or `{"error": HostError}`. HostError is tagged by `type`; errors from the
//! Kubernetes API server arrive as `apiStatus` carrying the server's own `Status` object, so the
//! helpers below answer "not found?" and "conflict?" the way client-go does.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The outcome of a host call. `T` is what `ok` carries: a Kubernetes object or list (kept as
/// [`Value`], the default) or an [`HttpResponse`](super::HttpResponse).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HostResponse<T = Value> {
    Ok(T),
    Error(HostError),
}

impl<T> HostResponse<T> {
    pub fn into_result(self) -> Result<T, HostError> {
        match self {
            HostResponse::Ok(value) => Ok(value),
            HostResponse::Error(error) => Err(error),
        }
    }
}

impl<T> From<Result<T, HostError>> for HostResponse<T> {
    fn from(result: Result<T, HostError>) -> Self {
        match result {
            Ok(value) => HostResponse::Ok(value),
            Err(error) => HostResponse::Error(error),
        }
    }
}

/// Why a host call failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum HostError {
    /// The Kubernetes API server answered with an error; `status` is its `Status` object (boxed:
    /// it is much larger than the other variants).
    ApiStatus {
        message: String,
        status: Box<KubeStatus>,
    },
    /// The operator was not granted what the request needs (a capability, a URL prefix).
    CapabilityDenied { message: String },
    /// A host limit was hit; `limit` names it (`requestSize`, `responseSize`, ...).
    LimitExceeded { message: String, limit: String },
    /// The request did not finish in time.
    Timeout { message: String },
    /// The request could not be delivered or its answer not received (connection refused, TLS
    /// failure, reset, ...).
    Transport { message: String },
    /// The host could not make sense of the request (unknown kind, malformed URL, ...). Requests
    /// that are not even valid JSON are ABI violations instead.
    InvalidRequest { message: String },
}

/// The `Status` reasons Kubernetes defines. A reason outside this set is "unknown", and then the
/// HTTP code decides, as in client-go.
const KNOWN_REASONS: &[&str] = &[
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "AlreadyExists",
    "Conflict",
    "Gone",
    "Invalid",
    "ServerTimeout",
    "StoreReadError",
    "Timeout",
    "TooManyRequests",
    "BadRequest",
    "MethodNotAllowed",
    "NotAcceptable",
    "RequestEntityTooLarge",
    "UnsupportedMediaType",
    "InternalError",
    "Expired",
    "ServiceUnavailable",
];

impl HostError {
    /// An `apiStatus` error; its message is the status's message, or the code and reason when
    /// the status has none.
    pub fn api_status(status: KubeStatus) -> Self {
        let message = match (&status.message, &status.reason) {
            (Some(message), _) if !message.is_empty() => message.clone(),
            (_, Some(reason)) => format!("the API server answered {} {reason}", status.code),
            _ => format!("the API server answered {}", status.code),
        };
        HostError::ApiStatus {
            message,
            status: Box::new(status),
        }
    }

    pub fn capability_denied(message: impl Into<String>) -> Self {
        HostError::CapabilityDenied {
            message: message.into(),
        }
    }

    pub fn limit_exceeded(limit: impl Into<String>, message: impl Into<String>) -> Self {
        HostError::LimitExceeded {
            message: message.into(),
            limit: limit.into(),
        }
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        HostError::Timeout {
            message: message.into(),
        }
    }

    pub fn transport(message: impl Into<String>) -> Self {
        HostError::Transport {
            message: message.into(),
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        HostError::InvalidRequest {
            message: message.into(),
        }
    }

    /// The `type` tag as written on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            HostError::ApiStatus { .. } => "apiStatus",
            HostError::CapabilityDenied { .. } => "capabilityDenied",
            HostError::LimitExceeded { .. } => "limitExceeded",
            HostError::Timeout { .. } => "timeout",
            HostError::Transport { .. } => "transport",
            HostError::InvalidRequest { .. } => "invalidRequest",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            HostError::ApiStatus { message, .. }
            | HostError::CapabilityDenied { message }
            | HostError::LimitExceeded { message, .. }
            | HostError::Timeout { message }
            | HostError::Transport { message }
            | HostError::InvalidRequest { message } => message,
        }
    }

    /// The API server's `Status`, for `apiStatus` errors.
    pub fn status(&self) -> Option<&KubeStatus> {
        match self {
            HostError::ApiStatus { status, .. } => Some(status),
            _ => None,
        }
    }

    /// The HTTP status code the API server answered with, for `apiStatus` errors.
    pub fn status_code(&self) -> Option<i32> {
        self.status().map(|status| status.code)
    }

    /// The `Status` reason (`NotFound`, `Conflict`, ...), for `apiStatus` errors that carry one.
    pub fn status_reason(&self) -> Option<&str> {
        self.status().and_then(|status| status.reason.as_deref())
    }

    /// The object does not exist: reason `NotFound`, or code 404 when the reason is missing or
    /// unknown.
    pub fn is_not_found(&self) -> bool {
        self.reason_or_code_is("NotFound", 404)
    }

    /// A write lost a race (stale resourceVersion): reason `Conflict`, or code 409 when the
    /// reason is missing or unknown. `AlreadyExists` is also a 409 but is not a conflict.
    pub fn is_conflict(&self) -> bool {
        self.reason_or_code_is("Conflict", 409)
    }

    /// A create found the name taken: reason `AlreadyExists`.
    pub fn is_already_exists(&self) -> bool {
        self.status_reason() == Some("AlreadyExists")
    }

    /// The identity may not do this: reason `Forbidden`, or code 403.
    pub fn is_forbidden(&self) -> bool {
        self.reason_or_code_is("Forbidden", 403)
    }

    /// The object failed validation: reason `Invalid`, or code 422.
    pub fn is_invalid(&self) -> bool {
        self.reason_or_code_is("Invalid", 422)
    }

    /// The credentials were refused: reason `Unauthorized`, or code 401.
    pub fn is_unauthorized(&self) -> bool {
        self.reason_or_code_is("Unauthorized", 401)
    }

    /// The resource version asked for is too old: reason `Gone`, or code 410.
    pub fn is_gone(&self) -> bool {
        self.reason_or_code_is("Gone", 410)
    }

    /// The API server is shedding load: reason `TooManyRequests`, or code 429.
    pub fn is_too_many_requests(&self) -> bool {
        self.reason_or_code_is("TooManyRequests", 429)
    }

    fn reason_or_code_is(&self, wanted_reason: &str, fallback_code: i32) -> bool {
        let Some(status) = self.status() else {
            return false;
        };
        match status.reason.as_deref() {
            Some(reason) if KNOWN_REASONS.contains(&reason) => reason == wanted_reason,
            _ => status.code == fallback_code,
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for HostError {}

/// A Kubernetes `Status` object (`meta/v1`), as the API server sends it with an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeStatus {
    #[serde(default = "status_kind")]
    pub kind: String,
    #[serde(default = "status_api_version")]
    pub api_version: String,
    #[serde(default = "empty_object")]
    pub metadata: Value,
    /// `Failure` (or `Success`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Machine-readable reason: `NotFound`, `AlreadyExists`, `Conflict`, `Forbidden`, `Invalid`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `name`, `group`, `kind`, `uid`, `causes`, `retryAfterSeconds` as the server sent them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// The HTTP status code.
    #[serde(default)]
    pub code: i32,
}

impl KubeStatus {
    /// A failure Status with this code, reason and message.
    pub fn failure(code: i32, reason: impl Into<String>, message: impl Into<String>) -> Self {
        KubeStatus {
            kind: status_kind(),
            api_version: status_api_version(),
            metadata: empty_object(),
            status: Some("Failure".to_owned()),
            message: Some(message.into()),
            reason: Some(reason.into()),
            details: None,
            code,
        }
    }
}

fn status_kind() -> String {
    "Status".to_owned()
}

fn status_api_version() -> String {
    "v1".to_owned()
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}
