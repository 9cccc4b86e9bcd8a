//! The host's Prometheus metrics: one registry, the metric families the operator manager and the
//! watch manager update, and (in [`server`]) the HTTP endpoint serving them with the health probes.
pub mod server;

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperatorLabels {
    pub operator: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub operator: String,
    /// `success` or `error`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub operator: String,
    /// `guest`, `trap`, `deadline`, `memory`, `abi` or `host`.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// `loading`, `running`, `idle`, `swapped` or `failed`.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResumeLabels {
    pub operator: String,
    /// `resumed`, or why not: `init_changed`, `module_changed`, `format_changed`, `unreadable`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SwapFailureLabels {
    pub operator: String,
    /// [`SwapError::kind`](crate::runtime::SwapError::kind): `missing`, `corrupt`, `io`, ...
    pub kind: String,
}

fn swap_in_duration_histogram() -> Histogram {
    // 50 us .. ~3.3 s: a lazy swap-in takes a fraction of a millisecond, an eager one of a large
    // state (after a damaged file forced a full read) up to seconds.
    Histogram::new(exponential_buckets(0.00005, 3.0, 11))
}

fn reconcile_duration_histogram() -> Histogram {
    // 100 us .. ~27 s: an empty reconcile takes microseconds, a deadline overrun seconds.
    Histogram::new(exponential_buckets(0.0001, 4.0, 10))
}

/// Every metric family of the host. Cheap to clone (the families are reference counted).
#[derive(Clone)]
pub struct HostMetrics {
    registry: Arc<Registry>,
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Family<OperatorLabels, Histogram, fn() -> Histogram>,
    pub queue_depth: Family<OperatorLabels, Gauge>,
    pub memory_bytes: Family<OperatorLabels, Gauge>,
    pub instance_restarts: Family<OperatorLabels, Counter>,
    pub swap_outs: Family<OperatorLabels, Counter>,
    pub swap_ins: Family<OperatorLabels, Counter>,
    pub pre_wakes: Family<OperatorLabels, Counter>,
    pub swap_in_duration: Family<OperatorLabels, Histogram, fn() -> Histogram>,
    pub swap_failures: Family<SwapFailureLabels, Counter>,
    pub resumes: Family<ResumeLabels, Counter>,
    pub snapshot_bytes: Family<OperatorLabels, Gauge>,
    pub guest_log_lines_dropped: Family<OperatorLabels, Counter>,
    pub operators: Family<StateLabels, Gauge>,
    pub watches_open: Gauge,
    pub watch_subscriptions: Gauge,
}

