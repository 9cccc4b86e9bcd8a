//! A module pulled from an OCI registry (distribution API): the reference, the manifest, the
//! wasm layer, anonymous bearer tokens, and the blob checked against its digest.
use serde::Deserialize;

use super::{check_digest, normalise_sha256, Slot, SourceError, SourceFetcher, MAX_METADATA_BYTES};
use crate::cluster::resource::OciSource;

impl SourceFetcher {
    pub(super) async fn oci(&self, source: &OciSource) -> Result<(Vec<u8>, Slot), SourceError> {
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
        let manifest_bytes = self
            .download(
                request(&manifest_url),
                &manifest_url,
                MAX_METADATA_BYTES,
                || metadata_too_large("manifest", &manifest_url),
            )
            .await?;
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
        let (wasm, slot) = self.download_module(request(&blob_url), &blob_url).await?;
        check_digest(&wasm, expected, &blob_url)?;
        Ok((wasm, slot))
    }

    /// An anonymous bearer token when the registry asks for one (the distribution token flow);
    /// `None` when it answers without authentication.
    async fn registry_token(&self, manifest_url: &str) -> Result<Option<String>, SourceError> {
        let response = self
            .send(self.http.head(manifest_url), manifest_url)
            .await?;
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
        let shown = format!("the registry token from {realm}");
        let body = self
            .download(
                self.http.get(&realm).query(&query),
                &shown,
                MAX_METADATA_BYTES,
                || metadata_too_large("token", &realm),
            )
            .await?;
        let token: Token = serde_json::from_slice(&body).map_err(|error| {
            SourceError::unavailable(format!("{shown} is not a token response: {error}"))
        })?;
        Ok(token.token.or(token.access_token))
    }
}

fn metadata_too_large(what: &str, url: &str) -> SourceError {
    SourceError::unavailable(format!(
        "the registry {what} from {url} is larger than {} KiB, which no real registry sends; \
         check the reference points at an OCI registry",
        MAX_METADATA_BYTES >> 10
    ))
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
}
