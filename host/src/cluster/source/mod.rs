//! Fetching an operator's module from where its WasmOperator says it is: a ConfigMap key
//! ([`configmap`]), an HTTP(S) URL pinned by SHA-256 ([`http`]), an OCI artifact
//! (distribution API over plain HTTP(S), [`oci`]), or a file under the host's modules
//! directory ([`path`]). This module owns what they share: the fetcher, the dispatch on the
//! source set, the size cap and the digest checks. Every failure says what to fix.
//!
//! Tenants choose the URLs, so every fetch is bounded ([`SourceLimits`]): the module by an
//! admin-set size (default 64 MiB, well inside the 512 Mi pod with the compiled module and
//! transient copies), OCI tokens and manifests by [`MAX_METADATA_BYTES`], all read chunk by
//! chunk so an oversized body is refused before it is held; and the whole fetch by a timeout,
//! so a URL that accepts and never answers holds its fetch for at most that long. File sources
//! are read off the async runtime.
//!
//! Module bytes fetched and not yet loaded are bounded by [`ModuleSlots`]: a module-sized body
//! takes a slot once it starts to arrive (a source that never answers holds none) and keeps it,
//! in its [`FetchedModule`], until the controller is done with the module.
mod configmap;
mod http;
mod oci;
mod path;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::resource::ModuleSource;
use crate::egress::{AddressPolicy, Network};

/// Default for [`SourceLimits::max_module_bytes`] (real operator modules are a few MiB).
pub const DEFAULT_MAX_MODULE_BYTES: usize = 64 << 20;

/// Default for [`SourceLimits::fetch_timeout`].
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// OCI registry tokens and manifests above this size are refused (real ones are a few KiB).
pub const MAX_METADATA_BYTES: usize = 1 << 20;

/// The cluster admin's bounds on module fetches (`--max-module-size`, `--module-fetch-timeout`,
/// and `--egress-allow-network`, shared with operators' outbound HTTP).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLimits {
    /// Largest module accepted from any source, in bytes.
    pub max_module_bytes: usize,
    /// Longest one WasmOperator's fetch may take, all requests included.
    pub fetch_timeout: Duration,
    /// Non-public networks module URLs may reach; every other non-public address is refused,
    /// as for operators' HTTP, since the tenant chooses the URL and the host fetches it.
    pub allowed_networks: Vec<Network>,
}

impl Default for SourceLimits {
    fn default() -> Self {
        SourceLimits {
            max_module_bytes: DEFAULT_MAX_MODULE_BYTES,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            allowed_networks: Vec::new(),
        }
    }
}

/// The most module bytes fetched and not yet loaded at once (each body up to
/// `--max-module-size`), well inside the 512 Mi pod together with the module being compiled and
/// its transient copies.
pub const MODULE_MEMORY_BUDGET_BYTES: usize = 128 << 20;

/// However small modules are, no more module bodies than this are held at once.
pub const MAX_MODULE_SLOTS: usize = 16;

/// However large modules may be, at least this many module bodies may be held at once.
pub const MIN_MODULE_SLOTS: usize = 2;

/// How many module bodies may be held at once for modules of at most `max_module_bytes`.
pub fn module_slots(max_module_bytes: usize) -> usize {
    (MODULE_MEMORY_BUDGET_BYTES / max_module_bytes.max(1)).clamp(MIN_MODULE_SLOTS, MAX_MODULE_SLOTS)
}

/// The slots module bodies take while they are downloaded, read or waiting to be loaded.
#[derive(Clone)]
struct ModuleSlots(Arc<Semaphore>);

/// A module body's slot, given back when the module is dropped.
type Slot = Option<OwnedSemaphorePermit>;

impl ModuleSlots {
    fn new(max_module_bytes: usize) -> Self {
        ModuleSlots(Arc::new(Semaphore::new(module_slots(max_module_bytes))))
    }

