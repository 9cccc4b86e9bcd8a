//! The two operator exports and the [`operator!`](crate::operator) macro that defines them.
//!
//! `wasm_operator_init(len)`: pull the InitInput, call the operator's init function, keep the
//! state it returns, answer with its Registration. `wasm_operator_reconcile(len)`: pull the
//! ReconcileRequest, decode the object into the operator's type, call its reconcile function
//! with the state, answer with a ReconcileResult, or a GuestError and return code 1.
//!
//! The state lives in linear memory for the life of the instance, so it survives the host
//! swapping the instance out and back in; a fresh instance (new module version, after a trap)
//! runs init again and starts with fresh state.
//!
//! Panics: Rust's wasm32-wasip1 target aborts on panic, so a panic cannot be turned into a
//! GuestError. It traps; the panic message goes to stderr, which the host logs under the
//! operator's name, and the host discards the instance and retries the object with backoff in a
//! fresh one. Return an [`Error`] for anything that is not a bug.

use std::any::Any;
use std::cell::RefCell;

use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_operator_abi::{names, InitInput, ReconcileRequest};

use crate::controller::{Controller, InitContext};
use crate::error::{Error, Result};
use crate::host;
use crate::reconcile::{Action, Request};

/// An operator's init function: what it reconciles and watches, and its initial state.
pub type InitFn<S> = fn(&InitContext) -> Result<(Controller, S)>;

/// An operator's reconcile function.
pub type ReconcileFn<K, S> = fn(Request<K>, &mut S) -> Result<Action>;

thread_local! {
    /// The state init returned, for every later reconcile of this instance.
    static OPERATOR_STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    /// The operator's name from the InitInput, for defaults such as an Event's reporting instance.
    static OPERATOR_NAME: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The name the host gave this operator at init (`None` before init).
pub(crate) fn operator_name() -> Option<String> {
    OPERATOR_NAME.with(|name| name.borrow().clone())
}

/// The body of `wasm_operator_init`; returns the ABI return code.
pub fn run_init<S: 'static>(input_len: u32, init: InitFn<S>) -> u32 {
    let outcome = decode_input::<InitInput>(input_len, "the InitInput").and_then(|input| {
        OPERATOR_NAME.with(|name| *name.borrow_mut() = Some(input.operator_name.clone()));
        let context = InitContext {
            operator_name: input.operator_name,
            config: input.config,
        };
        init(&context)
    });
    match outcome {
        Ok((controller, state)) => {
            OPERATOR_STATE.with(|slot| *slot.borrow_mut() = Some(Box::new(state)));
            succeed(&controller.into_registration())
        }
        Err(error) => fail(&error),
    }
}

/// The body of `wasm_operator_reconcile`; returns the ABI return code.
pub fn run_reconcile<K: DeserializeOwned, S: 'static>(
    input_len: u32,
    reconcile: ReconcileFn<K, S>,
) -> u32 {
    let outcome = decode_input::<ReconcileRequest>(input_len, "the ReconcileRequest")
        .and_then(typed_request::<K>)
        .and_then(|request| with_state(|state| reconcile(request, state)));
    match outcome {
        Ok(action) => succeed(&action.into_result()),
        Err(error) => fail(&error),
    }
}

fn decode_input<T: DeserializeOwned>(input_len: u32, what: &str) -> Result<T> {
    let bytes = host::read_input(input_len);
    serde_json::from_slice(&bytes).map_err(|e| Error::decode(what, e))
}

fn typed_request<K: DeserializeOwned>(request: ReconcileRequest) -> Result<Request<K>> {
    let key = match &request.namespace {
        Some(namespace) => format!("{namespace}/{}", request.name),
        None => request.name.clone(),
    };
    let object = match request.object {
        Some(object) => Some(
            serde_json::from_value(object)
                .map_err(|e| Error::decode(format!("{} {key}", request.kind), e))?,
        ),
        None => None,
    };
    Ok(Request {
        api_version: request.api_version,
        kind: request.kind,
        namespace: request.namespace,
        name: request.name,
        object,
        absent_reason: request.absent_reason,
        attempt: request.attempt,
    })
}

fn with_state<S: 'static>(body: impl FnOnce(&mut S) -> Result<Action>) -> Result<Action> {
    OPERATOR_STATE.with(|slot| {
        let mut slot = slot.borrow_mut();
        let state = slot
            .as_mut()
            .ok_or_else(|| Error::msg("reconcile was called before init"))?
            .downcast_mut::<S>()
            .ok_or_else(|| {
                Error::msg("the operator state has a different type than reconcile expects")
            })?;
        body(state)
    })
}

fn succeed<T: Serialize>(result: &T) -> u32 {
    let bytes = serde_json::to_vec(result).expect("ABI results always serialise");
    host::write_result(&bytes);
    names::RETURN_OK as u32
}

fn fail(error: &Error) -> u32 {
    let bytes = serde_json::to_vec(&error.to_guest_error()).expect("GuestError always serialises");
    host::write_result(&bytes);
    names::RETURN_ERROR as u32
}

/// Ties the state types of init and reconcile together at compile time. Never called.
#[doc(hidden)]
pub fn same_state<K, S>(_init: InitFn<S>, _reconcile: ReconcileFn<K, S>) {}

/// Defines the exports the host calls: the ABI v1 marker, `wasm_operator_init` and
/// `wasm_operator_reconcile`.
///
/// ```ignore
/// fn init(init: &InitContext) -> Result<(Controller, ())> { .. }
/// fn reconcile(request: Request<WebApp>, state: &mut ()) -> Result<Action> { .. }
/// wasm_operator_sdk::operator!(init, reconcile);
/// ```
///
/// Use it once, in the crate root of a `cdylib`.
#[macro_export]
macro_rules! operator {
    ($init:path, $reconcile:path) => {
        /// The ABI version marker: its name tells the host this module speaks ABI v1.
        #[unsafe(no_mangle)]
        pub extern "C" fn wasm_operator_abi_v1() {}

        /// Called once per fresh instance; answers with the operator's registration.
        #[unsafe(no_mangle)]
        pub extern "C" fn wasm_operator_init(input_len: u32) -> u32 {
            $crate::__private::run_init(input_len, $init)
        }

        /// Called for each object to reconcile.
        #[unsafe(no_mangle)]
        pub extern "C" fn wasm_operator_reconcile(input_len: u32) -> u32 {
            $crate::__private::run_reconcile(input_len, $reconcile)
        }

        #[allow(dead_code)]
        fn __wasm_operator_state_types_match() {
            $crate::__private::same_state($init, $reconcile);
        }
    };
}
