//! Native testing without a host: [`FakeHost`] stands in for the `wasm_operator` imports on this
//! thread, answers requests through handlers the test sets, and records everything the operator
//! sent. Tests call the operator's real exports (defined by [`operator!`](crate::operator)), so
//! the same code path runs as in the host.
//!
//! ```ignore
//! let host = FakeHost::install();
//! host.on_kube(|request| match request.verb() {
//!     "get" => testing::not_found("configmaps", "x"),
//!     _ => testing::echo(request),
//! });
//! host.init(wasm_operator_init, json!({"abiVersion": 1, "operatorName": "webapp", "config": {}})).expect_ok();
//! let outcome = host.reconcile(wasm_operator_reconcile, request_json);
//! assert_eq!(host.kube_requests()[0].verb(), "get");
//! ```
//!
//! Only on native targets: in a Wasm build the real imports are used.

use std::rc::Rc;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use wasm_operator_abi::{
    GuestError, HostError, HostResponse, HttpRequest, HttpResponse, KubeRequest, KubeStatus,
    LogRecord, ReconcileResult, Registration,
};

use crate::host::fake::{self, FakeState};
pub use crate::replay::replay;

/// An operator export as the [`operator!`](crate::operator) macro defines it.
pub type Export = extern "C" fn(u32) -> u32;

/// A fake host installed on the current thread until dropped (then the previous one, usually
/// none, is back).
pub struct FakeHost {
    state: Rc<FakeState>,
    previous: Option<Rc<FakeState>>,
}

impl FakeHost {
    /// Installs a fake host with no handlers: every kube or http request fails with a transport
    /// error until [`FakeHost::on_kube`] / [`FakeHost::on_http`] say otherwise.
    pub fn install() -> FakeHost {
        let state = Rc::new(FakeState::empty());
        let previous = fake::install(Some(state.clone()));
        FakeHost { state, previous }
    }

    /// Answers every `kube_request` with `handler`'s response.
    pub fn on_kube(&self, handler: impl FnMut(&KubeRequest) -> HostResponse + 'static) {
        *self.state.kube_handler.borrow_mut() = Box::new(handler);
    }

    /// Answers every `http_request` with `handler`'s response.
    pub fn on_http(
        &self,
        handler: impl FnMut(&HttpRequest) -> HostResponse<HttpResponse> + 'static,
    ) {
        *self.state.http_handler.borrow_mut() = Box::new(handler);
    }

    /// Fixes the clock the SDK reads (`time::now`, Events), for deterministic bodies.
    pub fn set_clock(&self, now: SystemTime) {
        self.state.clock.set(Some(now));
    }

    /// Calls `wasm_operator_init` with `input` (an InitInput, or its JSON).
    pub fn init(&self, export: Export, input: impl Serialize) -> CallOutcome {
        self.call(export, input)
    }

    /// Calls `wasm_operator_reconcile` with `request` (a ReconcileRequest, or its JSON).
    pub fn reconcile(&self, export: Export, request: impl Serialize) -> CallOutcome {
        self.call(export, request)
    }

    fn call(&self, export: Export, input: impl Serialize) -> CallOutcome {
        let bytes = serde_json::to_vec(&input).expect("the call input serialises");
        let len = bytes.len() as u32;
        *self.state.input.borrow_mut() = bytes;
        *self.state.result.borrow_mut() = None;
        let code = export(len);
        let result = self.state.result.borrow_mut().take();
        let result = result.map(|bytes| {
            serde_json::from_slice(&bytes).expect("the guest wrote JSON as its result")
        });
        CallOutcome { code, result }
    }

    /// Every `kube_request` so far, decoded.
    pub fn kube_requests(&self) -> Vec<KubeRequest> {
        decode_all(&self.state.kube_requests.borrow())
    }

    /// Every `kube_request` so far as the JSON the guest sent, fields exactly as written (so a
    /// test can check that unset fields were left out rather than sent as `null`).
    pub fn raw_kube_requests(&self) -> Vec<Value> {
        decode_all(&self.state.kube_requests.borrow())
    }

    /// Every `http_request` so far, decoded.
    pub fn http_requests(&self) -> Vec<HttpRequest> {
        decode_all(&self.state.http_requests.borrow())
    }

    /// Every `http_request` so far as the JSON the guest sent.
    pub fn raw_http_requests(&self) -> Vec<Value> {
        decode_all(&self.state.http_requests.borrow())
    }

