//! Per-instance resource limits: the configuration an operator runs under ([`InstanceLimits`])
//! and the wasmtime resource limiter that enforces its linear-memory cap.
//!
//! A growth past the cap is refused the way the WebAssembly spec defines: `memory.grow` returns
//! -1 and the guest carries on. Languages whose allocator can fail (C's `malloc` returning NULL)
//! can then report the failure themselves, for instance as a GuestError. Most guest allocators
//! (Rust's, Go's, TinyGo's) abort instead, with an opaque `unreachable` trap or `proc_exit`, so
//! the limiter remembers the refusal for the rest of the call: a call that fails after one is
//! reported as [`CallError::MemoryLimitExceeded`](super::CallError::MemoryLimitExceeded), which
//! tells the user *why* their operator died, whatever the error chain looks like by the time it
//! reaches the caller. The memory is not grown either way.

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// Limits for one operator instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceLimits {
    /// Upper bound for the instance's linear memory, in bytes.
    pub max_memory_bytes: usize,
    /// Wall-clock bound for one call into the guest (instantiation with `_initialize`, init or
    /// reconcile), including the time the host spends on the guest's host calls and in WASI
    /// functions such as `poll_oneoff` sleeps. At most [`MAX_CALL_DEADLINE`] is honoured.
    pub call_deadline: Duration,
}

/// The longest call deadline the runtime honours, whatever it is configured with: far above any
/// sensible reconcile, far below the durations that overflow a clock or a timer. Cluster admins
/// set their own, lower maxima for tenants; this bound only keeps the runtime itself from
/// breaking.
pub const MAX_CALL_DEADLINE: Duration = Duration::from_secs(24 * 60 * 60);

impl InstanceLimits {
    /// These limits with the call deadline bounded by [`MAX_CALL_DEADLINE`]: what an instance
    /// actually runs under.
    pub fn bounded(self) -> InstanceLimits {
        InstanceLimits {
            call_deadline: self.call_deadline.min(MAX_CALL_DEADLINE),
            ..self
        }
    }
}

impl Default for InstanceLimits {
    fn default() -> Self {
        InstanceLimits {
            max_memory_bytes: 64 << 20,
            call_deadline: Duration::from_secs(10),
        }
    }
}

/// Enforces [`InstanceLimits::max_memory_bytes`] and records whether it was hit.
pub(crate) struct MemoryLimiter {
    max_memory_bytes: usize,
    /// A growth was refused since the instance was created or [`MemoryLimiter::forget_refusal`]
    /// was last called (at the start of every export call).
    denied: bool,
}

impl MemoryLimiter {
    pub fn new(max_memory_bytes: usize) -> Self {
        MemoryLimiter {
            max_memory_bytes,
            denied: false,
        }
    }

    pub fn max_memory_bytes(&self) -> usize {
        self.max_memory_bytes
    }

    /// Whether a growth was refused since the instance was created or the current export call
    /// started.
    pub fn limit_was_hit(&self) -> bool {
        self.denied
    }

    /// Called when an export call starts: a refusal the guest survived in an earlier call (its
    /// allocator handled -1) must not be blamed for an unrelated failure later.
    pub fn forget_refusal(&mut self) {
        self.denied = false;
    }
}

/// Operator modules have one memory and one function table; the slack allows toolchains that
/// emit a second table without letting a module create unbounded numbers of them.
const MAX_TABLES: usize = 4;
/// Table growth bound: generous for indirect-call tables, small enough to keep a hostile guest
/// from exhausting host memory through tables, which the memory cap does not cover.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            // Ok(false): `memory.grow` returns -1 (at instantiation: instantiation fails).
            self.denied = true;
            return Ok(false);
        }
        // Growth beyond the module's own declared maximum is a normal, spec-defined failure.
        Ok(maximum.is_none_or(|maximum| desired <= maximum))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|maximum| desired <= maximum))
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        1
    }
}
