//! Waiting for conditions with a deadline, instead of sleeping and hoping.
use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is re-evaluated.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Polls `condition` until it yields `Some`, and returns that value. Panics, naming `what`, when
/// `timeout` passes first, so a failing test says what it was waiting for.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
