//! How a call into an operator can fail ([`CallError`], [`LoadError`]), and the translation of
//! wasmtime errors into those outcomes.
//!
//! Host functions fail a call by returning a wasmtime error carrying one of the marker types
//! below; wasmtime hands that error back from `call_async` unchanged (plus backtrace context), so
//! the marker is found again with `downcast_ref` and the call is reported precisely instead of as
//! a generic trap.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use wasm_operator_abi::GuestError;
use wasmtime::{Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

/// Why a call into an operator (instantiation, init or reconcile) did not produce a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The guest returned 1 with a GuestError: an ordinary failure it reported itself.
    Guest(GuestError),
    /// The guest trapped (panic, unreachable, out-of-bounds access, stack overflow, exit).
    Trap(String),
    /// The call ran longer than the operator's call deadline and was interrupted.
    DeadlineExceeded(Duration),
    /// The guest tried to grow its linear memory past its limit (bytes).
    MemoryLimitExceeded { limit: usize },
    /// The guest broke the ABI: bad pointer, malformed JSON, bad return code, missing result.
    AbiViolation(String),
    /// The host itself failed (e.g. the instance could not be created).
    Host(String),
}

impl CallError {
    /// The short name of the kind of failure, as the host's metrics and recordings label it:
    /// `guest`, `trap`, `deadline`, `memory`, `abi` or `host`.
    pub fn reason_label(&self) -> &'static str {
        match self {
            CallError::Guest(_) => "guest",
            CallError::Trap(_) => "trap",
            CallError::DeadlineExceeded(_) => "deadline",
            CallError::MemoryLimitExceeded { .. } => "memory",
            CallError::AbiViolation(_) => "abi",
            CallError::Host(_) => "host",
        }
    }

    /// Whether the instance may be in an inconsistent state after this error, so it must be
    /// dropped and a fresh one instantiated before the next call.
    pub fn instance_unusable(&self) -> bool {
        matches!(
            self,
            CallError::Trap(_)
                | CallError::DeadlineExceeded(_)
                | CallError::MemoryLimitExceeded { .. }
                | CallError::AbiViolation(_)
        )
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Guest(error) => {
                write!(f, "the operator reported an error: {}", error.message)
            }
            CallError::Trap(message) => write!(f, "the operator trapped: {message}"),
            CallError::DeadlineExceeded(deadline) => write!(
                f,
                "the operator ran past its call deadline of {} ms and was stopped; do less work \
                 per call or raise the operator's call deadline",
                deadline.as_millis()
            ),
            CallError::MemoryLimitExceeded { limit } => write!(
                f,
                "the operator tried to use more than its memory limit of {limit} bytes and was \
                 stopped; raise the operator's memory limit or reduce what it keeps in memory"
            ),
            CallError::AbiViolation(message) => write!(
                f,
                "the operator broke the wasm-operator ABI: {message}; rebuild it with a \
                 wasm-operator SDK that matches this host"
            ),
            CallError::Host(message) => write!(f, "host error: {message}"),
        }
    }
}

impl std::error::Error for CallError {}

/// Why a module could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The module is not a valid wasm-operator module; the text says what to change.
    #[error("invalid operator module: {0}")]
    Invalid(String),
    /// Cranelift could not compile the module.
    #[error("could not compile the operator module: {0}")]
    Compile(String),
    /// The module's imports cannot be satisfied by this host.
    #[error("could not link the operator module: {0}")]
    Link(String),
    /// The module imports a capability its operator was not granted; the text says which and
    /// how to grant it.
    #[error("operator module refused: {0}")]
    NotGranted(String),
    /// The module's initial linear memory is larger than the operator's memory limit, so no
    /// instance of it could ever be created; the text names both and what to change.
    #[error("operator module refused: {0}")]
    MemoryLimitTooSmall(String),
}

/// Marker error: the guest broke the ABI inside a host function.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct AbiViolation(pub String);

/// Marker error: the host failed while serving a host call (not the guest's fault).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct HostFailure(pub String);

/// wasmtime's error type converts to `anyhow` only with a crate feature the host does not need;
/// the alternate format keeps the whole cause chain in the message.
pub(crate) fn to_anyhow(error: wasmtime::Error) -> anyhow::Error {
    anyhow::Error::msg(format!("{error:#}"))
}

/// The ABI violation of calling host function `import` while no export call is running.
pub(crate) fn outside_call(import: &str) -> wasmtime::Error {
    abi_violation(format!(
        "`{import}` was called while no init or reconcile call was in progress (e.g. from \
         `_initialize`)"
    ))
}

pub(crate) fn abi_violation(message: impl Into<String>) -> wasmtime::Error {
    wasmtime::Error::new(AbiViolation(message.into()))
}

/// Translates an error returned by wasmtime during a call into a [`CallError`].
///
/// `memory_limit_hit` comes from the store's limiter: a refused growth makes `memory.grow` return
/// -1, and a guest whose allocator cannot cope fails with some trap (or `proc_exit`) of its own;
/// the limit is the real reason. `export_names` names backtrace frames that have no name of their
/// own.
pub(crate) fn classify(
    error: wasmtime::Error,
    deadline: Duration,
    memory_limit: usize,
    memory_limit_hit: bool,
    export_names: &HashMap<u32, String>,
) -> CallError {
    if let Some(violation) = error.downcast_ref::<AbiViolation>() {
        return CallError::AbiViolation(violation.0.clone());
    }
    if let Some(failure) = error.downcast_ref::<HostFailure>() {
        return CallError::Host(failure.0.clone());
    }
    if memory_limit_hit {
        return CallError::MemoryLimitExceeded {
            limit: memory_limit,
        };
    }
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return CallError::Trap(format!(
            "the operator called proc_exit({}); operators must return from their exports instead \
             of exiting",
            exit.0
        ));
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::DeadlineExceeded(deadline),
        Some(trap) => CallError::Trap(with_backtrace_summary(
            trap.to_string(),
            &error,
            export_names,
        )),
        None => CallError::Trap(with_backtrace_summary(
            format!("{error}"),
            &error,
            export_names,
        )),
    }
}

/// Frames shown in a trap message; enough to locate the failing function without flooding a
/// status condition or a log line.
const BACKTRACE_FRAMES: usize = 4;

fn with_backtrace_summary(
    message: String,
    error: &wasmtime::Error,
    export_names: &HashMap<u32, String>,
) -> String {
    let Some(backtrace) = error.downcast_ref::<WasmBacktrace>() else {
        return message;
    };
    let frames: Vec<String> = backtrace
        .frames()
        .iter()
        .take(BACKTRACE_FRAMES)
        .map(|frame| {
            frame
                .func_name()
                .map(str::to_owned)
                .or_else(|| export_names.get(&frame.func_index()).cloned())
                .unwrap_or_else(|| format!("func[{}]", frame.func_index()))
        })
        .collect();
    if frames.is_empty() {
        return message;
    }
    let more = if backtrace.frames().len() > BACKTRACE_FRAMES {
        " <- ..."
    } else {
        ""
    };
    format!("{message} (in {}{more})", frames.join(" <- "))
}
