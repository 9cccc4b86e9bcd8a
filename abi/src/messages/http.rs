//! HttpRequest, the message a guest passes to `http_request`, and HttpResponse, the `ok` value of
//! the HostResponse it gets back. Bodies are UTF-8 text in ABI v1.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One outbound HTTP request. The host checks `url` against the operator's allowlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRequest {
    /// `GET`, `POST`, ... (any method token).
    pub method: String,
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    /// Request headers; names are case-insensitive.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Give up after this many milliseconds (the host also applies its own upper bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl HttpRequest {
    /// A `GET` of `url` with no headers, no body and the host's default timeout.
    pub fn get(url: impl Into<String>) -> Self {
        HttpRequest {
            method: "GET".to_owned(),
            url: url.into(),
            headers: BTreeMap::new(),
            body: None,
            timeout_ms: None,
        }
    }
}

/// The response to an HttpRequest, whatever its status code: a 404 or 500 is still an `ok`
/// HostResponse. Only failures to get a response at all are HostErrors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpResponse {
    pub status: u16,
    /// Response headers, names lower-cased; repeated headers joined with `, `.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body; bytes that are not valid UTF-8 are replaced with U+FFFD.
    #[serde(default)]
    pub body: String,
}

impl HttpResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}
