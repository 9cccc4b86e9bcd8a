//! Outbound HTTP through the host (capability `http`): only URLs under the prefixes the operator
//! was granted are reachable; others fail with [`Error::is_capability_denied`]. Bodies are UTF-8
//! text in ABI v1. A response with any status code is a [`Response`]; only failing to get one at
//! all (refused, timeout, DNS, TLS) is an error.
//!
//! ```ignore
//! let value: Prometheus = http::get_json("http://prometheus:9090/api/v1/query?query=up")?;
//! let response = http::Request::post("http://hooks:8080/deployed").json(&payload)?.send()?;
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_operator_abi::{HttpRequest, HttpResponse};

use crate::api::decode_host_response;
use crate::error::{Error, ErrorKind, Result};

/// An HTTP request, built up and then [`sent`](Request::send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    inner: HttpRequest,
}

impl Request {
    /// A request with `method` (`GET`, `POST`, ...) to the absolute `http://` or `https://` URL.
    pub fn new(method: &str, url: impl Into<String>) -> Self {
        Request {
            inner: HttpRequest {
                method: method.to_owned(),
                url: url.into(),
                headers: BTreeMap::new(),
                body: None,
                timeout_ms: None,
            },
        }
    }

    pub fn get(url: impl Into<String>) -> Self {
        Request::new("GET", url)
    }

    pub fn post(url: impl Into<String>) -> Self {
        Request::new("POST", url)
    }

    pub fn put(url: impl Into<String>) -> Self {
        Request::new("PUT", url)
    }

    pub fn delete(url: impl Into<String>) -> Self {
        Request::new("DELETE", url)
    }

    /// Sets a header (names are case-insensitive; write them lower-case).
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.inner.headers.insert(name.to_owned(), value.into());
        self
    }

    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.inner.body = Some(body.into());
        self
    }

    /// Sends `value` as JSON, with `content-type: application/json`.
    pub fn json<T: Serialize>(self, value: &T) -> Result<Self> {
        let body =
            serde_json::to_string(value).map_err(|e| Error::decode("the request body", e))?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// Gives up after `timeout` (a timeout error); the host's own upper bound also applies.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.inner.timeout_ms = Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// The ABI message this request becomes.
    pub fn as_abi(&self) -> &HttpRequest {
        &self.inner
    }

    /// Performs the request; blocks until the host has the answer.
    pub fn send(self) -> Result<Response> {
        let bytes =
            serde_json::to_vec(&self.inner).map_err(|e| Error::decode("the HttpRequest", e))?;
        let response: HttpResponse = decode_host_response(&crate::host::http_request(&bytes))?;
        Ok(Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }
}

/// A response, whatever its status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Lower-case names; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body; bytes that were not UTF-8 are replaced with U+FFFD.
    pub body: String,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The response itself when 2xx, else an error carrying the status and body.
    pub fn error_for_status(self) -> Result<Self> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(Error::from_kind(ErrorKind::HttpStatus {
                status: self.status,
                body: self.body,
            }))
        }
    }

    /// The body decoded from JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.body).map_err(|e| Error::decode("the response body", e))
    }
}

/// `GET url`.
pub fn get(url: impl Into<String>) -> Result<Response> {
    Request::get(url).send()
}

/// `GET url` with `accept: application/json`, expecting 2xx, decoded from JSON.
pub fn get_json<T: DeserializeOwned>(url: impl Into<String>) -> Result<T> {
    Request::get(url)
        .header("accept", "application/json")
        .send()?
        .error_for_status()?
        .json()
}

/// Percent-encodes `text` for a URL query value or path segment: every byte except the
/// unreserved `A-Z a-z 0-9 - . _ ~` becomes `%XX` with upper-case hex digits (RFC 3986).
pub fn percent_encode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push('%');
            encoded.push(HEX[usize::from(byte >> 4)] as char);
            encoded.push(HEX[usize::from(byte & 0x0f)] as char);
        }
    }
    encoded
}
