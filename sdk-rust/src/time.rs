//! The current time as Kubernetes writes it: [`now`] for `Time` fields (RFC 3339, whole seconds,
//! `2026-01-02T03:04:05Z`) and [`now_micro`] for `MicroTime` fields (`eventTime`, with
//! microseconds). Read from the WASI clock in a guest, from the fake host's clock in tests.

use std::time::UNIX_EPOCH;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;

/// Now, truncated to whole seconds (what a `Time` field holds).
pub fn now() -> Time {
    let (seconds, _) = since_epoch();
    Time(timestamp(seconds, 0))
}

/// Now, truncated to whole microseconds (what a `MicroTime` field holds).
pub fn now_micro() -> MicroTime {
    let (seconds, nanoseconds) = since_epoch();
    MicroTime(timestamp(seconds, nanoseconds / 1_000 * 1_000))
}

fn since_epoch() -> (i64, i32) {
    // A clock before 1970 is not a clock an operator can do anything useful with: use the epoch.
    let elapsed = crate::host::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (elapsed.as_secs() as i64, elapsed.subsec_nanos() as i32)
}

fn timestamp(seconds: i64, nanoseconds: i32) -> Timestamp {
    Timestamp::new(seconds, nanoseconds).unwrap_or(Timestamp::UNIX_EPOCH)
}
