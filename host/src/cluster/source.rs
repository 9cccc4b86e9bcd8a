//! Fetching an operator's module from where its WasmOperator says it is: a ConfigMap key, an
//! HTTP(S) URL pinned by SHA-256, an OCI artifact (distribution API over plain HTTP(S)), or a
//! file under the host's modules directory. Every failure says what to fix.
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::resource::{ConfigMapSource, HttpSource, ModuleSource, OciSource};

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

    async fn config_map(
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
            Some(wasm) => Ok((wasm, version)),
            None => Err(SourceError::unavailable(format!(
                "ConfigMap {namespace}/{} has no key {:?} in binaryData: \
                 kubectl create configmap {} --from-file={}=<module.wasm>",
                source.name, source.key, source.name, source.key
            ))),
        }
    }

    async fn http(&self, source: &HttpSource) -> Result<Vec<u8>, SourceError> {
        let expected = normalise_sha256(&source.sha256).ok_or_else(|| {
            SourceError::new(
                "InvalidSource",
                format!(
                    "spec.module.http.sha256 {:?} is not a SHA-256 (64 hex digits): \
                     set it to the output of `sha256sum <module.wasm>`",
                    source.sha256
                ),
            )
        })?;
        let url = reqwest::Url::parse(&source.url).map_err(|error| {
            SourceError::new(
                "InvalidSource",
                format!(
                    "spec.module.http.url {:?} is not a URL: {error}",
                    source.url
                ),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SourceError::new(
                "InvalidSource",
                format!(
                    "spec.module.http.url {:?} must be http or https",
                    source.url
                ),
            ));
        }
        let wasm = self
            .download(self.http.get(url.clone()), url.as_str())
            .await?;
        check_digest(&wasm, &expected, url.as_str())?;
        Ok(wasm)
    }

    async fn oci(&self, source: &OciSource) -> Result<Vec<u8>, SourceError> {
        let reference = OciReference::parse(&source.reference)?;
        let base = format!(
            "{}://{}/v2/{}",
            if source.insecure { "http" } else { "https" },
            reference.registry,
            reference.repository
        );
        let manifest_url = format!("{base}/manifests/{}", reference.reference);
        let token = self.registry_token(&manifest_url).await?;
        let request = |url: &str| {
            let mut request = self.http.get(url).header(
                reqwest::header::ACCEPT,
                "application/vnd.oci.image.manifest.v1+json, \
                 application/vnd.docker.distribution.manifest.v2+json",
            );
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            request
        };
        let manifest_bytes = self.download(request(&manifest_url), &manifest_url).await?;
        if let Some(pinned) = reference.reference.strip_prefix("sha256:") {
            check_digest(&manifest_bytes, pinned, &manifest_url)?;
        }
        let manifest: OciManifest = serde_json::from_slice(&manifest_bytes).map_err(|error| {
            SourceError::unavailable(format!(
                "{manifest_url} is not an OCI image manifest ({error}); \
                 push the module with `oras push <ref> module.wasm:application/wasm`"
            ))
        })?;
        let layer = pick_wasm_layer(&manifest.layers).ok_or_else(|| {
            SourceError::unavailable(format!(
                "{} has {} layers and none of media type application/wasm: \
                 push the module as a single layer or with media type application/wasm",
                source.reference,
                manifest.layers.len()
            ))
        })?;
        let expected = layer.digest.strip_prefix("sha256:").ok_or_else(|| {
            SourceError::unavailable(format!(
                "layer digest {:?} of {} is not sha256",
                layer.digest, source.reference
            ))
        })?;
        let blob_url = format!("{base}/blobs/{}", layer.digest);
        let wasm = self.download(request(&blob_url), &blob_url).await?;
        check_digest(&wasm, expected, &blob_url)?;
        Ok(wasm)
    }

    /// An anonymous bearer token when the registry asks for one (the distribution token flow);
    /// `None` when it answers without authentication.
    async fn registry_token(&self, manifest_url: &str) -> Result<Option<String>, SourceError> {
        let response = self.http.head(manifest_url).send().await.map_err(|error| {
            SourceError::unavailable(format!("cannot reach {manifest_url}: {error}"))
        })?;
        if response.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(None);
        }
        let challenge = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let params = parse_bearer_challenge(&challenge).ok_or_else(|| {
            SourceError::unavailable(format!(
                "{manifest_url} needs authentication ({challenge:?}); only registries allowing \
                 anonymous pulls are supported: use an http source or a ConfigMap instead"
            ))
        })?;
        let realm = params
            .iter()
            .find(|(key, _)| key == "realm")
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        let query: Vec<(String, String)> = params
            .into_iter()
            .filter(|(key, _)| key != "realm")
            .collect();
        #[derive(Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let token: Token = self
            .http
            .get(&realm)
            .query(&query)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| {
                SourceError::unavailable(format!("registry token from {realm}: {error}"))
            })?
            .json()
            .await
            .map_err(|error| {
                SourceError::unavailable(format!("registry token from {realm}: {error}"))
            })?;
        Ok(token.token.or(token.access_token))
    }

    fn path(&self, relative: &str) -> Result<Vec<u8>, SourceError> {
        let Some(root) = &self.modules_dir else {
            return Err(SourceError::new(
                "InvalidSource",
                "spec.module.path needs the host started with --modules-dir; use a ConfigMap, http or oci source",
            ));
        };
        let path = Path::new(relative);
        // A tenant must not read arbitrary files of the host: only plain paths below the root.
        if path.is_absolute()
            || path
                .components()
                .any(|component| !matches!(component, Component::Normal(_)))
        {
            return Err(SourceError::new(
                "InvalidSource",
                format!(
                    "spec.module.path {relative:?} must be relative to the host's modules directory, without `..`"
                ),
            ));
        }
        let full = root.join(path);
        let size = std::fs::metadata(&full)
            .map_err(|error| {
                SourceError::unavailable(format!("cannot read {}: {error}", full.display()))
            })?
            .len();
        if size > MAX_MODULE_BYTES as u64 {
            return Err(too_large(&full.display().to_string()));
        }
        std::fs::read(&full).map_err(|error| {
            SourceError::unavailable(format!("cannot read {}: {error}", full.display()))
        })
    }

    async fn download(
        &self,
        request: reqwest::RequestBuilder,
        shown: &str,
    ) -> Result<Vec<u8>, SourceError> {
        let mut response = request.send().await.map_err(|error| {
            SourceError::unavailable(format!("cannot download {shown}: {error}"))
        })?;
        if !response.status().is_success() {
            return Err(SourceError::unavailable(format!(
                "downloading {shown} answered {}",
                response.status()
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| SourceError::unavailable(format!("downloading {shown}: {error}")))?
        {
            if body.len() + chunk.len() > MAX_MODULE_BYTES {
                return Err(too_large(shown));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
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

/// `registry[:port]/repository[:tag|@sha256:<hex>]`.
#[derive(Debug, PartialEq, Eq)]
struct OciReference {
    registry: String,
    repository: String,
    /// A tag or a `sha256:<hex>` digest.
    reference: String,
}

impl OciReference {
    fn parse(text: &str) -> Result<Self, SourceError> {
        let invalid = |why: &str| {
            SourceError::new(
                "InvalidSource",
                format!(
                    "spec.module.oci.reference {text:?} {why}: write registry/repository:tag or registry/repository@sha256:<hex>"
                ),
            )
        };
        let (registry, rest) = text
            .split_once('/')
            .ok_or_else(|| invalid("has no registry"))?;
        if registry.is_empty()
            || !(registry.contains('.') || registry.contains(':') || registry == "localhost")
        {
            return Err(invalid("does not start with a registry host"));
        }
        let (repository, reference) = if let Some((repository, digest)) = rest.split_once('@') {
            if normalise_sha256(digest).is_none() || !digest.starts_with("sha256:") {
                return Err(invalid("has a digest that is not sha256:<64 hex digits>"));
            }
            (repository, digest.to_string())
        } else {
            match rest.rsplit_once(':') {
                Some((repository, tag)) if !tag.contains('/') => (repository, tag.to_string()),
                _ => (rest, "latest".to_string()),
            }
        };
        let valid_repository = !repository.is_empty()
            && repository
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c));
        if !valid_repository || reference.is_empty() {
            return Err(invalid("has an invalid repository or tag"));
        }
        Ok(OciReference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            reference,
        })
    }
}

#[derive(Deserialize)]
struct OciManifest {
    #[serde(default)]
    layers: Vec<OciDescriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
}

fn pick_wasm_layer(layers: &[OciDescriptor]) -> Option<&OciDescriptor> {
    layers
        .iter()
        .find(|layer| layer.media_type.contains("wasm"))
        .or(match layers {
            [only] => Some(only),
            _ => None,
        })
}

/// The parameters of `Bearer realm="...",service="...",scope="..."`.
fn parse_bearer_challenge(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header.trim().strip_prefix("Bearer ")?;
    let mut params = Vec::new();
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        params.push((
            key.trim().to_string(),
            value.trim().trim_matches('"').to_string(),
        ));
    }
    params
        .iter()
        .any(|(key, _)| key == "realm")
        .then_some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_references_parse_with_tags_digests_and_ports() {
        let parsed = OciReference::parse("127.0.0.1:5000/ops/webapp:v1").unwrap();
        assert_eq!(
            parsed,
            OciReference {
                registry: "127.0.0.1:5000".into(),
                repository: "ops/webapp".into(),
                reference: "v1".into()
            }
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        let parsed = OciReference::parse(&format!("ghcr.io/x/y@{digest}")).unwrap();
        assert_eq!(parsed.reference, digest);
        assert_eq!(
            OciReference::parse("ghcr.io/x/y").unwrap().reference,
            "latest"
        );
        for bad in [
            "webapp:v1",
            "ghcr.io/",
            "ghcr.io/x@sha256:12",
            "ghcr.io/X/Y:v1",
        ] {
            let error = OciReference::parse(bad).unwrap_err();
            assert_eq!(error.reason, "InvalidSource", "{bad}");
        }
    }

    #[test]
    fn sha256_fields_accept_a_prefix_and_any_case() {
        let hex = "AB".repeat(32);
        assert_eq!(
            normalise_sha256(&format!("sha256:{hex}")),
            Some("ab".repeat(32))
        );
        assert_eq!(normalise_sha256("abc"), None);
    }

    #[test]
    fn bearer_challenges_give_realm_service_and_scope() {
        let params = parse_bearer_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:x:pull""#,
        )
        .unwrap();
        assert_eq!(
            params[0],
            ("realm".into(), "https://auth.example/token".into())
        );
        assert_eq!(params.len(), 3);
        assert!(parse_bearer_challenge("Basic realm=x").is_none());
    }

    #[test]
    fn a_path_source_stays_inside_the_modules_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.wasm"), b"\0asm").unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let fetcher = SourceFetcher {
            client: fake_client(),
            http: reqwest::Client::new(),
            modules_dir: Some(dir.path().to_path_buf()),
        };
        assert_eq!(fetcher.path("m.wasm").unwrap(), b"\0asm");
        for escape in ["../m.wasm", "/etc/passwd", "./m.wasm"] {
            assert_eq!(
                fetcher.path(escape).unwrap_err().reason,
                "InvalidSource",
                "{escape}"
            );
        }
    }

    fn fake_client() -> kube::Client {
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }
}
