//! Kubernetes Events (`events.k8s.io/v1`), the ones `kubectl events` and `kubectl describe`
//! show, with kube-rs's `Recorder` / `Reporter` / `Event` shape.
//!
//! Each [`Recorder::publish`] creates one Event object named `<object name>-<random suffix>`
//! (`metadata.generateName`); repeats are not folded into a series, so nothing about Events has to
//! survive a swap. [`Recorder::publish_or_log`] is the best-effort variant most operators want.
//! The operator needs RBAC to create `events.events.k8s.io`.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::api::Api;
use crate::error::{Error, Result, ResultExt};

/// Who reports the events: `reportingController` (e.g. `example.com/my-operator`) and
/// `reportingInstance`. The API server refuses an Event without a reporting instance, so `None`
/// stands for the operator's name (as the host gave it at init), as in the Go SDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporter {
    pub controller: String,
    pub instance: Option<String>,
}

impl Reporter {
    /// A reporter named `controller` whose instance is the operator's name.
    pub fn new(controller: impl Into<String>) -> Self {
        Reporter {
            controller: controller.into(),
            instance: None,
        }
    }

    /// `reportingInstance`: the one given, else the operator's name, else the controller.
    fn instance(&self) -> String {
        self.instance
            .clone()
            .or_else(crate::entry::operator_name)
            .unwrap_or_else(|| self.controller.clone())
    }
}

/// `Normal` for things going as planned, `Warning` for things a human may need to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One event to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub type_: EventType,
    /// Why, in UpperCamelCase: `Scaled`, `DeploymentReady`.
    pub reason: String,
    /// What happened, for people; longer than 1 kB (the API server's limit), it is cut.
    pub note: Option<String>,
    /// What the operator did or tried: `Reconcile`, `Scale`.
    pub action: String,
    /// Another object involved (`related`), if any.
    pub secondary: Option<ObjectReference>,
}

/// Publishes events as one reporter.
#[derive(Debug, Clone)]
pub struct Recorder {
    reporter: Reporter,
}

impl Recorder {
    pub fn new(reporter: Reporter) -> Self {
        Recorder { reporter }
    }

    /// Creates an Event about `regarding` (usually `object.object_ref(&())`, from
    /// `kube::Resource`). Events about cluster-scoped objects go to namespace `default`, as
    /// client-go does.
    pub fn publish(&self, event: &Event, regarding: &ObjectReference) -> Result<()> {
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        let name = regarding
            .name
            .as_deref()
            .ok_or_else(|| Error::msg("an Event needs the name of the object it is about"))?;
        let body = k8s_openapi::api::events::v1::Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{name}-")),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(crate::time::now_micro()),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(self.reporter.instance()),
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            note: event.note.as_deref().map(truncate_note),
            type_: Some(event.type_.as_str().to_owned()),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            ..Default::default()
        };
        let body = serde_json::to_value(&body)?;
        // Read back as plain JSON: nothing uses the created Event, and decoding it would only
        // add code to every module.
        Api::<serde_json::Value>::namespaced_with(&namespace, "events.k8s.io/v1", "Event")
            .create(&body)
            .map(drop)
            .context(format_args!(
                "recording event {} about {name}",
                event.reason
            ))
    }

    /// Like [`Recorder::publish`], best effort: a failure is logged as a warning
    /// (`could not record event`, with fields `reason`, `regarding` and `error`) instead of
    /// returned, so recording an Event never fails a reconcile.
    pub fn publish_or_log(&self, event: &Event, regarding: &ObjectReference) {
        if let Err(error) = self.publish(event, regarding) {
            crate::log::Logger::new()
                .with("reason", event.reason.as_str())
                .with("regarding", regarding.name.clone().unwrap_or_default())
                .with("error", error.cause_message())
                .warn("could not record event");
        }
    }
}

/// The API server refuses notes over 1 kB: keep the first 1021 bytes (whole characters) and mark
/// the cut with `...`.
fn truncate_note(note: &str) -> String {
    const MAX_NOTE_BYTES: usize = 1024;
    if note.len() <= MAX_NOTE_BYTES {
        return note.to_owned();
    }
    let mut end = MAX_NOTE_BYTES - 3;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &note[..end])
}
