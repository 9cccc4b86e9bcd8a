//! The metrics-scaler example operator (docs/examples.md, "metrics-scaler"): every
//! `intervalSeconds` it reads a metric from a Prometheus-compatible API through the host's HTTP
//! egress and sets its target's `spec.replicas` in proportion to the metric's value.

mod metric;
mod scaling;
#[cfg(test)]
mod tests;
pub mod types;

use std::time::Duration;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::json;
use wasm_operator_sdk::conditions::{self, new_condition};
use wasm_operator_sdk::prelude::*;
use wasm_operator_sdk::status;

use crate::metric::Sample;
use crate::types::{MetricScaler, MetricScalerStatus};

/// The event reporter: the example's name, whatever the host calls the instance.
const OPERATOR: &str = "metrics-scaler";

fn init(_: &InitContext) -> Result<(Controller, ())> {
    let controller = Controller::new(
        Api::<MetricScaler>::all(),
        WatchConfig::default().predicates([Predicate::GenerationChanged]),
    );
    Ok((controller, ()))
}

fn reconcile(request: Request<MetricScaler>, _: &mut ()) -> Result<Action> {
    let Some(scaler) = request.object else {
        return Ok(Action::await_change());
    };
    let namespace = request.namespace.as_deref().unwrap_or_default();
    let measurement = measure_and_scale(&scaler, namespace)?;
    write_status(&scaler, namespace, &measurement)?;
    // Whether or not the metric was there: the next reading is due either way.
    let interval_ms = u64::try_from(i64::from(scaler.spec.interval_seconds()) * 1000).unwrap_or(0);
    Ok(Action::requeue_after(Duration::from_millis(interval_ms)))
}

/// What one round of measuring found.
enum Measurement {
    Available {
        sample: Sample,
        current: i32,
        desired: i32,
        scaled: bool,
    },
    /// Why there is no usable metric: the status's `lastError`.
    Unavailable(String),
}

/// What the operator reads of its target: only `spec.replicas`, so it can scale any kind.
#[derive(Deserialize)]
struct ScaleTarget {
    spec: Option<ScaleTargetSpec>,
}

#[derive(Deserialize)]
struct ScaleTargetSpec {
    replicas: Option<i32>,
}

fn measure_and_scale(scaler: &MetricScaler, namespace: &str) -> Result<Measurement> {
    let spec = &scaler.spec;
    let sample = match metric::read(&spec.metrics_url, &spec.query) {
        Ok(sample) => sample,
        Err(last_error) => return Ok(Measurement::Unavailable(last_error)),
    };
    let target = &spec.target_ref;
    let targets = Api::<ScaleTarget>::namespaced_with(namespace, &target.api_version, &target.kind);
    let current = match targets.get(&target.name) {
        Ok(found) => found.spec.and_then(|spec| spec.replicas).unwrap_or(1),
        Err(error) if error.is_not_found() => {
            return Ok(Measurement::Unavailable(format!(
                "target {} {} not found",
                target.kind, target.name
            )));
        }
        Err(error) => {
            return Err(error.context(format_args!(
                "reading target {} {}",
                target.kind, target.name
            )))
        }
    };
    if spec.target_value <= 0.0 {
        return Ok(Measurement::Unavailable(
            "targetValue must be positive".to_owned(),
        ));
    }
    let desired = scaling::desired_replicas(
        current,
        sample.value,
        spec.target_value,
        spec.min_replicas(),
        spec.max_replicas,
    );
    let scaled = desired != current;
    if scaled {
        targets
            .as_type::<IgnoredAny>()
            .patch(
                &target.name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": desired}})),
            )
            .context(format_args!("scaling {} {}", target.kind, target.name))?;
        let event = Event {
            type_: EventType::Normal,
            reason: "Scaled".to_owned(),
            note: Some(format!(
                "scaled {} {} from {current} to {desired} replicas (metric value {})",
                target.kind, target.name, sample.text
            )),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        recorder().publish_or_log(&event, &scaler.object_ref(&()));
    }
    Ok(Measurement::Available {
        sample,
        current,
        desired,
        scaled,
    })
}

/// Writes the status the measurement calls for, when it differs from the current one.
fn write_status(scaler: &MetricScaler, namespace: &str, measurement: &Measurement) -> Result<()> {
    let current = scaler.status.as_ref();
    let generation = scaler.metadata.generation;
    let mut known_conditions = current
        .and_then(|status| status.conditions.clone())
        .unwrap_or_default();
    let desired = match measurement {
        Measurement::Available {
            sample,
            current: current_replicas,
            desired,
            scaled,
        } => {
            let ready = new_condition(
                "Ready",
                true,
                "MetricAvailable",
                format!("metric value {}", sample.text),
            );
            conditions::set(&mut known_conditions, ready);
            MetricScalerStatus {
                observed_generation: generation,
                last_value: Some(sample.text.clone()),
                current_replicas: Some(*current_replicas),
                desired_replicas: Some(*desired),
                last_scale_time: if *scaled {
                    Some(wasm_operator_sdk::time::now())
                } else {
                    current.and_then(|status| status.last_scale_time.clone())
                },
                last_error: None,
                conditions: Some(
                    conditions::find(&known_conditions, "Ready")
                        .cloned()
                        .into_iter()
                        .collect(),
                ),
            }
        }
        Measurement::Unavailable(last_error) => {
            let not_ready = new_condition("Ready", false, "MetricUnavailable", last_error.clone());
            conditions::set(&mut known_conditions, not_ready);
            MetricScalerStatus {
                observed_generation: generation,
                last_error: Some(last_error.clone()),
                conditions: Some(
                    conditions::find(&known_conditions, "Ready")
                        .cloned()
                        .into_iter()
                        .collect(),
                ),
                ..current.cloned().unwrap_or_default()
            }
        }
    };
    if status::differs(current, &desired) {
        Api::<MetricScaler>::namespaced(namespace)
            .as_type::<IgnoredAny>()
            .patch_status(
                &scaler.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": desired })),
            )
            .context("writing the status")?;
    }
    Ok(())
}

fn recorder() -> Recorder {
    Recorder::new(Reporter {
        controller: format!("demo.wasm-operator.dev/{OPERATOR}"),
        instance: Some(OPERATOR.to_owned()),
    })
}

wasm_operator_sdk::operator!(init, reconcile);
