//! The Counter custom resource (crds/counter.yaml): any spec at all (changing it is what bumps
//! the generation), and a status listing what the operator remembers.

use kube::CustomResource;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `Counter.spec`: free-form, kept as it is.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "demo.wasm-operator.dev",
    version = "v1alpha1",
    kind = "Counter",
    namespaced,
    status = "CounterStatus",
    // The schema lives in crds/counter.yaml.
    schema = "disabled"
)]
pub struct CounterSpec {
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// `Counter.status`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CounterStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generations: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_seen: Option<u64>,
    /// 16 lower-case hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}