    /// Every log record so far.
    pub fn logs(&self) -> Vec<LogRecord> {
        decode_all(&self.state.log_records.borrow())
    }

    /// Forgets the recorded requests and log records (handlers and clock stay).
    pub fn clear_recorded(&self) {
        self.state.kube_requests.borrow_mut().clear();
        self.state.http_requests.borrow_mut().clear();
        self.state.log_records.borrow_mut().clear();
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        fake::install(self.previous.take());
    }
}

fn decode_all<T: DeserializeOwned>(payloads: &[Vec<u8>]) -> Vec<T> {
    payloads
        .iter()
        .map(|bytes| {
            serde_json::from_slice(bytes).unwrap_or_else(|error| {
                panic!(
                    "the guest sent something that is not the expected message ({error}): {}",
                    String::from_utf8_lossy(bytes)
                )
            })
        })
        .collect()
}

/// What an export returned: its return code and the result it wrote (if any).
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    pub code: u32,
    pub result: Option<Value>,
}

impl CallOutcome {
    /// The Registration of a successful init; panics (failing the test) otherwise.
    pub fn registration(&self) -> Registration {
        self.success_as("Registration")
    }

    /// The ReconcileResult of a successful reconcile; panics otherwise.
    pub fn reconcile_result(&self) -> ReconcileResult {
        self.success_as("ReconcileResult")
    }

    /// The GuestError of a failed call; panics if the call succeeded.
    pub fn guest_error(&self) -> GuestError {
        assert_eq!(
            self.code, 1,
            "expected the call to fail, but it returned {self:?}"
        );
        self.result_as("GuestError")
    }

    fn success_as<T: DeserializeOwned>(&self, what: &str) -> T {
        assert_eq!(
            self.code, 0,
            "expected the call to succeed, but it returned {self:?}"
        );
        self.result_as(what)
    }

    fn result_as<T: DeserializeOwned>(&self, what: &str) -> T {
        let result = self
            .result
            .clone()
            .unwrap_or_else(|| panic!("the guest wrote no result (expected a {what})"));
        serde_json::from_value(result.clone())
            .unwrap_or_else(|error| panic!("the result is not a {what} ({error}): {result}"))
    }
}

/// A successful answer carrying `value` (the object, list or HTTP response).
pub fn ok(value: Value) -> HostResponse {
    HostResponse::Ok(value)
}

/// Answers a write with its own body, as the API server would (minus server-set fields); a
/// read gets a 404.
pub fn echo(request: &KubeRequest) -> HostResponse {
    match request {
        KubeRequest::Create { body, .. }
        | KubeRequest::Update { body, .. }
        | KubeRequest::Patch { body, .. } => ok(body.clone()),
        KubeRequest::Delete { .. } => {
            ok(serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}))
        }
        KubeRequest::Get { name, .. } => not_found(request.kind(), name),
        KubeRequest::List { .. } => ok(serde_json::json!({"metadata": {}, "items": []})),
    }
}

/// The API server's answer for a missing object: 404 `NotFound`.
pub fn not_found(kind: &str, name: &str) -> HostResponse {
    api_error(
        404,
        "NotFound",
        &format!("{} \"{name}\" not found", kind.to_ascii_lowercase()),
    )
}

/// The API server's answer for a write with a stale resourceVersion: 409 `Conflict`.
pub fn conflict(kind: &str, name: &str) -> HostResponse {
    api_error(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            kind.to_ascii_lowercase()
        ),
    )
}

/// The API server's answer for a create whose name is taken: 409 `AlreadyExists`.
pub fn already_exists(kind: &str, name: &str) -> HostResponse {
    api_error(
        409,
        "AlreadyExists",
        &format!("{} \"{name}\" already exists", kind.to_ascii_lowercase()),
    )
}

/// An API server refusal with this code, reason and message.
pub fn api_error(code: i32, reason: &str, message: &str) -> HostResponse {
    HostResponse::Error(HostError::api_status(KubeStatus::failure(
        code, reason, message,
    )))
}

/// A failure of the host itself (capability denied, timeout, transport, ...).
pub fn host_error(error: HostError) -> HostResponse {
    HostResponse::Error(error)
}

/// An HTTP response with `status` and `body` (no headers).
pub fn http_response(status: u16, body: &str) -> HostResponse<HttpResponse> {
    HostResponse::Ok(HttpResponse {
        status,
        headers: Default::default(),
        body: body.to_owned(),
    })
}
