//! Transcripts: what an operator asked the host for during a run, and what it was answered.
//!
//! A [`Recorder`] is the manager's host-call observer and reconcile observer at once. The host
//! reports an operator's calls in order and then the reconcile they belonged to, so calls are
//! grouped by reconcile and only reconciles of the run's own namespaces are kept (the examples
//! watch every namespace; objects other tests left behind must not leak in).
//!
//! [`Recorder::transcript`] turns the record into [`Entry`]s: each Kubernetes or HTTP request,
//! normalized, with a summary of its answer (kind, name and generation of a returned object; the
//! whole error; status and body of an HTTP response), and each reconcile's outcome. How often the
//! host reconciles depends on timing (a Deployment's status changing, a requeue timer, a retry, a
//! cache a few milliseconds behind another watch); what the operator does does not. So two things
//! are left out, and everything else is compared:
//!
//! - an entry equal to an earlier one;
//! - a whole reconcile that only repeated requests of earlier reconciles and was told each time
//!   either the same thing or that the effect is already there ([`already_done`]: a delete or
//!   read answered NotFound, a create AlreadyExists, an update or patch NotFound or Conflict).
//!   That is a level-triggered controller acting once more on a view that was a moment old; it
//!   changes nothing on the API server, so its calls, logs and outcome are not behaviour. A
//!   reconcile that makes one new request, or a repeat with any other answer, is kept whole.
//!
//! The step each entry first appeared in is kept for reports, outside the compared text.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};
use wasm_operator::operator::{
    HostCall, HostCallObserver, HostCallRecord, ReconcileObserver, ReconcileOutcome,
    ReconcileRecord,
};
use wasm_operator_abi::{HostResponse, KubeRequest};

use crate::normalize::Normalizer;

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Index of the step it first appeared in.
    pub step: usize,
    /// The normalized entry, as compared and stored.
    pub value: Value,
}

/// One thing an operator did during a reconcile.
#[derive(Debug, Clone)]
pub enum Call {
    /// A Kubernetes or HTTP request and its answer.
    Host(HostCall, HostResponse),
    /// A record the operator logged (`{"log": level, "message", "fields"}`).
    Log(Value),
}

/// A reconcile as recorded, with the calls it made.
#[derive(Debug, Clone)]
pub struct RecordedReconcile {
    pub namespace: Option<String>,
    pub name: String,
    /// The step in progress when it finished.
    pub step: usize,
    pub started_at: Instant,
    pub calls: Vec<(usize, Call)>,
    pub outcome: ReconcileOutcome,
}

#[derive(Default)]
struct Record {
    step: usize,
    recording: bool,
    /// Calls of the reconcile in progress.
    pending: Vec<(usize, Call)>,
    reconciles: Vec<RecordedReconcile>,
}

/// Collects host calls and reconciles of one run. Cheap to clone.
#[derive(Clone, Default)]
pub struct Recorder {
    record: Arc<Mutex<Record>>,
}

