//! The ABI-level conformance guest in Rust. Its twin in Go is conformance/guests/go-abi; both
//! make exactly the host calls docs/conformance.md ("The ABI guests") lists, so the suite can
//! compare their transcripts.
//!
//! It is written against the raw `wasm_operator` imports and exports (not an SDK's entry
//! points), since some probes break the ABI on purpose; requests and responses use the message
//! types of `wasm-operator-abi`.
//!
//! Init config: `{"namespace": "<ns>", "http": "<base URL>", "closed": "<URL nothing listens on>"}`;
//! with `"failInit": "<reason>"` init fails instead (a GuestError).
//! Registration: For `v1 ConfigMap` in that namespace with label
//! `conformance.wasm-operator.dev/probe=true`. Each such ConfigMap is a probe: `data.action`
//! names what to exercise ([`probes`]), and the findings go to ConfigMap `<probe>-result`.

mod probes;
mod raw;

use std::cell::RefCell;

use serde_json::Value;
use wasm_operator_abi::names::{RETURN_ERROR, RETURN_OK};
use wasm_operator_abi::{GuestError, InitInput, ReconcileRequest, Registration, WatchSpec};

/// The probe label the guest watches.
pub const PROBE_LABEL: &str = "conformance.wasm-operator.dev/probe=true";

/// What init was told.
#[derive(Default, Clone)]
pub struct Settings {
    pub namespace: String,
    pub http: String,
    pub closed: String,
}

thread_local! {
    static SETTINGS: RefCell<Settings> = RefCell::new(Settings::default());
    /// Length of the current call's input, as passed to the export.
    static INPUT_LEN: RefCell<u32> = const { RefCell::new(0) };
}

/// How an export ends: what to write as its result (if anything) and what to return.
pub struct Ending {
    pub result: Option<Vec<u8>>,
    pub code: i32,
}

impl Ending {
    pub fn ok(result: &Value) -> Self {
        Ending {
            result: Some(result.to_string().into_bytes()),
            code: RETURN_OK,
        }
    }

    pub fn guest_error(error: &GuestError) -> Self {
        Ending {
            result: serde_json::to_vec(error).ok(),
            code: RETURN_ERROR,
        }
    }
}

#[no_mangle]
pub extern "C" fn wasm_operator_abi_v1() {}

#[no_mangle]
pub extern "C" fn wasm_operator_init(input_len: u32) -> i32 {
    INPUT_LEN.with(|len| *len.borrow_mut() = input_len);
    let input: InitInput = match serde_json::from_slice(&raw::input(input_len)) {
        Ok(input) => input,
        Err(e) => {
            return finish(Ending::guest_error(&GuestError::new(format!(
                "bad InitInput: {e}"
            ))))
        }
    };
    if let Some(reason) = input.config.get("failInit").and_then(Value::as_str) {
        let message = format!("init refused on purpose: {reason}");
        return finish(Ending::guest_error(&GuestError::new(message)));
    }
    let text = |key: &str| {
        input
            .config
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let settings = Settings {
        namespace: text("namespace"),
        http: text("http"),
        closed: text("closed"),
    };
    let mut probes = WatchSpec::new("v1", "ConfigMap");
    probes.namespace = Some(settings.namespace.clone());
    probes.label_selector = Some(PROBE_LABEL.to_owned());
    SETTINGS.with(|current| *current.borrow_mut() = settings);
    match serde_json::to_value(Registration::new(probes)) {
        Ok(registration) => finish(Ending::ok(&registration)),
        Err(e) => finish(Ending::guest_error(&GuestError::new(e.to_string()))),
    }
}

#[no_mangle]
pub extern "C" fn wasm_operator_reconcile(input_len: u32) -> i32 {
    INPUT_LEN.with(|len| *len.borrow_mut() = input_len);
    let request: ReconcileRequest = match serde_json::from_slice(&raw::input(input_len)) {
        Ok(request) => request,
        Err(e) => {
            return finish(Ending::guest_error(&GuestError::new(format!(
                "bad ReconcileRequest: {e}"
            ))))
        }
    };
    let settings = SETTINGS.with(|current| current.borrow().clone());
    finish(probes::run(&settings, &request))
}

/// The length the current export was called with.
pub fn input_len() -> u32 {
    INPUT_LEN.with(|len| *len.borrow())
}

fn finish(ending: Ending) -> i32 {
    if let Some(result) = &ending.result {
        raw::result_write(result);
    }
    ending.code
}
