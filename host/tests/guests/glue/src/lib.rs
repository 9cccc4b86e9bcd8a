//! Raw bindings to the wasm-operator ABI v1 imports, for the host's Rust test guests.
//!
//! This is deliberately minimal (the real guest SDK lives in `sdk-rust/`): it lets a test guest
//! read its call input, set its result, make host calls and log, and [`export_operator!`] defines
//! the ABI version marker and the two operator exports. Memory follows the ABI's pull model: the
//! guest allocates every buffer itself and keeps it alive while the host copies into it; nothing
//! here exports an allocator.

use std::cell::Cell;

use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_operator_abi::{GuestError, HostResponse, HttpRequest, KubeRequest, LogLevel, LogRecord};

/// The imports of module `wasm_operator`, exactly as the ABI declares them (i32 = u32 here).
mod imports {
    #[link(wasm_import_module = "wasm_operator")]
    extern "C" {
        pub fn input_read(ptr: *mut u8, len: u32) -> u32;
        pub fn result_write(ptr: *const u8, len: u32);
        pub fn response_read(ptr: *mut u8, len: u32) -> u32;
        pub fn kube_request(ptr: *const u8, len: u32) -> u32;
        pub fn http_request(ptr: *const u8, len: u32) -> u32;
        pub fn log(ptr: *const u8, len: u32);
    }
}

thread_local! {
    /// Byte length of the current call's input, as passed to the export; the host keeps the
    /// bytes and [`input`] pulls them.
    static CURRENT_INPUT_LEN: Cell<u32> = const { Cell::new(0) };
}

/// The current call's input bytes (InitInput or ReconcileRequest JSON).
pub fn input() -> Vec<u8> {
    let len = CURRENT_INPUT_LEN.with(Cell::get);
    let mut buffer = vec![0u8; len as usize];
    // SAFETY: `buffer` is a live allocation of exactly `len` bytes for the duration of the call.
    let copied = unsafe { imports::input_read(buffer.as_mut_ptr(), len) };
    buffer.truncate(copied as usize);
    buffer
}

/// Sets the current call's result (the host keeps the last write).
pub fn set_result(bytes: &[u8]) {
    // SAFETY: the host only reads `bytes.len()` bytes from a live slice.
    unsafe { imports::result_write(bytes.as_ptr(), bytes.len() as u32) }
}

/// Sends raw bytes to `kube_request` and returns the raw HostResponse bytes. Test guests use this
/// to send malformed requests on purpose.
pub fn kube_raw(request: &[u8]) -> Vec<u8> {
    // SAFETY: the host reads `request.len()` bytes from a live slice and blocks until done.
    let response_len = unsafe { imports::kube_request(request.as_ptr(), request.len() as u32) };
    read_response(response_len)
}

/// Sends raw bytes to `http_request` and returns the raw HostResponse bytes.
pub fn http_raw(request: &[u8]) -> Vec<u8> {
    // SAFETY: as in `kube_raw`.
    let response_len = unsafe { imports::http_request(request.as_ptr(), request.len() as u32) };
    read_response(response_len)
}

/// Performs a Kubernetes request through the host.
pub fn kube(request: &KubeRequest) -> HostResponse {
    decode_response(&kube_raw(&encode(request)))
}

/// Performs an outbound HTTP request through the host.
pub fn http(request: &HttpRequest) -> HostResponse {
    decode_response(&http_raw(&encode(request)))
}

/// Logs `message` at `level` through the host.
pub fn log(level: LogLevel, message: &str) {
    let bytes = encode(&LogRecord::new(level, message));
    // SAFETY: the host reads `bytes.len()` bytes from a live slice.
    unsafe { imports::log(bytes.as_ptr(), bytes.len() as u32) }
}

fn read_response(len: u32) -> Vec<u8> {
    let mut buffer = vec![0u8; len as usize];
    // SAFETY: `buffer` stays alive and `len` bytes long while the host copies into it.
    let copied = unsafe { imports::response_read(buffer.as_mut_ptr(), len) };
    buffer.truncate(copied as usize);
    buffer
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising the ABI's own message types cannot fail (string keys, no non-finite floats).
    serde_json::to_vec(value).expect("ABI message types always serialise")
}

fn decode_response(bytes: &[u8]) -> HostResponse {
    // The host always answers with a HostResponse; if it did not, aborting the guest (a trap) is
    // the loudest signal a test can get.
    serde_json::from_slice(bytes).unwrap_or_else(|error| {
        panic!(
            "host sent a response that is not a HostResponse ({error}): {}",
            String::from_utf8_lossy(bytes)
        )
    })
}

/// Runs one operator export: pulls and parses the input, calls `handler`, writes the result and
/// returns the ABI return code (0 = ok, 1 = GuestError). Used by [`export_operator!`].
#[doc(hidden)]
pub fn __run_export<I, O>(input_len: u32, handler: fn(I) -> Result<O, GuestError>) -> u32
where
    I: DeserializeOwned,
    O: Serialize,
{
    CURRENT_INPUT_LEN.with(|current| current.set(input_len));
    let parsed = serde_json::from_slice::<I>(&input());
    let outcome = match parsed {
        Ok(input) => handler(input),
        Err(error) => Err(GuestError::new(format!(
            "guest could not parse its input: {error}"
        ))),
    };
    match outcome {
        Ok(result) => {
            set_result(&encode(&result));
            0
        }
        Err(error) => {
            set_result(&encode(&error));
            1
        }
    }
}

/// Defines the ABI version marker export and `wasm_operator_init` / `wasm_operator_reconcile`.
///
/// `init_fn: fn(InitInput) -> Result<Registration, GuestError>`,
/// `reconcile_fn: fn(ReconcileRequest) -> Result<ReconcileResult, GuestError>`.
#[macro_export]
macro_rules! export_operator {
    ($init_fn:path, $reconcile_fn:path) => {
        #[no_mangle]
        pub extern "C" fn wasm_operator_abi_v1() {}

        #[no_mangle]
        pub extern "C" fn wasm_operator_init(input_len: u32) -> u32 {
            $crate::__run_export(input_len, $init_fn)
        }

        #[no_mangle]
        pub extern "C" fn wasm_operator_reconcile(input_len: u32) -> u32 {
            $crate::__run_export(input_len, $reconcile_fn)
        }
    };
}
