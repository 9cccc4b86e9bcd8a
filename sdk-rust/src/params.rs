//! Options of the Kubernetes client's calls, named as in kube-rs (`PatchParams::apply("me").force()`,
//! `Patch::Merge(..)`, `ListParams::default().labels("app=web")`) but holding only what ABI v1
//! can carry, so no option is silently dropped.

use serde::Serialize;
use serde_json::Value;
use wasm_operator_abi::{PatchType, PropagationPolicy};

/// A patch body and its format.
#[derive(Debug, Clone)]
pub enum Patch<T: Serialize> {
    /// Server-side apply: `T` is the intended object, holding only the fields this field manager
    /// owns. Use with [`PatchParams::apply`].
    Apply(T),
    /// JSON merge patch (RFC 7386): `null` removes a field.
    Merge(T),
    /// Strategic merge patch (built-in kinds only).
    Strategic(T),
    /// JSON patch (RFC 6902): the array of operations.
    Json(Value),
}

impl<T: Serialize> Patch<T> {
    pub(crate) fn patch_type(&self) -> PatchType {
        match self {
            Patch::Apply(_) => PatchType::Apply,
            Patch::Merge(_) => PatchType::Merge,
            Patch::Strategic(_) => PatchType::Strategic,
            Patch::Json(_) => PatchType::Json,
        }
    }

    pub(crate) fn body(&self) -> serde_json::Result<Value> {
        match self {
            Patch::Apply(body) | Patch::Merge(body) | Patch::Strategic(body) => {
                serde_json::to_value(body)
            }
            Patch::Json(operations) => Ok(operations.clone()),
        }
    }
}

/// Options of a patch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchParams {
    /// Who owns the fields this patch sets. Server-side apply needs one; when it is absent the
    /// host uses the operator's name (as the host knows it).
    pub field_manager: Option<String>,
    /// Server-side apply only: take ownership of fields another manager owns.
    pub force: bool,
}

impl PatchParams {
    /// Options for a server-side apply by `field_manager`.
    pub fn apply(field_manager: impl Into<String>) -> Self {
        PatchParams {
            field_manager: Some(field_manager.into()),
            force: false,
        }
    }

    /// Takes ownership of conflicting fields (apply only).
    pub fn force(mut self) -> Self {
        self.force = true;
        self
    }
}

/// Options of a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    /// Kubernetes label selector syntax: `app=web,tier!=db`.
    pub label_selector: Option<String>,
    /// Kubernetes field selector syntax: `metadata.name=web`.
    pub field_selector: Option<String>,
    /// Let the host answer from its shared cache when this operator watches the kind.
    pub cached: bool,
}

impl ListParams {
    pub fn labels(mut self, selector: impl Into<String>) -> Self {
        self.label_selector = Some(selector.into());
        self
    }

    pub fn fields(mut self, selector: impl Into<String>) -> Self {
        self.field_selector = Some(selector.into());
        self
    }

    /// Answer from the host's cache when the operator watches this kind (no API server round trip).
    pub fn cached(mut self) -> Self {
        self.cached = true;
        self
    }
}

/// Options of a delete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteParams {
    /// What happens to dependents; absent = the kind's default.
    pub propagation_policy: Option<PropagationPolicy>,
}

impl DeleteParams {
    /// Delete now; the garbage collector removes dependents afterwards.
    pub fn background() -> Self {
        DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
        }
    }

    /// Delete dependents first, then the object.
    pub fn foreground() -> Self {
        DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
        }
    }

    /// Leave dependents, removing their owner references.
    pub fn orphan() -> Self {
        DeleteParams {
            propagation_policy: Some(PropagationPolicy::Orphan),
        }
    }
}