impl Recorder {
    pub fn new() -> Self {
        let recorder = Recorder::default();
        recorder.lock().recording = true;
        recorder
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Calls from now on belong to step `step`.
    pub fn set_step(&self, step: usize) {
        self.lock().step = step;
    }

    /// Stops recording (the run's clean-up is not part of its transcript).
    pub fn stop(&self) {
        self.lock().recording = false;
    }

    pub fn host_call_observer(&self) -> HostCallObserver {
        let recorder = self.clone();
        Arc::new(move |record: &HostCallRecord| {
            let mut state = recorder.lock();
            if state.recording {
                let step = state.step;
                let call = Call::Host(record.call.clone(), record.response.clone());
                state.pending.push((step, call));
            }
        })
    }

    pub fn reconcile_observer(&self) -> ReconcileObserver {
        let recorder = self.clone();
        Arc::new(move |record: &ReconcileRecord| {
            let mut state = recorder.lock();
            let calls = std::mem::take(&mut state.pending);
            if state.recording {
                let step = state.step;
                state.reconciles.push(RecordedReconcile {
                    namespace: record.key.namespace.clone(),
                    name: record.key.name.clone(),
                    step,
                    started_at: record.started_at,
                    calls,
                    outcome: record.outcome.clone(),
                });
            }
        })
    }

    /// Records a log record of the operator (see [`crate::logs`]).
    pub fn log(&self, record: Value) {
        let mut state = self.lock();
        if state.recording {
            let step = state.step;
            state.pending.push((step, Call::Log(record)));
        }
    }

    /// Whether calls of an unfinished reconcile are waiting for its outcome.
    pub fn reconcile_in_progress(&self) -> bool {
        !self.lock().pending.is_empty()
    }

    /// Every reconcile recorded so far, in order.
    pub fn reconciles(&self) -> Vec<RecordedReconcile> {
        self.lock().reconciles.clone()
    }

    /// The transcript of reconciles in `namespaces`.
    pub fn transcript(
        &self,
        namespaces: &[String],
        normalizer: &Normalizer,
        with_messages: bool,
    ) -> Vec<Entry> {
        let mut seen_entries = HashSet::new();
        let mut earlier_requests = HashSet::new();
        let mut entries = Vec::new();
        for reconcile in self.reconciles() {
            let ours = reconcile
                .namespace
                .as_ref()
                .is_some_and(|namespace| namespaces.contains(namespace));
            if !ours {
                continue;
            }
            let calls: Vec<NormalizedCall> = reconcile
                .calls
                .iter()
                .map(|(step, call)| NormalizedCall::new(*step, call, normalizer))
                .collect();
            if is_idempotent_repeat(&calls, &seen_entries, &earlier_requests) {
                continue;
            }
            let key = format!(
                "{}/{}",
                reconcile.namespace.as_deref().unwrap_or_default(),
                reconcile.name
            );
            let outcome = outcome_entry(&key, &reconcile.outcome, with_messages);
            let outcome = (reconcile.step, normalizer.value(&outcome));
            let reconcile_entries = calls.iter().map(|call| (call.step, call.entry.clone()));
            for (step, value) in reconcile_entries.chain([outcome]) {
                if seen_entries.insert(value.to_string()) {
                    entries.push(Entry { step, value });
                }
            }
            earlier_requests.extend(calls.into_iter().filter_map(|call| call.request));
        }
        entries
    }
}

/// A recorded call in the form it is compared in.
struct NormalizedCall {
    step: usize,
    /// The transcript entry: request and answer summary, or a log record.
    entry: Value,
    /// For host calls: the normalized request alone, and whether the answer says its effect is
    /// already in place (see [`already_done`]).
    request: Option<String>,
    already_done: bool,
}

impl NormalizedCall {
    fn new(step: usize, call: &Call, normalizer: &Normalizer) -> Self {
        match call {
            Call::Host(call, response) => NormalizedCall {
                step,
                entry: normalizer.value(&call_entry(call, response)),
                request: Some(normalizer.value(&request_entry(call)).to_string()),
                already_done: already_done(call, response),
            },
            Call::Log(record) => NormalizedCall {
                step,
                entry: normalizer.value(record),
                request: None,
                already_done: false,
            },
        }
    }
}

/// Whether a reconcile made at least one host call and every host call either matched an earlier
/// entry exactly or repeated an earlier reconcile's request and was told it is already done. Its
/// log records do not decide: they report what the repeat ran into.
fn is_idempotent_repeat(
    calls: &[NormalizedCall],
    seen_entries: &HashSet<String>,
    earlier_requests: &HashSet<String>,
) -> bool {
    let mut host_calls = calls
        .iter()
        .filter(|call| call.request.is_some())
        .peekable();
    host_calls.peek().is_some()
        && host_calls.all(|call| {
            seen_entries.contains(&call.entry.to_string())
                || (call.already_done
                    && call
                        .request
                        .as_ref()
                        .is_some_and(|request| earlier_requests.contains(request)))
        })
}

/// Whether the API server's answer says the request's effect is already in place: the object a
/// delete, read, update or patch names is gone (NotFound), a create's name is taken
/// (AlreadyExists), an update or patch carried a resourceVersion an earlier write replaced
/// (Conflict).
fn already_done(call: &HostCall, response: &HostResponse) -> bool {
    let (HostCall::Kube(request), HostResponse::Error(error)) = (call, response) else {
        return false;
    };
    match request {
        KubeRequest::Create { .. } => error.is_already_exists(),
        KubeRequest::Update { .. } | KubeRequest::Patch { .. } => {
            error.is_not_found() || error.is_conflict()
        }
        KubeRequest::Delete { .. } | KubeRequest::Get { .. } => error.is_not_found(),
        KubeRequest::List { .. } => false,
    }
}

/// `{"kube": request}` or `{"http": request}`, without its `null` members.
fn request_entry(call: &HostCall) -> Value {
    let (label, request) = match call {
        HostCall::Kube(request) => ("kube", serde_json::to_value(request)),
        HostCall::Http(request) => ("http", serde_json::to_value(request)),
    };
    let request = request.unwrap_or_else(|e| json!(format!("unserialisable request: {e}")));
    json!({ label: strip_nulls(request) })
}

fn call_entry(call: &HostCall, response: &HostResponse) -> Value {
    let answer = match response {
        HostResponse::Ok(value) => match call {
            HostCall::Kube(_) => json!({"ok": kube_summary(value)}),
            HostCall::Http(_) => json!({"ok": http_summary(value)}),
        },
        HostResponse::Error(error) => json!({"error": error}),
    };
    let mut entry = request_entry(call);
    if let (Value::Object(entry), Value::Object(answer)) = (&mut entry, answer) {
        entry.extend(answer);
    }
    entry
}

/// What an answer from the API server says, without what the server alone decides (status
/// written by controllers, managed fields): kind, namespace, name, generation, deletion.
fn kube_summary(value: &Value) -> Value {
    if let Some(items) = value.get("items").and_then(Value::as_array) {
        let names: Vec<Value> = items.iter().map(object_summary).collect();
        return json!({"kind": value["kind"], "items": names});
    }
    if value["kind"] == "Status" {
        return json!({"kind": "Status", "status": value["status"], "code": value["code"]});
    }
    object_summary(value)
}

fn object_summary(object: &Value) -> Value {
    let metadata = &object["metadata"];
    let mut summary = json!({"name": metadata["name"]});
    for field in ["namespace", "generateName", "generation", "finalizers"] {
        if let Some(value) = metadata.get(field) {
            summary[field] = value.clone();
        }
    }
    if metadata.get("deletionTimestamp").is_some() {
        summary["deletionTimestamp"] = json!("<set>");
    }
    json!({"kind": object["kind"], "metadata": summary})
}

/// An HTTP response without headers the server sets by itself (date, length).
fn http_summary(value: &Value) -> Value {
    json!({
        "status": value["status"],
        "contentType": value["headers"]["content-type"],
        "body": value["body"],
    })
}

fn outcome_entry(key: &str, outcome: &ReconcileOutcome, with_messages: bool) -> Value {
    match outcome {
        ReconcileOutcome::Succeeded { result } => {
            let mut entry = json!({"reconciled": key, "outcome": "succeeded"});
            if let Some(after) = result.requeue_after_ms {
                entry["requeueAfterMs"] = json!(after);
            }
            entry
        }
        ReconcileOutcome::Failed { reason, message } => {
            let mut entry = json!({"reconciled": key, "outcome": "failed", "reason": reason});
            if with_messages {
                entry["message"] = json!(message);
            }
            entry
        }
    }
}

/// Drops the request's `null` members: an absent optional field and a null one mean the same
/// (docs/abi.md). Only at the top: inside a body (a merge patch) `null` means "remove".
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    }
}

