//! KubeRequest, the message a guest passes to `kube_request`: one Kubernetes API call, named by
//! apiVersion + kind (the host resolves the resource), tagged by `verb`.
//!
//! The host answers with a HostResponse whose `ok` value is the object, list or delete response
//! exactly as the API server sent it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One Kubernetes API request. `namespace` is absent (or `null`) for cluster-scoped kinds and, on
/// `list`, to list across all namespaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "verb",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum KubeRequest {
    /// Read one object.
    Get {
        api_version: String,
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        name: String,
        /// May be answered from the host's shared cache when this operator watches the kind.
        #[serde(default, skip_serializing_if = "is_false")]
        cached: bool,
    },
    /// Read many objects.
    List {
        api_version: String,
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_selector: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field_selector: Option<String>,
        /// May be answered from the host's shared cache when this operator watches the kind.
        #[serde(default, skip_serializing_if = "is_false")]
        cached: bool,
    },
    /// Create `body`.
    Create {
        api_version: String,
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        body: Value,
    },
    /// Replace the object (or its subresource) with `body`.
    Update {
        api_version: String,
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        name: String,
        /// `status` to update the status subresource.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subresource: Option<String>,
        body: Value,
    },
    /// Patch the object (or its subresource).
    Patch {
        api_version: String,
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subresource: Option<String>,
        patch_type: PatchType,
        /// The field manager; server-side apply needs one, and the host uses the operator's name
        /// when it is absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field_manager: Option<String>,
        /// Server-side apply only: take ownership of conflicting fields.
        #[serde(default, skip_serializing_if = "is_false")]
        force: bool,
        body: Value,
    },
    /// Delete one object.
    Delete {
        api_version: String,
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        propagation_policy: Option<PropagationPolicy>,
    },
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl KubeRequest {
    /// The verb as written on the wire (`get`, `list`, ...).
    pub fn verb(&self) -> &'static str {
        match self {
            KubeRequest::Get { .. } => "get",
            KubeRequest::List { .. } => "list",
            KubeRequest::Create { .. } => "create",
            KubeRequest::Update { .. } => "update",
            KubeRequest::Patch { .. } => "patch",
            KubeRequest::Delete { .. } => "delete",
        }
    }

    pub fn api_version(&self) -> &str {
        match self {
            KubeRequest::Get { api_version, .. }
            | KubeRequest::List { api_version, .. }
            | KubeRequest::Create { api_version, .. }
            | KubeRequest::Update { api_version, .. }
            | KubeRequest::Patch { api_version, .. }
            | KubeRequest::Delete { api_version, .. } => api_version,
        }
    }

    pub fn kind(&self) -> &str {
        match self {
            KubeRequest::Get { kind, .. }
            | KubeRequest::List { kind, .. }
            | KubeRequest::Create { kind, .. }
            | KubeRequest::Update { kind, .. }
            | KubeRequest::Patch { kind, .. }
            | KubeRequest::Delete { kind, .. } => kind,
        }
    }

    pub fn namespace(&self) -> Option<&str> {
        match self {
            KubeRequest::Get { namespace, .. }
            | KubeRequest::List { namespace, .. }
            | KubeRequest::Create { namespace, .. }
            | KubeRequest::Update { namespace, .. }
            | KubeRequest::Patch { namespace, .. }
            | KubeRequest::Delete { namespace, .. } => namespace.as_deref(),
        }
    }

    /// The object's name; `None` for `list` and `create` (whose name is in the body).
    pub fn name(&self) -> Option<&str> {
        match self {
            KubeRequest::Get { name, .. }
            | KubeRequest::Update { name, .. }
            | KubeRequest::Patch { name, .. }
            | KubeRequest::Delete { name, .. } => Some(name),
            KubeRequest::List { .. } | KubeRequest::Create { .. } => None,
        }
    }
}

/// The patch formats of the Kubernetes API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PatchType {
    /// JSON merge patch (RFC 7386), `application/merge-patch+json`.
    Merge,
    /// JSON patch (RFC 6902), `application/json-patch+json`; `body` is the array of operations.
    Json,
    /// Strategic merge patch, `application/strategic-merge-patch+json` (built-in kinds only).
    Strategic,
    /// Server-side apply, `application/apply-patch+yaml`; `body` is the full intended object.
    Apply,
}

impl PatchType {
    /// The Content-Type the API server expects for this patch format.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Json => "application/json-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// What happens to an object's dependents when it is deleted (Kubernetes `propagationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PropagationPolicy {
    /// Delete the object now; the garbage collector deletes dependents afterwards.
    Background,
    /// Delete dependents first, then the object.
    Foreground,
    /// Leave dependents in place, removing their ownerReferences.
    Orphan,
}
