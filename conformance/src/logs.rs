//! The operators' log records in transcripts. The host writes what a guest logs as a `tracing`
//! event with target `operator` and fields `operator` and `fields` (host/src/operator/services.rs);
//! a layer installed once per process hands each such event to the [`Recorder`] of the run whose
//! operator made it. It is emitted while the guest waits in its `log` call, so it lands in the
//! transcript in order with the operator's other calls.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};

use serde_json::{json, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

use crate::transcript::Recorder;

/// Recorders by operator name (one run per operator at a time).
fn recorders() -> &'static Mutex<HashMap<String, Recorder>> {
    static RECORDERS: OnceLock<Mutex<HashMap<String, Recorder>>> = OnceLock::new();
    RECORDERS.get_or_init(Default::default)
}

/// Sends the log records of `operator` to `recorder` until the guard is dropped.
pub fn capture(operator: &str, recorder: &Recorder) -> CaptureGuard {
    install();
    recorders()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(operator.to_owned(), recorder.clone());
    CaptureGuard {
        operator: operator.to_owned(),
    }
}

/// Stops the capture of one operator's records.
pub struct CaptureGuard {
    operator: String,
}

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        recorders()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.operator);
    }
}

/// Installs the layer as the process's global subscriber, once. When something else already
/// installed one, log records are not captured (and transcripts lack them: a test would show it).
fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let layer = OperatorLogs.with_filter(filter_fn(|metadata| metadata.target() == "operator"));
        let _ = tracing::subscriber::set_global_default(Registry::default().with(layer));
    });
}

struct OperatorLogs;

impl<S: Subscriber> Layer<S> for OperatorLogs {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let Some(operator) = fields.operator else {
            return;
        };
        let recorder = recorders()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&operator)
            .cloned();
        if let Some(recorder) = recorder {
            let structured: Value = serde_json::from_str(&fields.fields).unwrap_or(json!({}));
            let level = event.metadata().level().as_str().to_ascii_lowercase();
            recorder.log(json!({"log": level, "message": fields.message, "fields": structured}));
        }
    }
}

#[derive(Default)]
struct Fields {
    operator: Option<String>,
    message: String,
    fields: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "operator" => self.operator = Some(value.to_owned()),
            "fields" => self.fields = value.to_owned(),
            "message" => self.message = value.to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        match field.name() {
            "message" => self.message = text,
            // `%`-less strings arrive through record_str; anything else is Debug-quoted.
            "operator" => self.operator = Some(text.trim_matches('"').to_owned()),
            "fields" => self.fields = text.trim_matches('"').to_owned(),
            _ => {}
        }
    }
}