/// The transcript as stored in snapshots: a YAML list.
pub fn render(entries: &[Entry]) -> String {
    let values: Vec<&Value> = entries.iter().map(|entry| &entry.value).collect();
    serde_saphyr::to_string(&values).unwrap_or_else(|e| format!("unrenderable transcript: {e}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wasm_operator::operator::ReconcileRecord;
    use wasm_operator::scheduler::mapping::ObjectKey;
    use wasm_operator_abi::{HostError, KubeStatus};

    use super::*;

    fn get(namespace: &str, name: &str) -> HostCallRecord {
        HostCallRecord {
            operator: "op".into(),
            call: HostCall::Kube(KubeRequest::Get {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: Some(namespace.into()),
                name: name.into(),
                cached: false,
            }),
            response: HostResponse::Ok(json!({"kind": "ConfigMap", "metadata": {"name": name}})),
        }
    }

    fn reconciled(namespace: &str) -> ReconcileRecord {
        ReconcileRecord {
            operator: "op".into(),
            key: ObjectKey {
                namespace: Some(namespace.into()),
                name: "x".into(),
            },
            request: serde_json::from_value(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "namespace": namespace, "name": "x",
                       "object": {"metadata": {"name": "x"}}}),
            )
            .unwrap(),
            started_at: Instant::now(),
            duration: Duration::ZERO,
            outcome: ReconcileOutcome::Succeeded {
                result: Default::default(),
            },
            timer_deadline: None,
            swapped_in_first: false,
        }
    }

    #[test]
    fn repeats_and_other_namespaces_are_left_out_and_steps_are_kept() {
        let recorder = Recorder::new();
        let (calls, reconciles) = (recorder.host_call_observer(), recorder.reconcile_observer());
        recorder.set_step(0);
        calls(&get("mine", "a"));
        reconciles(&reconciled("mine"));
        calls(&get("theirs", "a"));
        reconciles(&reconciled("theirs"));
        recorder.set_step(1);
        calls(&get("mine", "a")); // the same again: timing, not behaviour
        calls(&get("mine", "b"));
        reconciles(&reconciled("mine"));

        let entries = recorder.transcript(&["mine".into()], &Normalizer::default(), false);
        let names: Vec<(usize, Value)> = entries
            .iter()
            .map(|e| (e.step, e.value["kube"]["name"].clone()))
            .collect();
        assert_eq!(
            names,
            vec![
                (0, json!("a")),
                (0, Value::Null), // the outcome
                (1, json!("b")),
            ]
        );
        assert!(!recorder.reconcile_in_progress());
    }

    fn delete(name: &str, response: HostResponse) -> HostCallRecord {
        HostCallRecord {
            operator: "op".into(),
            call: HostCall::Kube(KubeRequest::Delete {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: Some("registry".into()),
                name: name.into(),
                propagation_policy: None,
            }),
            response,
        }
    }

    fn status_error(code: i32, reason: &str) -> HostResponse {
        let status: KubeStatus =
            serde_json::from_value(json!({"code": code, "reason": reason})).expect("a Status");
        HostResponse::Error(HostError::api_status(status))
    }

    fn deleted() -> HostResponse {
        HostResponse::Ok(json!({"kind": "Status", "status": "Success"}))
    }

    fn failed(namespace: &str) -> ReconcileRecord {
        ReconcileRecord {
            outcome: ReconcileOutcome::Failed {
                reason: "guest",
                message: "conflict".into(),
            },
            ..reconciled(namespace)
        }
    }

    /// The transcript's entries as `verb name -> answer` lines, and outcomes.
    fn lines(recorder: &Recorder) -> Vec<String> {
        recorder
            .transcript(&["mine".into()], &Normalizer::default(), false)
            .iter()
            .map(|entry| match entry.value.get("kube") {
                Some(request) => format!(
                    "{} {} -> {}",
                    request["verb"].as_str().unwrap_or_default(),
                    request["name"].as_str().unwrap_or_default(),
                    entry.value["error"]["status"]["reason"]
                        .as_str()
                        .unwrap_or("ok")
                ),
                None => format!("outcome {}", entry.value["outcome"].as_str().unwrap_or("?")),
            })
            .collect()
    }

    #[test]
    fn a_reconcile_that_only_finds_its_work_already_done_is_left_out() {
        // A finalizer ran, then ran once more on a view a moment old: its delete finds the
        // registry entry gone and its update loses to the first one's.
        let recorder = Recorder::new();
        let (calls, reconciles) = (recorder.host_call_observer(), recorder.reconcile_observer());
        calls(&get("mine", "app"));
        calls(&delete("entry", deleted()));
        reconciles(&reconciled("mine"));
        calls(&get("mine", "app"));
        calls(&delete("entry", status_error(404, "NotFound")));
        reconciles(&failed("mine"));
        // Elsewhere, the same repeat once the first delete is known: it stays out too.
        calls(&delete("entry", status_error(404, "NotFound")));
        reconciles(&reconciled("mine"));

        assert_eq!(
            lines(&recorder),
            ["get app -> ok", "delete entry -> ok", "outcome succeeded"]
        );
    }

    #[test]
    fn a_repeat_with_anything_new_is_kept_whole() {
        let recorder = Recorder::new();
        let (calls, reconciles) = (recorder.host_call_observer(), recorder.reconcile_observer());
        // A 404 on a request nobody made before is behaviour (a registry entry deleted by hand).
        calls(&delete("first", status_error(404, "NotFound")));
        reconciles(&reconciled("mine"));
        // A repeated request with a new request beside it.
        calls(&delete("first", status_error(404, "NotFound")));
        calls(&delete("second", deleted()));
        reconciles(&failed("mine"));
        // A repeated request answered with something other than "already done".
        calls(&delete("second", status_error(500, "InternalError")));
        reconciles(&reconciled("mine"));

        assert_eq!(
            lines(&recorder),
            [
                "delete first -> NotFound",
                "outcome succeeded",
                "delete second -> ok",
                "outcome failed",
                "delete second -> InternalError",
            ]
        );
    }

    #[test]
    fn already_done_depends_on_the_verb() {
        let create = HostCall::Kube(KubeRequest::Create {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: None,
            body: json!({}),
        });
        let delete = delete("x", deleted()).call;
        assert!(already_done(&create, &status_error(409, "AlreadyExists")));
        assert!(!already_done(&create, &status_error(409, "Conflict")));
        assert!(!already_done(&create, &status_error(404, "NotFound")));
        assert!(already_done(&delete, &status_error(404, "NotFound")));
        assert!(!already_done(&delete, &status_error(409, "Conflict")));
        assert!(!already_done(&delete, &deleted()));
    }
}
