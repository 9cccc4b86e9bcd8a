//! The WebApp custom resource (crds/webapp.yaml): what users write and the status the operator
//! reports. Optional fields are `Option` and left out when unset, so an object read and written
//! back is what the API server sent.

use kube::CustomResource;
use serde::{Deserialize, Serialize};
use wasm_operator_sdk::conditions::Condition;

/// `WebApp.spec`. The API server fills in the defaults (replicas 1, port 8080).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "demo.wasm-operator.dev",
    version = "v1alpha1",
    kind = "WebApp",
    namespaced,
    status = "WebAppStatus",
    // The schema lives in crds/webapp.yaml.
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct WebAppSpec {
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

impl WebAppSpec {
    pub fn replicas(&self) -> i32 {
        self.replicas.unwrap_or(1)
    }

    pub fn port(&self) -> i32 {
        self.port.unwrap_or(8080)
    }
}

/// `WebApp.status`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebAppStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}
