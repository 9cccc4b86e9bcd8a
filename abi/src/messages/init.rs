//! The messages of `wasm_operator_init`: the InitInput the host hands in and the Registration the
//! guest answers with (what it reconciles, what it owns, what else it watches and how events on
//! those objects map to reconcile requests).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Input of `wasm_operator_init`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitInput {
    /// The ABI version the host runs this module with (the one its marker names).
    pub abi_version: u32,
    /// The operator's name as declared to the host; unique within the host.
    pub operator_name: String,
    /// The operator's configuration, as declared to the host. An object, `{}` when none was given.
    #[serde(default = "empty_object")]
    pub config: Value,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// Result of a successful `wasm_operator_init`: what the operator watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// The kind this operator reconciles. Reconcile requests name objects of this kind.
    #[serde(rename = "for")]
    pub for_: WatchSpec,
    /// Kinds this operator creates and owns: an event on one enqueues its controller owner.
    #[serde(default)]
    pub owns: Vec<WatchSpec>,
    /// Other kinds whose events enqueue `for` objects through a mapping.
    #[serde(default)]
    pub watches: Vec<Watch>,
}

impl Registration {
    /// A registration that reconciles `for_` and watches nothing else.
    pub fn new(for_: WatchSpec) -> Self {
        Registration {
            for_,
            owns: Vec::new(),
            watches: Vec::new(),
        }
    }
}

/// Which objects of one kind a watch covers, and which of their updates matter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchSpec {
    /// `group/version`, or `version` for the core group (e.g. `apps/v1`, `v1`).
    pub api_version: String,
    pub kind: String,
    /// Only this namespace; absent or `null` = all namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Only objects matching this label selector (Kubernetes syntax, e.g. `app=x,tier!=db`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// Update filters. Empty = every event passes; otherwise creates and deletes always pass and
    /// an update passes if any listed predicate holds.
    #[serde(default)]
    pub predicates: Vec<Predicate>,
}

impl WatchSpec {
    /// Every object of `kind` in all namespaces, every event.
    pub fn new(api_version: impl Into<String>, kind: impl Into<String>) -> Self {
        WatchSpec {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: None,
            label_selector: None,
            predicates: Vec::new(),
        }
    }
}

/// An update filter on a watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Predicate {
    /// `metadata.generation` changed (spec changes, not status-only updates).
    GenerationChanged,
    /// `metadata.labels` changed.
    LabelsChanged,
    /// `metadata.annotations` changed.
    AnnotationsChanged,
}

/// An entry of `Registration.watches`: a WatchSpec plus how its events map to `for` objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    #[serde(flatten)]
    pub spec: WatchSpec,
    pub mapping: Mapping,
}

/// How an event on a watched object becomes reconcile requests for `for` objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Mapping {
    /// Every ownerReference (controller or not) whose kind matches `for`.
    Owner,
    /// The `for` object named by a label of the watched object.
    Labels {
        /// Label whose value is the `for` object's name.
        name_label: String,
        /// Label whose value is the `for` object's namespace; absent = the watched object's own
        /// namespace.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace_label: Option<String>,
    },
    /// Every `for` object in the host's cache.
    All,
}
