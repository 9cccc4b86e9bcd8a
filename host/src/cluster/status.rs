//! The WasmOperator status the host writes (phase, conditions, digest, capabilities, counts,
//! last error) and the Events it records, computed from what the controller and the operator
//! manager observed. Status is written only when it changed, with a merge patch of the status
//! subresource.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Resource, ResourceExt};
use serde_json::Value;

use super::counts::OperatorCounts;
use super::resource::{ReconcileCounts, WasmOperator, WasmOperatorStatus};
use crate::operator::OperatorState;

/// Event notes are capped at 1024 bytes by the API server.
pub const MAX_NOTE_BYTES: usize = 1024;

/// Longest `status.lastError` and condition message written. Guest-controlled text (a
/// reconcile error, an init failure) ends up there; the API server caps condition messages at
/// 32768 bytes and the whole object at about 1.5 MB, and a status is for people to read.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// `text` cut to at most `max` bytes on a UTF-8 character boundary, ending in `…` when cut.
pub fn truncate_utf8(text: &str, max: usize) -> String {
    const MARK: &str = "…";
    if text.len() <= max {
        return text.to_string();
    }
    if max < MARK.len() {
        return String::new();
    }
    format!(
        "{}{MARK}",
        crate::text::prefix_within(text, max - MARK.len())
    )
}

/// A reason the desired module is not the one running: `reason` is CamelCase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

/// The module the manager runs for a WasmOperator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningModule {
    pub digest: String,
    pub capabilities: Vec<String>,
    /// What the host changed from the spec (limits clamped to the host's maxima), shown in the
    /// ModuleAccepted condition.
    pub notes: Vec<String>,
}

/// Everything the status is made of.
pub struct Observation<'a> {
    pub generation: Option<i64>,
    pub running: Option<&'a RunningModule>,
    /// The manager's state of the operator, if it is loaded.
    pub state: Option<OperatorState>,
    /// Why the latest spec is not running, if it is not.
    pub problem: Option<&'a Problem>,
    pub counts: OperatorCounts,
    pub host: &'a str,
}

/// `Pending`, `Running`, `Idle`, `Swapped` or `Failed`.
pub fn phase(observation: &Observation) -> &'static str {
    match &observation.state {
        Some(OperatorState::Loading) => "Pending",
        Some(OperatorState::Running) => "Running",
        Some(OperatorState::Idle) => "Idle",
        Some(OperatorState::Swapped) => "Swapped",
        Some(OperatorState::Failed { .. }) => "Failed",
        None if observation.problem.is_some() => "Failed",
        None => "Pending",
    }
}

/// The status for `observation`; conditions keep their `lastTransitionTime` from `previous`
/// while their status does not change.
pub fn status(
    observation: &Observation,
    previous: Option<&WasmOperatorStatus>,
) -> WasmOperatorStatus {
    let phase = phase(observation);
    let failed_reason = match &observation.state {
        Some(OperatorState::Failed { reason }) => Some(reason.clone()),
        _ => None,
    };
    let ready = match phase {
        "Running" | "Idle" | "Swapped" => (
            true,
            "Loaded",
            format!("the operator is {}", phase.to_lowercase()),
        ),
        "Failed" => (
            false,
            observation
                .problem
                .map_or("Failed", |problem| problem.reason),
            failed_reason
                .clone()
                .or_else(|| observation.problem.map(|problem| problem.message.clone()))
                .unwrap_or_default(),
        ),
        _ => (
            false,
            "Loading",
            "the module is being fetched, compiled and initialised".into(),
        ),
    };
    let accepted = match (observation.problem, observation.running) {
        (Some(problem), _) => (false, problem.reason, problem.message.clone()),
        (None, Some(running)) if running.notes.is_empty() => (
            true,
            "Accepted",
            format!("module {} is running", running.digest),
        ),
        (None, Some(running)) => (
            true,
            "LimitsClamped",
            format!(
                "module {} is running; {}",
                running.digest,
                running.notes.join("; ")
            ),
        ),
        (None, None) => (
            false,
            "Pending",
            "the module has not been loaded yet".into(),
        ),
    };
    let previous_conditions = previous
        .map(|status| status.conditions.as_slice())
        .unwrap_or_default();
    let conditions = vec![
        condition("Ready", ready, observation.generation, previous_conditions),
        condition(
            "ModuleAccepted",
            accepted,
            observation.generation,
            previous_conditions,
        ),
    ];
    let last_error = observation
        .problem
        .map(|problem| problem.message.clone())
        .or(failed_reason)
        .or_else(|| observation.counts.last_error.clone());
    WasmOperatorStatus {
        phase: Some(phase.into()),
        observed_generation: observation.generation,
        module_digest: observation.running.map(|running| running.digest.clone()),
        capabilities: observation
            .running
            .map(|running| running.capabilities.clone())
            .unwrap_or_default(),
        reconciles: observation.running.map(|_| ReconcileCounts {
            succeeded: observation.counts.succeeded,
            failed: observation.counts.failed,
        }),
        last_error: last_error.map(|text| truncate_utf8(&text, MAX_MESSAGE_BYTES)),
        host: Some(observation.host.to_string()),
        conditions,
    }
}

