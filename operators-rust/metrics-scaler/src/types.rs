//! The MetricScaler custom resource (crds/metricscaler.yaml). The status keeps every field
//! optional so a status read from the API server and written back is unchanged, except
//! `lastError`, which is always written: `null` is how a merge patch clears it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use serde::{Deserialize, Serialize};
use wasm_operator_sdk::conditions::Condition;

/// `MetricScaler.spec`. The API server fills in the defaults of the CRD.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "demo.wasm-operator.dev",
    version = "v1alpha1",
    kind = "MetricScaler",
    namespaced,
    status = "MetricScalerStatus",
    // The schema lives in crds/metricscaler.yaml.
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct MetricScalerSpec {
    pub target_ref: TargetRef,
    /// Base URL of a Prometheus-compatible query API.
    pub metrics_url: String,
    pub query: String,
    pub target_value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    pub max_replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<i32>,
}

impl MetricScalerSpec {
    pub fn min_replicas(&self) -> i32 {
        self.min_replicas.unwrap_or(1)
    }

    pub fn interval_seconds(&self) -> i32 {
        self.interval_seconds.unwrap_or(30)
    }
}

/// The object whose `spec.replicas` is scaled.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    #[serde(default = "default_target_api_version")]
    pub api_version: String,
    #[serde(default = "default_target_kind")]
    pub kind: String,
    pub name: String,
}

fn default_target_api_version() -> String {
    "apps/v1".to_owned()
}

fn default_target_kind() -> String {
    "Deployment".to_owned()
}

/// `MetricScaler.status`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricScalerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The metric exactly as the metrics API wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<Time>,
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}
