//! The Kubernetes client: [`Api<K>`] for one kind in one namespace (or all), with kube-rs's method
//! names, and [`request`] for a raw ABI [`KubeRequest`].
//!
//! Every call is one `kube_request` to the host, which performs it with the operator's own
//! identity and blocks the guest until the API server has answered. Objects travel as JSON
//! exactly as the API server sends them and are decoded into `K`: a k8s-openapi type, a
//! `#[derive(CustomResource)]` type, or `serde_json::Value` / `DynamicObject` for kinds known
//! only at run time ([`Api::namespaced_with`]).

use std::marker::PhantomData;

use kube_core::{ObjectList, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use wasm_operator_abi::{HostResponse, KubeRequest};

use crate::error::{Error, ErrorKind, Result};
use crate::host;
use crate::params::{DeleteParams, ListParams, Patch, PatchParams};

/// Performs one Kubernetes request through the host and returns the `ok` value: the object, the
/// list, or what a delete returned.
pub fn request(request: &KubeRequest) -> Result<Value> {
    let bytes = serde_json::to_vec(request).map_err(|e| Error::decode("the KubeRequest", e))?;
    let response = host::kube_request(&bytes);
    decode_host_response(&response)
}

pub(crate) fn decode_host_response<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let response: HostResponse<T> =
        serde_json::from_slice(bytes).map_err(|e| Error::decode("the host's response", e))?;
    response
        .into_result()
        .map_err(|error| Error::from_kind(ErrorKind::Host(error)))
}

/// The objects of kind `K` in one namespace, or in all namespaces (and cluster-scoped kinds).
pub struct Api<K> {
    api_version: String,
    kind: String,
    namespace: Option<String>,
    object_type: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Api {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            object_type: PhantomData,
        }
    }
}

impl<K> std::fmt::Debug for Api<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("api_version", &self.api_version)
            .field("kind", &self.kind)
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl<K: Resource<DynamicType = ()>> Api<K> {
    /// Objects of `K` in `namespace`.
    pub fn namespaced(namespace: &str) -> Self {
        Api::namespaced_with(namespace, &K::api_version(&()), &K::kind(&()))
    }

    /// Objects of `K` in every namespace, or of a cluster-scoped `K`.
    pub fn all() -> Self {
        Api::all_with(&K::api_version(&()), &K::kind(&()))
    }
}

impl<K> Api<K> {
    /// Objects of the kind `api_version` + `kind` in `namespace`, decoded as `K` (often
    /// `serde_json::Value`).
    pub fn namespaced_with(namespace: &str, api_version: &str, kind: &str) -> Self {
        Api {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: Some(namespace.to_owned()),
            object_type: PhantomData,
        }
    }

    /// Objects of the kind `api_version` + `kind` in every namespace, or cluster-scoped ones.
    pub fn all_with(api_version: &str, kind: &str) -> Self {
        Api {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: None,
            object_type: PhantomData,
        }
    }

    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The same objects decoded as `R`: a smaller type holding only the fields the operator
    /// reads (every decoded field costs module size), `serde_json::Value`, or
    /// `serde::de::IgnoredAny` when the answer is not needed at all.
    pub fn as_type<R>(&self) -> Api<R> {
        Api {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            object_type: PhantomData,
        }
    }

    /// `<kind> <namespace>/<name>`, for error context.
    fn describe(&self, name: &str) -> String {
        match &self.namespace {
            Some(namespace) => format!("{} {namespace}/{name}", self.kind),
            None => format!("{} {name}", self.kind),
        }
    }
}

impl<K: DeserializeOwned> Api<K> {
    /// Reads `name` from the API server.
    pub fn get(&self, name: &str) -> Result<K> {
        self.get_with(name, false)
    }

    /// Reads `name` from the host's shared cache when the operator watches this kind (through
    /// its registration, with a matching namespace and selector), else from the API server.
    pub fn get_cached(&self, name: &str) -> Result<K> {
        self.get_with(name, true)
    }

    /// Like [`Api::get`], with `None` when the object does not exist.
    pub fn get_opt(&self, name: &str) -> Result<Option<K>> {
        match self.get(name) {
            Ok(object) => Ok(Some(object)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn get_with(&self, name: &str, cached: bool) -> Result<K> {
        let value = request(&KubeRequest::Get {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: name.to_owned(),
            cached,
        })?;
        decode(value, || self.describe(name))
    }

    /// Lists objects; with [`Api::all`], across namespaces.
    pub fn list(&self, params: &ListParams) -> Result<ObjectList<K>>
    where
        K: Clone,
    {
        let value = request(&KubeRequest::List {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            label_selector: params.label_selector.clone(),
            field_selector: params.field_selector.clone(),
            cached: params.cached,
        })?;
        decode(value, || format!("the list of {}", self.kind))
    }

    fn update(&self, name: &str, subresource: Option<&str>, body: Value) -> Result<K> {
        let value = request(&KubeRequest::Update {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: name.to_owned(),
            subresource: subresource.map(str::to_owned),
            body,
        })?;
        decode(value, || self.describe(name))
    }

    /// Patches `name`: server-side apply, merge, strategic merge or JSON patch.
    pub fn patch<P: Serialize>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K> {
        self.patch_subresource(name, None, params, patch)
    }

    /// Patches the status subresource of `name`.
    pub fn patch_status<P: Serialize>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K> {
        self.patch_subresource(name, Some("status"), params, patch)
    }

    fn patch_subresource<P: Serialize>(
        &self,
        name: &str,
        subresource: Option<&str>,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K> {
        let body = patch.body().map_err(|e| Error::decode("the patch", e))?;
        let value = request(&KubeRequest::Patch {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: name.to_owned(),
            subresource: subresource.map(str::to_owned),
            patch_type: patch.patch_type(),
            field_manager: params.field_manager.clone(),
            force: params.force,
            body,
        })?;
        decode(value, || self.describe(name))
    }

    /// Deletes `name`. Returns what the API server answered: the object (still there while
    /// finalizers run) or a `Status`.
    pub fn delete(&self, name: &str, params: &DeleteParams) -> Result<Value> {
        request(&KubeRequest::Delete {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: name.to_owned(),
            propagation_policy: params.propagation_policy,
        })
    }
}

impl<K: Serialize + DeserializeOwned> Api<K> {
    /// Creates `object` (its name, or `metadata.generateName`, is in the object).
    pub fn create(&self, object: &K) -> Result<K> {
        let value = request(&KubeRequest::Create {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            body: encode(object)?,
        })?;
        decode(value, || format!("the created {}", self.kind))
    }

    /// Replaces `name` with `object` (an update: `object` carries the resourceVersion it was read
    /// at, and a stale one fails with a conflict).
    pub fn replace(&self, name: &str, object: &K) -> Result<K> {
        self.update(name, None, encode(object)?)
    }

    /// Replaces the status subresource of `name` with `object`'s status.
    pub fn replace_status(&self, name: &str, object: &K) -> Result<K> {
        self.update(name, Some("status"), encode(object)?)
    }
}

fn encode<K: Serialize>(object: &K) -> Result<Value> {
    serde_json::to_value(object).map_err(|e| Error::decode("the object to send", e))
}

fn decode<T: DeserializeOwned>(value: Value, what: impl FnOnce() -> String) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::decode(what(), e))
}
