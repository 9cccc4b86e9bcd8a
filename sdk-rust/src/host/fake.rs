//! The native stand-in for the `wasm_operator` imports: a per-thread fake host that hands the
//! guest its input, keeps its result, answers host calls through handlers a test sets, and
//! records every request and log record. [`crate::testing::FakeHost`] is its public face.
//!
//! Without a fake installed, host calls fail with a `transport` error saying so and log records
//! go to stderr, so native code that forgets to set one up fails loudly rather than hanging.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::SystemTime;

use wasm_operator_abi::{HostError, HostResponse, HttpRequest, HttpResponse, KubeRequest};

pub(crate) type KubeHandler = Box<dyn FnMut(&KubeRequest) -> HostResponse>;
pub(crate) type HttpHandler = Box<dyn FnMut(&HttpRequest) -> HostResponse<HttpResponse>>;

/// The state of one fake host, shared by the installed transport and the test's handle.
pub(crate) struct FakeState {
    pub input: RefCell<Vec<u8>>,
    pub result: RefCell<Option<Vec<u8>>>,
    pub pending_response: RefCell<Option<Vec<u8>>>,
    pub kube_handler: RefCell<KubeHandler>,
    pub http_handler: RefCell<HttpHandler>,
    /// Every `kube_request`, `http_request` and `log` payload, byte for byte, in order.
    pub kube_requests: RefCell<Vec<Vec<u8>>>,
    pub http_requests: RefCell<Vec<Vec<u8>>>,
    pub log_records: RefCell<Vec<Vec<u8>>>,
    pub clock: Cell<Option<SystemTime>>,
}

thread_local! {
    static INSTALLED: RefCell<Option<Rc<FakeState>>> = const { RefCell::new(None) };
}

/// Makes `state` this thread's host; returns the one it replaces.
pub(crate) fn install(state: Option<Rc<FakeState>>) -> Option<Rc<FakeState>> {
    INSTALLED.with(|installed| installed.replace(state))
}

fn installed() -> Option<Rc<FakeState>> {
    INSTALLED.with(|installed| installed.borrow().clone())
}

pub(super) fn input_read(buffer: &mut [u8]) -> u32 {
    let Some(state) = installed() else { return 0 };
    let input = state.input.borrow();
    copy_into(buffer, &input)
}

pub(super) fn result_write(bytes: &[u8]) {
    if let Some(state) = installed() {
        *state.result.borrow_mut() = Some(bytes.to_vec());
    }
}

pub(super) fn response_read(buffer: &mut [u8]) -> u32 {
    match installed() {
        Some(state) => {
            let pending = state.pending_response.borrow();
            pending
                .as_deref()
                .map_or(0, |response| copy_into(buffer, response))
        }
        None => ORPHAN_RESPONSE.with(|orphan| {
            orphan
                .borrow()
                .as_deref()
                .map_or(0, |response| copy_into(buffer, response))
        }),
    }
}

pub(super) fn kube_request(request: &[u8]) -> u32 {
    match installed() {
        Some(state) => {
            state.kube_requests.borrow_mut().push(request.to_vec());
            let answer = match serde_json::from_slice::<KubeRequest>(request) {
                Ok(parsed) => (state.kube_handler.borrow_mut())(&parsed),
                Err(error) => HostResponse::Error(HostError::invalid_request(format!(
                    "the fake host could not parse the KubeRequest: {error}"
                ))),
            };
            store_response(&state, &answer)
        }
        None => no_fake_installed("kube_request"),
    }
}

pub(super) fn http_request(request: &[u8]) -> u32 {
    match installed() {
        Some(state) => {
            state.http_requests.borrow_mut().push(request.to_vec());
            let answer = match serde_json::from_slice::<HttpRequest>(request) {
                Ok(parsed) => (state.http_handler.borrow_mut())(&parsed),
                Err(error) => HostResponse::Error(HostError::invalid_request(format!(
                    "the fake host could not parse the HttpRequest: {error}"
                ))),
            };
            store_response(&state, &answer)
        }
        None => no_fake_installed("http_request"),
    }
}

pub(super) fn log(record: &[u8]) {
    match installed() {
        Some(state) => state.log_records.borrow_mut().push(record.to_vec()),
        None => eprintln!("{}", String::from_utf8_lossy(record)),
    }
}

pub(super) fn now() -> SystemTime {
    installed()
        .and_then(|state| state.clock.get())
        .unwrap_or_else(SystemTime::now)
}

fn copy_into(buffer: &mut [u8], source: &[u8]) -> u32 {
    let count = buffer.len().min(source.len());
    buffer[..count].copy_from_slice(&source[..count]);
    count as u32
}

fn store_response<T: serde::Serialize>(state: &FakeState, response: &T) -> u32 {
    let bytes = serde_json::to_vec(response).expect("HostResponse always serialises");
    let len = bytes.len() as u32;
    *state.pending_response.borrow_mut() = Some(bytes);
    len
}

/// Host calls without a fake have nowhere to go: they fail with a `transport` error naming the
/// fix, kept aside so `response_read` hands it over like a real response.
fn no_fake_installed(import: &str) -> u32 {
    let error: HostResponse = HostResponse::Error(HostError::transport(format!(
        "{import} outside a Wasm host: install a wasm_operator_sdk::testing::FakeHost in native tests"
    )));
    let bytes = serde_json::to_vec(&error).expect("HostResponse always serialises");
    let len = bytes.len() as u32;
    ORPHAN_RESPONSE.with(|orphan| *orphan.borrow_mut() = Some(bytes));
    len
}

thread_local! {
    /// The answer to the last host call made without a fake installed.
    static ORPHAN_RESPONSE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

impl FakeState {
    pub(crate) fn empty() -> FakeState {
        FakeState {
            input: RefCell::default(),
            result: RefCell::default(),
            pending_response: RefCell::default(),
            kube_handler: RefCell::new(Box::new(|request: &KubeRequest| {
                HostResponse::Error(HostError::transport(format!(
                    "the fake host has no kube handler for this {} request: set one with FakeHost::on_kube",
                    request.verb()
                )))
            })),
            http_handler: RefCell::new(Box::new(|request: &HttpRequest| {
                HostResponse::Error(HostError::transport(format!(
                    "the fake host has no http handler for {} {}: set one with FakeHost::on_http",
                    request.method, request.url
                )))
            })),
            kube_requests: RefCell::default(),
            http_requests: RefCell::default(),
            log_records: RefCell::default(),
            clock: Cell::new(None),
        }
    }
}
