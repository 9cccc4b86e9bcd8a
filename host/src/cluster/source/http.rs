//! A module downloaded from an HTTP(S) URL and checked against the SHA-256 the spec pins, and
//! the size-capped download that OCI manifests, tokens and blobs use too.
use super::{check_digest, normalise_sha256, too_large, Slot, SourceError, SourceFetcher};
use crate::cluster::resource::HttpSource;
use crate::egress::error_chain;

impl SourceFetcher {
    pub(super) async fn http(&self, source: &HttpSource) -> Result<(Vec<u8>, Slot), SourceError> {
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
        let (wasm, slot) = self
            .download_module(self.http.get(url.clone()), url.as_str())
            .await?;
        check_digest(&wasm, &expected, url.as_str())?;
        Ok((wasm, slot))
    }

    /// Sends `request` if its address is allowed (literal hosts here, names in the resolver,
    /// redirect hops in the client's policy); a denied address is `AddressDenied`.
    pub(super) async fn send(
        &self,
        request: reqwest::RequestBuilder,
        shown: &str,
    ) -> Result<reqwest::Response, SourceError> {
        let request = request.build().map_err(|error| {
            SourceError::new("InvalidSource", format!("cannot request {shown}: {error}"))
        })?;
        if let Err(denied) = crate::egress::check_literal(&self.addresses, request.url()) {
            return Err(address_denied(shown, &denied));
        }
        self.http
            .execute(request)
            .await
            .map_err(|error| match crate::egress::find_denied(&error) {
                Some(denied) => address_denied(shown, denied),
                None => SourceError::unavailable(format!(
                    "cannot download {shown}: {}",
                    error_chain(&error)
                )),
            })
    }

    /// A module-sized download: at most the admin's module size, read in a module slot taken
    /// once the response has begun (so a server that never answers holds no slot).
    pub(super) async fn download_module(
        &self,
        request: reqwest::RequestBuilder,
        shown: &str,
    ) -> Result<(Vec<u8>, Slot), SourceError> {
        let max_bytes = self.limits.max_module_bytes;
        let response = self.answered(request, shown).await?;
        let slot = self.slots.take().await;
        let body = read_body(response, shown, max_bytes, || too_large(shown, max_bytes)).await?;
        Ok((body, slot))
    }

    /// The body of a successful response, refused with `oversize()` as soon as it is known to
    /// exceed `max_bytes`: from its Content-Length before reading, or at the chunk that would
    /// cross it. Never holds more than `max_bytes`, and allocates the declared size once.
    pub(super) async fn download(
        &self,
        request: reqwest::RequestBuilder,
        shown: &str,
        max_bytes: usize,
        oversize: impl Fn() -> SourceError,
    ) -> Result<Vec<u8>, SourceError> {
        let response = self.answered(request, shown).await?;
        read_body(response, shown, max_bytes, oversize).await
    }

    /// The response to `request` if it is a success.
    async fn answered(
        &self,
        request: reqwest::RequestBuilder,
        shown: &str,
    ) -> Result<reqwest::Response, SourceError> {
        let response = self.send(request, shown).await?;
        if !response.status().is_success() {
            return Err(SourceError::unavailable(format!(
                "downloading {shown} answered {}",
                response.status()
            )));
        }
        Ok(response)
    }
}

/// The body of `response`, refused with `oversize()` as soon as it is known to exceed
/// `max_bytes`: from its Content-Length before reading, or at the chunk that would cross it.
/// Never holds more than `max_bytes`, and allocates the declared size once.
async fn read_body(
    mut response: reqwest::Response,
    shown: &str,
    max_bytes: usize,
    oversize: impl Fn() -> SourceError,
) -> Result<Vec<u8>, SourceError> {
    let declared = response.content_length().unwrap_or(0);
    if declared > max_bytes as u64 {
        return Err(oversize());
    }
    let mut body = Vec::with_capacity(declared as usize);
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| SourceError::unavailable(format!("downloading {shown}: {error}")))?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(oversize());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn address_denied(shown: &str, denied: &crate::egress::DeniedAddress) -> SourceError {
    SourceError::new("AddressDenied", format!("{shown} refused: {denied}"))
}
