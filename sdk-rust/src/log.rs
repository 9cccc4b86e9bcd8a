//! Logging through the host (capability `log`): records go to the host's log, tagged with the
//! operator's name and filtered by the host's level. A module that never logs does not import
//! `log` and needs no grant for it.
//!
//! ```ignore
//! log::info("reconciled");
//! let log = Logger::new().with("namespace", ns).with("name", name);
//! log.info(format!("scaled to {replicas}"));
//! ```

use std::collections::BTreeMap;

use serde_json::Value;
use wasm_operator_abi::limits::MAX_LOG_RECORD_BYTES;
pub use wasm_operator_abi::LogLevel;
use wasm_operator_abi::LogRecord;

/// How much of the message and of each field an over-long record keeps. The host cuts a line's
/// message and its fields to 4 KiB each when it prints them, so nothing readable is lost.
const MAX_PART_BYTES: usize = 4 << 10;

/// A logger carrying structured fields added to every record it emits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Logger {
    fields: BTreeMap<String, Value>,
}

impl Logger {
    pub fn new() -> Self {
        Logger::default()
    }

    /// Adds a field (a string, number, bool or any JSON value).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_owned(), value.into());
        self
    }

    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        let record = LogRecord {
            level,
            message: message.into(),
            fields: self.fields.clone(),
        };
        if let Ok(mut bytes) = serde_json::to_vec(&record) {
            if bytes.len() > MAX_LOG_RECORD_BYTES {
                bytes = shrink(record);
            }
            crate::host::log(&bytes);
        }
    }

    pub fn error(&self, message: impl Into<String>) {
        self.log(LogLevel::Error, message);
    }

    pub fn warn(&self, message: impl Into<String>) {
        self.log(LogLevel::Warn, message);
    }

    pub fn info(&self, message: impl Into<String>) {
        self.log(LogLevel::Info, message);
    }

    pub fn debug(&self, message: impl Into<String>) {
        self.log(LogLevel::Debug, message);
    }

    pub fn trace(&self, message: impl Into<String>) {
        self.log(LogLevel::Trace, message);
    }
}

/// Encodes a record longer than the ABI allows (which the host would take as a violation and
/// discard the instance for): the message and every field, as its JSON text, cut to
/// [`MAX_PART_BYTES`]; if that is still too long (thousands of fields), with one field saying
/// the fields were dropped instead.
fn shrink(mut record: LogRecord) -> Vec<u8> {
    record.message = cut(&record.message, MAX_PART_BYTES);
    for value in record.fields.values_mut() {
        let text = match &mut *value {
            Value::String(text) => std::mem::take(text),
            other => other.to_string(),
        };
        *value = Value::String(cut(&text, MAX_PART_BYTES));
    }
    match serde_json::to_vec(&record) {
        Ok(bytes) if bytes.len() <= MAX_LOG_RECORD_BYTES => bytes,
        _ => {
            record.fields = BTreeMap::from([(
                "fieldsDropped".to_owned(),
                Value::from("the record's fields were longer than the ABI allows"),
            )]);
            serde_json::to_vec(&record).unwrap_or_default()
        }
    }
}

/// `text` cut to at most `max` bytes on a character boundary, the cut marked with `…`.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

pub fn error(message: impl Into<String>) {
    Logger::new().error(message);
}

pub fn warn(message: impl Into<String>) {
    Logger::new().warn(message);
}

pub fn info(message: impl Into<String>) {
    Logger::new().info(message);
}

pub fn debug(message: impl Into<String>) {
    Logger::new().debug(message);
}

pub fn trace(message: impl Into<String>) {
    Logger::new().trace(message);
}
