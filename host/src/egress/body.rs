//! Reading a response body under a size cap, chunk by chunk, so an oversized response is refused
//! without ever being held in memory.

use reqwest::{Response, Url};
use wasm_operator_abi::HostError;

/// The name the ABI gives this limit in `limitExceeded` errors.
const RESPONSE_SIZE_LIMIT: &str = "responseSize";

/// Reads the whole body if it is at most `max_bytes` long. At most `max_bytes` are ever buffered:
/// a declared Content-Length over the cap is refused before reading, and a chunk that would cross
/// the cap is dropped rather than appended.
pub(super) async fn read_capped(
    mut response: Response,
    max_bytes: usize,
    url: &Url,
) -> Result<Vec<u8>, HostError> {
    let too_large = || {
        HostError::limit_exceeded(
            RESPONSE_SIZE_LIMIT,
            format!("the response body from {url} exceeds {max_bytes} bytes"),
        )
    };
    if let Some(declared) = response.content_length() {
        if declared > max_bytes as u64 {
            return Err(too_large());
        }
    }
    let mut body = Vec::with_capacity(response.content_length().unwrap_or(0) as usize);
    while let Some(chunk) = response.chunk().await.map_err(|error| {
        HostError::transport(format!(
            "reading the response body from {url}: {}",
            super::error_chain(&error)
        ))
    })? {
        if body.len() + chunk.len() > max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
