//! Resolves an `apiVersion` + `kind` (what operators write) into the API resource the server
//! serves (plural name, scope) by API discovery, and caches the answer.
//!
//! Only successful lookups are cached: a kind that is unknown now (its CRD not installed yet)
//! is looked up again on the next request, so installing the CRD later just works.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Scope};

/// A kind the API server serves.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResolvedKind {
    pub resource: ApiResource,
    pub namespaced: bool,
}

impl ResolvedKind {
    /// `group/version/Kind` (`core` group written as empty), for logs and watch keys.
    pub fn gvk_string(&self) -> String {
        format!("{}/{}", self.resource.api_version, self.resource.kind)
    }
}

/// Why a kind could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("apiVersion {api_version:?} is not valid: expected \"version\" (core group) or \"group/version\"")]
    InvalidApiVersion { api_version: String },
    #[error(
        "unknown kind {kind} in apiVersion {api_version}: the API server does not serve it \
         (install its CustomResourceDefinition, or check the spelling)"
    )]
    UnknownKind { api_version: String, kind: String },
    #[error("discovery of {kind} in {api_version} failed: {source}")]
    Transport {
        api_version: String,
        kind: String,
        #[source]
        source: kube::Error,
    },
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub fn split_api_version(api_version: &str) -> Result<(&str, &str), DiscoveryError> {
    let invalid = || DiscoveryError::InvalidApiVersion {
        api_version: api_version.to_string(),
    };
    let (group, version) = match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    };
    if version.is_empty()
        || version.contains('/')
        || (api_version.contains('/') && group.is_empty())
    {
        return Err(invalid());
    }
    Ok((group, version))
}

/// The cache of resolved kinds, shared by every operator of the host.
#[derive(Clone)]
pub struct Discovery {
    client: kube::Client,
    resolved: Arc<Mutex<HashMap<(String, String), ResolvedKind>>>,
}

impl Discovery {
    /// `client` is the host's own identity: discovery documents are not operator-specific.
    pub fn new(client: kube::Client) -> Self {
        Discovery {
            client,
            resolved: Arc::default(),
        }
    }

    pub async fn resolve(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<ResolvedKind, DiscoveryError> {
        let cache_key = (api_version.to_string(), kind.to_string());
        if let Some(found) = self.lock().get(&cache_key) {
            return Ok(found.clone());
        }
        let (group, version) = split_api_version(api_version)?;
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let unknown = || DiscoveryError::UnknownKind {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        };
        let (resource, capabilities) = match kube::discovery::pinned_kind(&self.client, &gvk).await
        {
            Ok(found) => found,
            Err(kube::Error::Discovery(_)) => return Err(unknown()),
            Err(kube::Error::Api(status)) if status.code == 404 => return Err(unknown()),
            Err(source) => {
                return Err(DiscoveryError::Transport {
                    api_version: api_version.to_string(),
                    kind: kind.to_string(),
                    source,
                })
            }
        };
        let resolved = ResolvedKind {
            resource,
            namespaced: capabilities.scope == Scope::Namespaced,
        };
        self.lock().insert(cache_key, resolved.clone());
        Ok(resolved)
    }

    /// Drops a cached answer, e.g. after the API server said the resource does not exist.
    pub fn forget(&self, api_version: &str, kind: &str) {
        self.lock()
            .remove(&(api_version.to_string(), kind.to_string()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), ResolvedKind>> {
        self.resolved
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_split_into_group_and_version() {
        assert_eq!(split_api_version("v1").unwrap(), ("", "v1"));
        assert_eq!(split_api_version("apps/v1").unwrap(), ("apps", "v1"));
        assert_eq!(
            split_api_version("demo.wasm-operator.dev/v1alpha1").unwrap(),
            ("demo.wasm-operator.dev", "v1alpha1")
        );
    }

    #[test]
    fn malformed_api_versions_are_rejected_with_the_expected_form() {
        for bad in ["", "/v1", "apps/", "a/b/c"] {
            let error = split_api_version(bad).unwrap_err().to_string();
            assert!(error.contains("group/version"), "{bad:?}: {error}");
        }
    }
}
