//! [`HostServices`]: what an operator's host calls reach.

use futures::future::BoxFuture;
use wasm_operator_abi::{HostResponse, HttpRequest, KubeRequest, LogRecord};

/// The capabilities behind one operator's `kube_request`, `http_request` and `log` imports.
///
/// There is one object per operator, so identity (whose credentials a Kubernetes request uses),
/// the HTTP allowlist and the logging context are all per operator. The runtime only moves
/// messages between the guest and this trait; policy lives behind it. Failures are answered
/// with a `HostResponse::Error` for the guest to handle, never by failing the call.
pub trait HostServices: Send + Sync + 'static {
    /// Performs a Kubernetes API request on behalf of the operator.
    fn kube(&self, request: KubeRequest) -> BoxFuture<'static, HostResponse>;
    /// Performs an outbound HTTP request on behalf of the operator.
    fn http(&self, request: HttpRequest) -> BoxFuture<'static, HostResponse>;
    /// Records a log line from the operator.
    fn log(&self, record: LogRecord);
}
