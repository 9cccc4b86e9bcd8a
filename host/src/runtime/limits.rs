//! Per-instance resource limits: the configuration an operator runs under ([`InstanceLimits`])
//! and the wasmtime resource limiter that enforces its linear-memory cap.
//!
//! A denied memory growth traps immediately instead of making `memory.grow` return -1: guest
//! allocators (Rust's and Go's alike) abort with an opaque `unreachable` on allocation failure,
//! so trapping at the limit is the only way to tell the user *why* their operator died. The
//! limiter also remembers the denial, so the failure is reported as
//! [`CallError::MemoryLimitExceeded`](super::CallError::MemoryLimitExceeded) whatever the error
//! chain looks like by the time it reaches the caller.

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

/// Marker error returned from the limiter when the guest asks for more memory than allowed.
#[derive(Debug, thiserror::Error)]
#[error("memory growth to {desired} bytes refused: the operator's memory limit is {limit} bytes")]
pub(crate) struct MemoryLimitReached {
    pub desired: usize,
    pub limit: usize,
}

/// Enforces [`InstanceLimits::max_memory_bytes`] and records whether it was hit.
pub(crate) struct MemoryLimiter {
    max_memory_bytes: usize,
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

    /// Whether a growth was refused since the instance was created.
    pub fn limit_was_hit(&self) -> bool {
        self.denied
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
            self.denied = true;
            return Err(wasmtime::Error::new(MemoryLimitReached {
                desired,
                limit: self.max_memory_bytes,
            }));
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
