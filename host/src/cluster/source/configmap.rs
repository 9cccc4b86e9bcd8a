//! A module stored under a key of a ConfigMap in the WasmOperator's namespace (binaryData,
//! or data for text), read with the host's identity; its resourceVersion is the source version.
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use super::{too_large, SourceError, SourceFetcher};
use crate::cluster::resource::ConfigMapSource;

impl SourceFetcher {
    pub(super) async fn config_map(
        &self,
        namespace: &str,
        source: &ConfigMapSource,
    ) -> Result<(Vec<u8>, String), SourceError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let config_map = match api.get_opt(&source.name).await {
            Ok(Some(config_map)) => config_map,
            Ok(None) => {
                return Err(SourceError::unavailable(format!(
                    "ConfigMap {namespace}/{} does not exist: create it with the module under binaryData key {:?}",
                    source.name, source.key
                )))
            }
            Err(error) => {
                return Err(SourceError::unavailable(format!(
                    "cannot read ConfigMap {namespace}/{}: {error}",
                    source.name
                )))
            }
        };
        let version = config_map
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default();
        let binary = config_map
            .binary_data
            .and_then(|mut data| data.remove(&source.key))
            .map(|bytes| bytes.0);
        let text = || {
            config_map
                .data
                .and_then(|mut data| data.remove(&source.key))
                .map(String::into_bytes)
        };
        match binary.or_else(text) {
            // The API server bounds ConfigMaps at about 1 MiB; the check keeps every source
            // under the same admin limit should that change.
            Some(wasm) if wasm.len() > self.limits.max_module_bytes => Err(too_large(
                &format!("the module in ConfigMap {namespace}/{}", source.name),
                self.limits.max_module_bytes,
            )),
            Some(wasm) => Ok((wasm, version)),
            None => Err(SourceError::unavailable(format!(
                "ConfigMap {namespace}/{} has no key {:?} in binaryData: \
                 kubectl create configmap {} --from-file={}=<module.wasm>",
                source.name, source.key, source.name, source.key
            ))),
        }
    }
}
