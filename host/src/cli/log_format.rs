//! The host's log lines: how `--log-format text` and `--log-format json` turn tracing events into
//! lines on standard error.
//!
//! Text is tracing-subscriber's own format, coloured only when standard error is a terminal, so
//! a log written to a file or collected from a pod has no escape codes in it. JSON is one object
//! per line, `{"timestamp", "level", "target", "fields": {"message", ...}}` as tracing-subscriber
//! writes it, with one difference: an operator's own log fields, which cross the ABI as one JSON
//! object and travel through tracing as its text (`fields`), are written back as that object, so
//! a log backend sees `fields.fields.replicas` as the number 3, not a string holding JSON.
use std::fmt;
use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::process::LogFormat;
use crate::operator::services::OPERATOR_LOG_TARGET;

/// The field holding an operator's log fields as JSON text.
const OPERATOR_FIELDS: &str = "fields";

/// Installs the process-wide subscriber writing `format` to standard error, filtered by
/// `RUST_LOG` (default `info`). Keeps an already installed subscriber (tests install their own).
pub(crate) fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.event_format(JsonLines).try_init(),
    };
}

/// One JSON object per event (see the module documentation).
pub(crate) struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut fields = FieldsAsJson::default();
        event.record(&mut fields);
        let mut fields = fields.0;
        if metadata.target() == OPERATOR_LOG_TARGET {
            if let Some(Value::String(text)) = fields.get(OPERATOR_FIELDS) {
                if let Ok(object @ Value::Object(_)) = serde_json::from_str(text) {
                    fields.insert(OPERATOR_FIELDS.to_owned(), object);
                }
            }
        }
        let line = serde_json::json!({
            "timestamp": timestamp,
            "level": metadata.level().as_str(),
            "fields": fields,
            "target": metadata.target(),
        });
        writeln!(writer, "{line}")
    }
}

/// An event's fields with their types: numbers and booleans stay JSON numbers and booleans.
#[derive(Default)]
struct FieldsAsJson(Map<String, Value>);

impl Visit for FieldsAsJson {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects what the formatter writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn json_lines_of(emit: impl FnOnce()) -> Vec<Value> {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn an_operators_fields_are_a_json_object_with_their_types() {
        let lines = json_lines_of(|| {
            let fields = r#"{"replicas":3,"ready":true,"image":"nginx:1.27"}"#;
            tracing::info!(target: "operator", operator = "webapp", fields, "scaled");
        });
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], "operator");
        assert_eq!(
            line["fields"],
            serde_json::json!({"message": "scaled", "operator": "webapp",
                               "fields": {"replicas": 3, "ready": true, "image": "nginx:1.27"}})
        );
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }

    #[test]
    fn host_fields_keep_their_types_and_text_stays_text() {
        let lines = json_lines_of(|| {
            let fields = "not an operator's";
            tracing::warn!(retry_in_ms = 250u64, fields, "reconcile failed");
        });
        assert_eq!(
            lines[0]["fields"],
            serde_json::json!({"message": "reconcile failed", "retry_in_ms": 250,
                               "fields": "not an operator's"})
        );
    }
}
