//! When operators run: per-operator workqueues (deduplication, backoff, RequeueAfter timers) and
//! the mapping from watch events to the keys they enqueue.
pub mod mapping;
pub mod workqueue;