    /// Waits for a free slot (the semaphore is never closed, so this is always `Some`; the
    /// fetch timeout bounds the wait).
    async fn take(&self) -> Slot {
        self.0.clone().acquire_owned().await.ok()
    }
}

/// A module as fetched, before validation.
pub struct FetchedModule {
    pub wasm: Vec<u8>,
    /// Held while the module's bytes are: see [`ModuleSlots`].
    _slot: Slot,
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
    addresses: Arc<AddressPolicy>,
    modules_dir: Option<PathBuf>,
    limits: SourceLimits,
    slots: ModuleSlots,
}

impl SourceFetcher {
    pub fn new(
        client: kube::Client,
        modules_dir: Option<PathBuf>,
        limits: SourceLimits,
    ) -> Result<Self, String> {
        let addresses = Arc::new(AddressPolicy {
            allowed: limits.allowed_networks.clone(),
        });
        let http = crate::egress::guarded_client_builder(addresses.clone())
            .connect_timeout(limits.fetch_timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|error| {
                format!("cannot build the HTTP client for module downloads: {error}")
            })?;
        Ok(SourceFetcher {
            client,
            http,
            addresses,
            modules_dir,
            slots: ModuleSlots::new(limits.max_module_bytes),
            limits,
        })
    }

    /// The bounds this fetcher applies.
    pub fn limits(&self) -> &SourceLimits {
        &self.limits
    }

    /// The module of a WasmOperator in `namespace`, or an error once
    /// [`SourceLimits::fetch_timeout`] has passed.
    pub async fn fetch(
        &self,
        namespace: &str,
        source: &ModuleSource,
    ) -> Result<FetchedModule, SourceError> {
        let timeout = self.limits.fetch_timeout;
        match tokio::time::timeout(timeout, self.fetch_unbounded(namespace, source)).await {
            Ok(result) => result,
            Err(_) => Err(SourceError::unavailable(format!(
                "fetching the module from {} did not finish within {}: the source is slow or \
                 not answering; check it is reachable from the host, or ask the cluster admin \
                 to raise --module-fetch-timeout",
                describe(source),
                humantime(timeout)
            ))),
        }
    }

    async fn fetch_unbounded(
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
        // ConfigMaps are bounded by the API server's object size and already in its client's
        // memory: they take no slot.
        let ((wasm, slot), source_version) = if let Some(config_map) = &source.config_map {
            let (wasm, version) = self.config_map(namespace, config_map).await?;
            ((wasm, None), Some(version))
        } else if let Some(http) = &source.http {
            (self.http(http).await?, None)
        } else if let Some(oci) = &source.oci {
            (self.oci(oci).await?, None)
        } else if let Some(path) = &source.path {
            (self.path(path).await?, None)
        } else {
            unreachable!("exactly one source is set")
        };
        Ok(FetchedModule {
            digest: sha256_digest(&wasm),
            wasm,
            _slot: slot,
            source_version,
        })
    }
}

/// What a source points at, for messages.
fn describe(source: &ModuleSource) -> String {
    if let Some(config_map) = &source.config_map {
        format!("ConfigMap {}", config_map.name)
    } else if let Some(http) = &source.http {
        http.url.clone()
    } else if let Some(oci) = &source.oci {
        oci.reference.clone()
    } else if let Some(path) = &source.path {
        format!("path {path}")
    } else {
        "an unset source".to_owned()
    }
}

fn humantime(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

fn too_large(shown: &str, max_bytes: usize) -> SourceError {
    SourceError::unavailable(format!(
        "{shown} is larger than {}, the largest the host accepts; if the module really is \
         this large, ask the cluster admin to raise --max-module-size",
        size_text(max_bytes)
    ))
}

/// `64 MiB`, `1 MiB`, or bytes when not a whole number of MiB.
fn size_text(bytes: usize) -> String {
    if bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
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
mod tests;

#[cfg(test)]
mod unit_tests {
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
