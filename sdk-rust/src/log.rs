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
pub use wasm_operator_abi::LogLevel;
use wasm_operator_abi::LogRecord;

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
        if let Ok(bytes) = serde_json::to_vec(&record) {
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
