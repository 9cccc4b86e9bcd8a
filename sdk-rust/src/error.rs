//! The SDK's error type: what a host call, a decode or the operator's own logic can fail with,
//! and how it becomes the GuestError the host sees (message, optional retry delay).
//!
//! Host errors keep their [`HostError`] so callers can ask [`Error::is_not_found`],
//! [`Error::is_conflict`] and [`Error::is_already_exists`], decided the way client-go decides
//! them (docs/abi.md, HostError).

use std::fmt;
use std::time::Duration;

use wasm_operator_abi::{GuestError, HostError, KubeStatus};

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an operation failed.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    /// Outermost first: "reconciling ns/web", "applying the Deployment".
    context: Vec<String>,
    requeue_after: Option<Duration>,
}

/// What failed, without the context.
#[derive(Debug)]
pub enum ErrorKind {
    /// The host answered a request with an error (the API server's Status, a refused capability,
    /// a timeout, ...).
    Host(HostError),
    /// JSON that did not have the expected shape: an object from the API server that does not
    /// fit the Rust type, a configuration, a response body.
    Decode {
        what: String,
        source: serde_json::Error,
    },
    /// An HTTP response with a status the caller did not accept (see
    /// [`crate::http::Response::error_for_status`]).
    HttpStatus { status: u16, body: String },
    /// The operator's own error.
    Message(String),
}

impl Error {
    /// An error of the operator's own, e.g. `Error::msg("spec.image must not be empty")`.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error::from_kind(ErrorKind::Message(message.to_string()))
    }

    pub(crate) fn from_kind(kind: ErrorKind) -> Self {
        Error {
            kind,
            context: Vec::new(),
            requeue_after: None,
        }
    }

    pub(crate) fn decode(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::from_kind(ErrorKind::Decode {
            what: what.into(),
            source,
        })
    }

    /// Adds what was being done, shown before the cause: `"applying the Deployment: <cause>"`.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.context.insert(0, context.to_string());
        self
    }

    /// Asks the host to retry after `delay` instead of its exponential backoff.
    pub fn requeue_after(mut self, delay: Duration) -> Self {
        self.requeue_after = Some(delay);
        self
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The host's error, when a host call failed.
    pub fn host_error(&self) -> Option<&HostError> {
        match &self.kind {
            ErrorKind::Host(error) => Some(error),
            _ => None,
        }
    }

    /// The API server's `Status`, when it refused the request.
    pub fn api_status(&self) -> Option<&KubeStatus> {
        self.host_error().and_then(HostError::status)
    }

    /// The object does not exist (reason `NotFound`, or 404 when the reason is unknown).
    pub fn is_not_found(&self) -> bool {
        self.host_error().is_some_and(HostError::is_not_found)
    }

    /// A write lost a race with another writer (reason `Conflict`, or 409 when the reason is
    /// unknown). Return the error: the host retries and the next attempt reads fresh state.
    pub fn is_conflict(&self) -> bool {
        self.host_error().is_some_and(HostError::is_conflict)
    }

    /// A create found the name taken (reason `AlreadyExists`).
    pub fn is_already_exists(&self) -> bool {
        self.host_error().is_some_and(HostError::is_already_exists)
    }

    /// The operator's identity may not do this (reason `Forbidden`, or 403): its RBAC lacks a rule.
    pub fn is_forbidden(&self) -> bool {
        self.host_error().is_some_and(HostError::is_forbidden)
    }

    /// The API server found the object invalid (reason `Invalid`, or 422): retrying the same
    /// write will not help.
    pub fn is_invalid(&self) -> bool {
        self.host_error().is_some_and(HostError::is_invalid)
    }

    /// The credentials were refused (reason `Unauthorized`, or 401).
    pub fn is_unauthorized(&self) -> bool {
        self.host_error().is_some_and(HostError::is_unauthorized)
    }

    /// The resource version asked for is too old (reason `Gone`, or 410).
    pub fn is_gone(&self) -> bool {
        self.host_error().is_some_and(HostError::is_gone)
    }

    /// The API server is shedding load (reason `TooManyRequests`, or 429).
    pub fn is_too_many_requests(&self) -> bool {
        self.host_error()
            .is_some_and(HostError::is_too_many_requests)
    }

    /// The host refused the request: the operator was not granted the capability, or the URL is
    /// outside its HTTP allowlist.
    pub fn is_capability_denied(&self) -> bool {
        matches!(self.host_error(), Some(HostError::CapabilityDenied { .. }))
    }

    /// The request did not finish in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self.host_error(), Some(HostError::Timeout { .. }))
    }

    /// The message without the context: for a host error exactly the host's message.
    pub fn cause_message(&self) -> String {
        match &self.kind {
            ErrorKind::Host(error) => error.message().to_owned(),
            ErrorKind::Decode { what, source } => format!("decoding {what}: {source}"),
            ErrorKind::HttpStatus { status, body } if body.is_empty() => format!("HTTP {status}"),
            ErrorKind::HttpStatus { status, body } => {
                format!("HTTP {status}: {}", first_line(body))
            }
            ErrorKind::Message(message) => message.clone(),
        }
    }

    /// The GuestError the host receives for this error.
    pub fn to_guest_error(&self) -> GuestError {
        let error = GuestError::new(self.to_string());
        match self.requeue_after {
            Some(delay) => error.with_requeue_after(delay),
            None => error,
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for context in &self.context {
            write!(f, "{context}: ")?;
        }
        f.write_str(&self.cause_message())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Host(error) => Some(error),
            ErrorKind::Decode { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<HostError> for Error {
    fn from(error: HostError) -> Self {
        Error::from_kind(ErrorKind::Host(error))
    }
}

impl From<serde_json::Error> for Error {
    fn from(source: serde_json::Error) -> Self {
        Error::decode("JSON", source)
    }
}

/// `.context(...)` on results, as on errors.
pub trait ResultExt<T> {
    /// Adds what was being done to the error, if there is one.
    fn context(self, context: impl fmt::Display) -> Result<T>;

    /// Like [`context`](Self::context), but the context is only built when there is an error
    /// (for a `format!` that should not run on every success).
    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, context: impl fmt::Display) -> Result<T> {
        self.map_err(|error| error.into().context(context))
    }

    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|error| error.into().context(context()))
    }
}
