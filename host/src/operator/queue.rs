//! An operator's workqueue together with its queue-depth gauge, so every add and take keeps
//! the metric current without the callers having to remember it.
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;

use crate::scheduler::mapping::ObjectKey;
use crate::scheduler::workqueue::{BackoffConfig, WorkQueue};

pub(crate) struct OperatorQueue {
    queue: WorkQueue<ObjectKey>,
    depth: Gauge,
}

impl OperatorQueue {
    pub fn new(backoff: BackoffConfig, depth: Gauge) -> Self {
        OperatorQueue {
            queue: WorkQueue::new(backoff),
            depth,
        }
    }

    fn publish(&self) {
        self.depth.set(self.queue.depth() as i64);
    }

    pub fn add(&self, key: ObjectKey) {
        self.queue.add(key);
        self.publish();
    }

    pub fn add_after(&self, key: ObjectKey, delay: Duration) {
        self.queue.add_after(key, delay);
        self.publish();
    }

    pub fn add_rate_limited(&self, key: ObjectKey) -> Duration {
        let delay = self.queue.add_rate_limited(key);
        self.publish();
        delay
    }

    pub fn add_failed_after(&self, key: ObjectKey, delay: Duration) {
        self.queue.add_failed_after(key, delay);
        self.publish();
    }

    pub fn forget(&self, key: &ObjectKey) {
        self.queue.forget(key);
    }

    pub fn failures(&self, key: &ObjectKey) -> u32 {
        self.queue.failures(key)
    }

    pub fn take_timer_deadline(&self, key: &ObjectKey) -> Option<std::time::Instant> {
        self.queue
            .take_timer_deadline(key)
            .map(tokio::time::Instant::into_std)
    }

    pub fn next_timer(&self) -> Option<std::time::Instant> {
        self.queue.next_timer().map(tokio::time::Instant::into_std)
    }

    pub fn done(&self, key: &ObjectKey) {
        self.queue.done(key);
        self.publish();
    }

    pub async fn next(&self) -> Option<ObjectKey> {
        let key = self.queue.next().await;
        self.publish();
        key
    }

    pub fn shut_down(&self) {
        self.queue.shut_down();
        self.publish();
    }
}
