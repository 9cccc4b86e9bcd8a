//! The transport to the host: the six `wasm_operator` imports of ABI v1, wrapped so the rest of
//! the SDK deals in byte vectors and never in pointers.
//!
//! On `wasm32` these are the real imports ([`wasm`]); everywhere else a per-thread fake
//! ([`fake`], driven through [`crate::testing::FakeHost`]) stands in, so operators and the SDK
//! itself are tested natively with `cargo test`. The memory protocol is the pull model: the guest
//! allocates every buffer the host copies into, and no allocator is exported.

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod fake;
#[cfg(target_arch = "wasm32")]
mod wasm;

#[cfg(not(target_arch = "wasm32"))]
use fake as imports;
#[cfg(target_arch = "wasm32")]
use wasm as imports;

/// The current call's input (InitInput or ReconcileRequest JSON), whose length the host passed
/// to the export.
pub(crate) fn read_input(len: u32) -> Vec<u8> {
    let mut buffer = vec![0u8; len as usize];
    let copied = imports::input_read(&mut buffer);
    buffer.truncate(copied as usize);
    buffer
}

/// Sets the current call's result; the host keeps the last write.
pub(crate) fn write_result(bytes: &[u8]) {
    imports::result_write(bytes);
}

/// Performs a `kube_request` and returns the HostResponse bytes.
pub(crate) fn kube_request(request: &[u8]) -> Vec<u8> {
    let len = imports::kube_request(request);
    read_response(len)
}

/// Performs an `http_request` and returns the HostResponse bytes.
pub(crate) fn http_request(request: &[u8]) -> Vec<u8> {
    let len = imports::http_request(request);
    read_response(len)
}

/// Emits a LogRecord.
pub(crate) fn log(record: &[u8]) {
    imports::log(record);
}

/// The current time: the WASI clock in a guest, the fake's clock (when set) in tests.
pub(crate) fn now() -> std::time::SystemTime {
    imports::now()
}

fn read_response(len: u32) -> Vec<u8> {
    let mut buffer = vec![0u8; len as usize];
    let copied = imports::response_read(&mut buffer);
    buffer.truncate(copied as usize);
    buffer
}
