//! The `WasmOperator` custom resource (group `wasm-operator.dev`, version `v1alpha1`,
//! namespaced): what the host reads from its spec and writes to its status. The CRD itself, with
//! its schema and printer columns, is `crds/wasmoperator.yaml`.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An operator the host runs: where its module comes from and how it runs.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "wasm-operator.dev",
    version = "v1alpha1",
    kind = "WasmOperator",
    namespaced,
    status = "WasmOperatorStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct WasmOperatorSpec {
    pub module: ModuleSource,
    /// The ServiceAccount (in the WasmOperator's namespace) whose RBAC judges the operator's
    /// Kubernetes requests; default `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// URL prefixes the operator may reach with outbound HTTP; empty = none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_http: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapPolicy>,
    /// Handed to the operator's init as `config` (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
}

/// Exactly one of the fields is set (the CRD schema enforces it).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ModuleSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci: Option<OciSource>,
    /// A file under the host's modules directory (`--modules-dir`), relative to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A key of a ConfigMap in the WasmOperator's namespace (`binaryData`, or `data` for text).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct ConfigMapSource {
    pub name: String,
    pub key: String,
}

/// An HTTP(S) URL; the module is used only if its SHA-256 matches.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct HttpSource {
    pub url: String,
    /// Hex SHA-256 of the module, with or without a `sha256:` prefix.
    pub sha256: String,
}

/// An OCI artifact (`registry/repository:tag` or `registry/repository@sha256:...`) whose
/// layer of media type `application/wasm` (or its only layer) is the module.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OciSource {
    pub reference: String,
    /// Talk plain HTTP to the registry (a registry on loopback or inside the cluster).
    #[serde(default)]
    pub insecure: bool,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Linear-memory cap (`64Mi`); default: the host's `--memory-limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Longest single call into the operator (`5s`); default: the host's `--call-deadline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_deadline: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SwapPolicy {
    /// Swap the operator out to disk after this long without work (`30s`); default: the
    /// host's `--swap-after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_idle: Option<String>,
}

/// What the host observed. `phase` is one of Pending, Running, Idle, Swapped, Failed.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WasmOperatorStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `sha256:<hex>` of the module running now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_digest: Option<String>,
    /// What the module imports from the host (`kubernetes`, `http`, `log`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciles: Option<ReconcileCounts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The host instance (leader identity) running the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Reconciles since the module now running was loaded.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct ReconcileCounts {
    pub succeeded: u64,
    pub failed: u64,
}
