//! A module downloaded from an HTTP(S) URL and checked against the SHA-256 the spec pins, and
//! the size-capped download that OCI blobs use too.
use super::{
    check_digest, normalise_sha256, too_large, SourceError, SourceFetcher, MAX_MODULE_BYTES,
};
use crate::cluster::resource::HttpSource;

impl SourceFetcher {
    pub(super) async fn http(&self, source: &HttpSource) -> Result<Vec<u8>, SourceError> {
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

    pub(super) async fn download(
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
