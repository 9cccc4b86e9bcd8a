//! The JSON messages that cross the guest/host boundary, as serde types.
//!
//! Field names are camelCase on the wire, like Kubernetes. Optional fields are omitted when unset
//! and accepted as missing or `null`; fields with a documented default may be left out. Unknown
//! fields are ignored, so a later minor revision can add optional fields without breaking older
//! guests or hosts. Kubernetes objects and operator configuration are `serde_json::Value`: they
//! travel exactly as the API server (or the operator's configuration) wrote them.
//!
//! docs/abi.md has the schema and a worked example of every message.

mod host_response;
mod http;
mod init;
mod kube;
mod kube_parse;
mod log;
mod reconcile;

pub use host_response::{HostError, HostResponse, KubeStatus};
pub use http::{HttpRequest, HttpResponse};
pub use init::{InitInput, Mapping, Predicate, Registration, Watch, WatchSpec};
pub use kube::{KubeRequest, PatchType, PropagationPolicy};
pub use log::{LogLevel, LogRecord};
pub use reconcile::{AbsentReason, GuestError, ReconcileRequest, ReconcileResult};
