//! Fetching an operator's module from where its WasmOperator says it is: a ConfigMap key
//! ([`configmap`]), an HTTP(S) URL pinned by SHA-256 ([`http`]), an OCI artifact
//! (distribution API over plain HTTP(S), [`oci`]), or a file under the host's modules
//! directory ([`path`]). This module owns what they share: the fetcher, the dispatch on the
//! source set, the size cap and the digest checks. Every failure says what to fix.
mod configmap;
mod http;
mod oci;
mod path;

use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::resource::ModuleSource;

/// Modules above this size are refused (real operator modules are a few MiB).
pub const MAX_MODULE_BYTES: usize = 256 << 20;

/// A module as fetched, before validation.
pub struct FetchedModule {
    pub wasm: Vec<u8>,
    /// `sha256:<hex>` of `wasm`.
    pub digest: String,
    /// Changes when the source changes without the WasmOperator changing (the ConfigMap's
    /// resourceVersion); `None` for sources pinned by the spec itself.
    pub source_version: Option<String>,
}

/// Why a module could not be fetched: `reason` is a CamelCase condition/event reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub reason: &'static str,
    pub message: String,
}

impl SourceError {
    fn new(reason: &'static str, message: impl Into<String>) -> Self {
        SourceError {
            reason,
            message: message.into(),
        }
    }

    fn unavailable(message: impl Into<String>) -> Self {
        SourceError::new("SourceUnavailable", message)
    }
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Fetches modules with the host's identity (ConfigMaps) and its own HTTP client.
#[derive(Clone)]
pub struct SourceFetcher {
    client: kube::Client,
    http: reqwest::Client,
    modules_dir: Option<PathBuf>,
}

impl SourceFetcher {
    pub fn new(client: kube::Client, modules_dir: Option<PathBuf>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|error| {
                format!("cannot build the HTTP client for module downloads: {error}")
            })?;
        Ok(SourceFetcher {
            client,
            http,
            modules_dir,
        })
    }

    /// The module of a WasmOperator in `namespace`.
    pub async fn fetch(
        &self,
        namespace: &str,
        source: &ModuleSource,
    ) -> Result<FetchedModule, SourceError> {
        let given = [
            source.config_map.is_some(),
            source.http.is_some(),
            source.oci.is_some(),
            source.path.is_some(),
        ]
        .iter()
        .filter(|set| **set)
        .count();
        if given != 1 {
            return Err(SourceError::new(
                "InvalidSource",
                "spec.module must set exactly one of configMap, http, oci or path",
            ));
        }
        let (wasm, source_version) = if let Some(config_map) = &source.config_map {
            let (wasm, version) = self.config_map(namespace, config_map).await?;
            (wasm, Some(version))
        } else if let Some(http) = &source.http {
            (self.http(http).await?, None)
        } else if let Some(oci) = &source.oci {
            (self.oci(oci).await?, None)
        } else if let Some(path) = &source.path {
            (self.path(path)?, None)
        } else {
            unreachable!("exactly one source is set")
        };
        Ok(FetchedModule {
            digest: sha256_digest(&wasm),
            wasm,
            source_version,
        })
    }
}

fn too_large(shown: &str) -> SourceError {
    SourceError::unavailable(format!(
        "{shown} is larger than {} MiB, which no operator module should be",
        MAX_MODULE_BYTES >> 20
    ))
}

/// Lower-case hex of a `sha256` field, accepting a `sha256:` prefix.
fn normalise_sha256(text: &str) -> Option<String> {
    let hex = text.trim().strip_prefix("sha256:").unwrap_or(text.trim());
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

fn check_digest(bytes: &[u8], expected_hex: &str, shown: &str) -> Result<(), SourceError> {
    let actual = hex::encode(Sha256::digest(bytes));
    if actual.eq_ignore_ascii_case(expected_hex) {
        Ok(())
    } else {
        Err(SourceError::new(
            "DigestMismatch",
            format!(
                "{shown} has sha256 {actual}, not the expected {expected_hex}: \
                 the content changed, or the expected digest is out of date"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_fields_accept_a_prefix_and_any_case() {
        let hex = "AB".repeat(32);
        assert_eq!(
            normalise_sha256(&format!("sha256:{hex}")),
            Some("ab".repeat(32))
        );
        assert_eq!(normalise_sha256("abc"), None);
    }
}
