//! When operators run: per-operator workqueues (deduplication, backoff, RequeueAfter timers) and
//! the mapping from watch events to the keys they enqueue, and the token bucket that bounds what a
//! guest can make the host do per second (requeues, log lines).
pub mod mapping;
pub mod ratelimit;
pub mod workqueue;
