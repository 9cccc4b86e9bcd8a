//! Carrying out one [`Step`] of a run. Waiting steps poll their condition until the run's
//! deadline and, when it passes, say what they saw last.

use std::time::{Duration, Instant};

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::Value;
use wasm_operator::operator::{OperatorManager, OperatorState, ReconcileOutcome};

use super::cluster::{self, api_for};
use super::Run;
use crate::scenario::{fnv1a_hex, ObjectRef, Step};
use crate::transcript::Recorder;

/// How often waiting steps look again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

impl Run<'_> {
    /// Carries out `step`; `Err` says what went wrong. `previous_started` is when the step
    /// before it began (a `reconcile` step counts reconciles from then on, so that it sees the
    /// one its previous step caused however fast it came).
    pub(super) async fn step(&self, step: &Step, previous_started: Instant) -> anyhow::Result<()> {
        match step {
            Step::Apply(object) => cluster::apply(self.client, object, &self.namespace).await,
            Step::Patch {
                target,
                subresource,
                body,
            } => {
                let (api, _) = self.api(target).await?;
                let params = PatchParams::default();
                let patch = Patch::Merge(body);
                match subresource {
                    Some(sub) => {
                        api.patch_subresource(sub, &target.name, &params, &patch)
                            .await?
                    }
                    None => api.patch(&target.name, &params, &patch).await?,
                };
                Ok(())
            }
            Step::Delete(target) => {
                let (api, _) = self.api(target).await?;
                api.delete(&target.name, &DeleteParams::default()).await?;
                Ok(())
            }
            Step::CreateNamespace(role) => {
                let name = self.namespace_of(role)?;
                cluster::create_namespace(self.client, &name).await
            }
            Step::Wait {
                target,
                fields,
                absent,
            } => self.wait_for_object(target, fields, *absent).await,
            Step::Event {
                regarding,
                reason,
                note,
            } => {
                self.wait_for_event(regarding, reason, note.as_deref())
                    .await
            }
            Step::Reconcile { name, failed } => {
                self.wait_for_reconcile(name, failed.as_deref(), previous_started)
                    .await
            }
            Step::Serve(serve) => {
                self.http.serve(serve);
                Ok(())
            }
            Step::Swap {} => swap(self.manager, &self.operator_name).await,
        }
    }

    async fn api(
        &self,
        target: &ObjectRef,
    ) -> anyhow::Result<(Api<kube::api::DynamicObject>, bool)> {
        let namespace = target.namespace.as_deref().unwrap_or(&self.namespace);
        api_for(self.client, &target.api_version, &target.kind, namespace).await
    }

    async fn wait_for_object(
        &self,
        target: &ObjectRef,
        fields: &std::collections::BTreeMap<String, Value>,
        absent: bool,
    ) -> anyhow::Result<()> {
        let (api, _) = self.api(target).await?;
        let expected: Vec<(String, Value)> = fields
            .iter()
            .map(|(pointer, value)| (pointer.clone(), expected_value(value)))
            .collect();
        let deadline = Instant::now() + self.wait_timeout;
        loop {
            let last_seen = match (api.get_opt(&target.name).await, absent) {
                (Err(e), _) => format!("error reading it: {e}"),
                (Ok(None), true) => return Ok(()),
                (Ok(None), false) => "it does not exist".into(),
                (Ok(Some(_)), true) => "it still exists".into(),
                (Ok(Some(object)), false) => {
                    let json = serde_json::to_value(&object)?;
                    let wrong: Vec<String> = expected
                        .iter()
                        .filter(|(pointer, value)| json.pointer(pointer) != Some(value))
                        .map(|(pointer, value)| {
                            let actual = json.pointer(pointer).cloned().unwrap_or(Value::Null);
                            format!("{pointer} is {actual}, expected {value}")
                        })
                        .collect();
                    if wrong.is_empty() {
                        return Ok(());
                    }
                    wrong.join("; ")
                }
            };
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "{} {} did not get there within {:?}: {last_seen}",
                    target.kind,
                    target.name,
                    self.wait_timeout
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn wait_for_event(
        &self,
        regarding: &str,
        reason: &str,
        note: Option<&str>,
    ) -> anyhow::Result<()> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let deadline = Instant::now() + self.wait_timeout;
        loop {
            let items = events
                .list(&ListParams::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default();
            let found = items.iter().any(|event| {
                event.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(regarding)
                    && event.reason.as_deref() == Some(reason)
                    && note.is_none_or(|note| event.note.as_deref() == Some(note))
            });
            if found {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let seen: Vec<String> = items
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {:?}",
                            e.reason.as_deref().unwrap_or("?"),
                            e.note.as_deref().unwrap_or("")
                        )
                    })
                    .collect();
                anyhow::bail!(
                    "no {reason} Event about {regarding} (note {note:?}) within {:?}; events in the namespace: {seen:?}",
                    self.wait_timeout
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn wait_for_reconcile(
        &self,
        name: &str,
        failed: Option<&str>,
        since: Instant,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.wait_timeout;
        loop {
            let found = self.recorder.reconciles().iter().any(|reconcile| {
                reconcile.namespace.as_deref() == Some(self.namespace.as_str())
                    && reconcile.name == name
                    && reconcile.started_at >= since
                    && match (failed, &reconcile.outcome) {
                        (None, _) => true,
                        (Some(expected), ReconcileOutcome::Failed { reason, .. }) => {
                            *reason == expected
                        }
                        (Some(_), ReconcileOutcome::Succeeded { .. }) => false,
                    }
            });
            if found {
                return Ok(());
            }
            if Instant::now() >= deadline {
                anyhow::bail!("no such reconcile of {name} within {:?}", self.wait_timeout);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// The expected value of a `wait` field: `{fnv1a: text}` is the hash of the text.
fn expected_value(value: &Value) -> Value {
    match value.get("fnv1a").and_then(Value::as_str) {
        Some(text) if value.as_object().is_some_and(|m| m.len() == 1) => fnv1a_hex(text).into(),
        _ => value.clone(),
    }
}

/// Waits until the operator is not in a reconcile (nor reloading its instance).
pub(super) async fn settle(
    manager: &OperatorManager,
    operator: &str,
    recorder: &Recorder,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let state = manager.state(operator);
        let busy = matches!(state, Some(OperatorState::Running | OperatorState::Loading));
        if !busy && !recorder.reconcile_in_progress() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "the operator was still busy ({state:?}) {timeout:?} after the last step"
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Forces a swap-out (it returns once the snapshot is written) and a swap-in. The operator may
/// be swapped in earlier by an event that arrives meanwhile; that is a swap-in too.
pub(super) async fn swap(manager: &OperatorManager, operator: &str) -> anyhow::Result<()> {
    manager
        .swap_out(operator)
        .await
        .map_err(|e| anyhow::anyhow!("swap-out failed: {e}"))?;
    manager
        .swap_in(operator)
        .await
        .map_err(|e| anyhow::anyhow!("swap-in failed: {e}"))
}