fn condition(
    type_: &str,
    (status, reason, message): (bool, &str, String),
    generation: Option<i64>,
    previous: &[Condition],
) -> Condition {
    let status = if status { "True" } else { "False" };
    let last_transition_time = previous
        .iter()
        .find(|old| old.type_ == type_ && old.status == status)
        .map(|old| old.last_transition_time.clone())
        .unwrap_or_else(|| Time(Timestamp::now()));
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: truncate_utf8(&message, MAX_MESSAGE_BYTES),
        observed_generation: generation,
        last_transition_time,
    }
}

/// Whether two statuses differ in more than their conditions' transition times.
pub fn differs(a: &WasmOperatorStatus, b: &WasmOperatorStatus) -> bool {
    let strip = |status: &WasmOperatorStatus| {
        let mut status = status.clone();
        for condition in &mut status.conditions {
            condition.last_transition_time = Time(Timestamp::UNIX_EPOCH);
        }
        status
    };
    strip(a) != strip(b)
}

/// Writes statuses and Events with the host's identity.
#[derive(Clone)]
pub struct StatusWriter {
    client: kube::Client,
    recorder: Recorder,
}

impl StatusWriter {
    pub fn new(client: kube::Client, identity: &str) -> Self {
        let reporter = Reporter {
            controller: "wasm-operator.dev/host".into(),
            instance: Some(identity.to_string()),
        };
        StatusWriter {
            recorder: Recorder::new(client.clone(), reporter),
            client,
        }
    }

    /// Merge-patches the status; fields absent from `status` are cleared.
    pub async fn write(
        &self,
        object: &WasmOperator,
        status: &WasmOperatorStatus,
    ) -> Result<(), kube::Error> {
        let mut value = serde_json::to_value(status).unwrap_or(Value::Null);
        if let Value::Object(fields) = &mut value {
            for key in [
                "phase",
                "observedGeneration",
                "moduleDigest",
                "capabilities",
                "reconciles",
                "lastError",
                "host",
                "conditions",
            ] {
                fields.entry(key).or_insert(Value::Null);
            }
        }
        let api: Api<WasmOperator> =
            Api::namespaced(self.client.clone(), &object.namespace().unwrap_or_default());
        api.patch_status(
            &object.name_any(),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": value })),
        )
        .await
        .map(|_| ())
    }

    /// Records an Event about `object`; failures are logged, never fatal.
    pub async fn event(&self, object: &WasmOperator, warning: bool, reason: &str, note: &str) {
        let note = truncate_utf8(note, MAX_NOTE_BYTES);
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::warn!(wasmoperator = %object.name_any(), reason, "cannot record an Event: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters_within_the_limit() {
        // 3-byte and 4-byte characters straddling every possible cut.
        for text in [
            "€".repeat(2000),
            "😀".repeat(1000),
            format!("a{}", "€".repeat(500)),
        ] {
            for max in [MAX_NOTE_BYTES, MAX_MESSAGE_BYTES, 1023, 1025, 5, 4, 3, 2, 0] {
                let cut = truncate_utf8(&text, max);
                assert!(cut.len() <= max, "{} > {max}", cut.len());
                if max >= 3 && text.len() > max {
                    assert!(cut.ends_with('…'));
                }
                assert!(text.starts_with(cut.trim_end_matches('…')));
            }
        }
        assert_eq!(truncate_utf8("short", 1024), "short");
        assert_eq!(truncate_utf8("€€€", 9), "€€€");
    }

    #[test]
    fn guest_text_in_the_status_is_bounded() {
        let huge = "é".repeat(100_000);
        let observation = Observation {
            generation: Some(1),
            running: None,
            state: Some(OperatorState::Failed {
                reason: huge.clone(),
            }),
            problem: None,
            counts: OperatorCounts {
                last_error: Some(huge),
                ..Default::default()
            },
            host: "h",
        };
        let status = status(&observation, None);
        assert!(status.last_error.unwrap().len() <= MAX_MESSAGE_BYTES);
        for condition in status.conditions {
            assert!(condition.message.len() <= MAX_MESSAGE_BYTES);
        }
    }
}