impl Default for HostMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl HostMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("wasm_operator");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconcile_duration =
            Family::<OperatorLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                reconcile_duration_histogram as fn() -> Histogram,
            );
        let queue_depth = Family::<OperatorLabels, Gauge>::default();
        let memory_bytes = Family::<OperatorLabels, Gauge>::default();
        let instance_restarts = Family::<OperatorLabels, Counter>::default();
        let swap_outs = Family::<OperatorLabels, Counter>::default();
        let swap_ins = Family::<OperatorLabels, Counter>::default();
        let pre_wakes = Family::<OperatorLabels, Counter>::default();
        let swap_in_duration =
            Family::<OperatorLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                swap_in_duration_histogram as fn() -> Histogram,
            );
        let swap_failures = Family::<SwapFailureLabels, Counter>::default();
        let resumes = Family::<ResumeLabels, Counter>::default();
        let snapshot_bytes = Family::<OperatorLabels, Gauge>::default();
        let guest_log_lines_dropped = Family::<OperatorLabels, Counter>::default();
        let operators = Family::<StateLabels, Gauge>::default();
        let watches_open = Gauge::default();
        let watch_subscriptions = Gauge::default();
        registry.register(
            "reconciles",
            "Reconciles finished, by operator and result",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconciles, by operator and reason (guest error, trap, deadline, memory, abi, host)",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile call, including the guest's host calls",
            reconcile_duration.clone(),
        );
        registry.register(
            "queue_depth",
            "Keys ready to be reconciled, by operator",
            queue_depth.clone(),
        );
        registry.register(
            "memory_bytes",
            "Linear memory of the operator's resident instance, by operator (0 while swapped out)",
            memory_bytes.clone(),
        );
        registry.register(
            "instance_restarts",
            "Instances recreated after a trap, deadline overrun, memory cap hit or ABI violation",
            instance_restarts.clone(),
        );
        registry.register(
            "swap_outs",
            "Instances swapped out to a snapshot file",
            swap_outs.clone(),
        );
        registry.register(
            "swap_ins",
            "Instances restored from a snapshot file",
            swap_ins.clone(),
        );
        registry.register(
            "pre_wakes",
            "Swap-ins ahead of a RequeueAfter or retry timer (pre-wake), so its reconcile did not wait for one",
            pre_wakes.clone(),
        );
        registry.register(
            "swap_in_duration_seconds",
            "Time to restore a swapped-out instance, from the event that needs it to an instance ready to call",
            swap_in_duration.clone(),
        );
        registry.register(
            "swap_failures",
            "Swap-outs or swap-ins that failed, by kind (missing, corrupt, io, unsupported, ...); a failed swap-in starts the operator fresh",
            swap_failures.clone(),
        );
        registry.register(
            "resumes",
            "Operators that started with a snapshot an earlier process left: resumed from it, or started fresh and why (init_changed, module_changed, format_changed, unreadable)",
            resumes.clone(),
        );
        registry.register(
            "snapshot_bytes",
            "Disk space held by the operator's snapshot while it is swapped out",
            snapshot_bytes.clone(),
        );
        registry.register(
            "guest_log_lines_dropped",
            "Log lines of the operator (log host call, stdout, stderr) dropped because it logged faster than the host's per-operator rate",
            guest_log_lines_dropped.clone(),
        );
        registry.register("operators", "Operators by state", operators.clone());
        registry.register(
            "watches_open",
            "Watches open against the API server (shared between operators)",
            watches_open.clone(),
        );
        registry.register(
            "watch_subscriptions",
            "Operator subscriptions to the open watches",
            watch_subscriptions.clone(),
        );
        HostMetrics {
            registry: Arc::new(registry),
            reconciles,
            reconcile_errors,
            reconcile_duration,
            queue_depth,
            memory_bytes,
            instance_restarts,
            swap_outs,
            swap_ins,
            pre_wakes,
            swap_in_duration,
            swap_failures,
            resumes,
            snapshot_bytes,
            guest_log_lines_dropped,
            operators,
            watches_open,
            watch_subscriptions,
        }
    }

    /// The metrics in the Prometheus/OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Drops the per-operator series of an unloaded operator so it disappears from /metrics.
    pub fn forget_operator(&self, operator: &str) {
        let labels = OperatorLabels {
            operator: operator.to_string(),
        };
        self.queue_depth.remove(&labels);
        self.memory_bytes.remove(&labels);
        self.snapshot_bytes.remove(&labels);
    }
}

/// Reads one sample `name{labels}` from the text format (for tests and tools).
/// `labels` is the exact label text inside the braces, or empty for an unlabelled metric.
pub fn sample_value(text: &str, name: &str, labels: &str) -> Option<f64> {
    let series = if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{labels}}}")
    };
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(&series)?;
        rest.strip_prefix(' ')?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_encoded_with_the_prefix_and_labels() {
        let metrics = HostMetrics::new();
        metrics.watches_open.set(2);
        metrics
            .reconciles
            .get_or_create(&ReconcileLabels {
                operator: "web".into(),
                result: "success".into(),
            })
            .inc();
        metrics
            .queue_depth
            .get_or_create(&OperatorLabels {
                operator: "web".into(),
            })
            .set(3);
        let text = metrics.encode();
        assert_eq!(
            sample_value(&text, "wasm_operator_watches_open", ""),
            Some(2.0)
        );
        assert_eq!(
            sample_value(
                &text,
                "wasm_operator_reconciles_total",
                "operator=\"web\",result=\"success\""
            ),
            Some(1.0)
        );
        assert_eq!(
            sample_value(&text, "wasm_operator_queue_depth", "operator=\"web\""),
            Some(3.0)
        );
        metrics.forget_operator("web");
        assert_eq!(
            sample_value(
                &metrics.encode(),
                "wasm_operator_queue_depth",
                "operator=\"web\""
            ),
            None
        );
    }
}
