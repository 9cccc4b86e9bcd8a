//! Outbound HTTP for operators ([`HttpEgress`]): one client per operator, limited to the URL
//! prefixes the operator was granted, with a per-request timeout and a response size cap.
//!
//! The client (TLS configuration with its root certificates, connection pool: about 25 KiB) is
//! built on the operator's first request, not at load: most operators never make one, and a
//! host running hundreds of them should not hold hundreds of idle clients.
//!
//! Every failure becomes a [`HostResponse::Error`] the guest can act on: `capabilityDenied` for a
//! URL outside the allowlist, `timeout`, `limitExceeded` (limit `responseSize`) for an oversized
//! body, `transport` for network failures and `invalidRequest` for requests that cannot be sent
//! as given. Non-2xx statuses are not errors: the guest gets the status, headers and body.
//!
//! Bodies are UTF-8 text in ABI v1. A response body that is not valid UTF-8 is answered with an
//! `invalidRequest` error naming its content type, rather than being altered by lossy decoding:
//! a guest that asked for binary data learns that v1 cannot carry it instead of parsing mangled
//! bytes.
//!
//! Redirects are followed (up to [`MAX_REDIRECTS`]) only while they stay inside the allowlist; a
//! redirect that leaves it is returned to the guest as the 3xx response itself.
//!
//! Above the operator's own allowlist sits the cluster admin's [`AdminPolicy`] ([`guard`]):
//! prefixes the allowlist must lie in, and a deny of non-public addresses checked after DNS
//! resolution and on every redirect hop (`capabilityDenied`). `Host`, `Content-Length` and
//! hop-by-hop headers are the host's to set: a guest setting one gets `invalidRequest`. The
//! client ignores proxy environment variables, so the checked address is the one connected to.

mod address;
mod allowlist;
mod body;
mod guard;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use wasm_operator_abi::{HostError, HostResponse, HttpRequest, HttpResponse};

pub use address::{denied_range, AddressPolicy, DeniedAddress, Network};
use allowlist::Allowlist;
pub use allowlist::InvalidPrefix;
pub use guard::{check_literal, find_denied, guarded_client_builder, AdminPolicy};

/// Redirect hops followed within the allowlist before the 3xx response is handed back.
pub const MAX_REDIRECTS: usize = 10;

/// What one operator may do over HTTP.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    /// URL prefixes the operator may reach, e.g. `http://prometheus.monitoring:9090/api/`.
    pub allow_prefixes: Vec<String>,
    /// Timeout for a request that names none, and the upper bound for one that does.
    pub default_timeout: Duration,
    /// Largest response body handed to the guest, in bytes.
    pub max_response_bytes: usize,
    /// The cluster admin's bounds, which `allow_prefixes` must respect.
    pub admin: AdminPolicy,
}

/// Why an [`HttpEgress`] could not be created.
#[derive(Debug, thiserror::Error)]
pub enum EgressConfigError {
    #[error(transparent)]
    InvalidPrefix(#[from] InvalidPrefix),
    #[error("{0}")]
    OutsideAdminPolicy(String),
}

/// One operator's outbound HTTP client.
#[derive(Debug, Clone)]
pub struct HttpEgress {
    /// Built on first use (see the module documentation); shared by clones.
    client: Arc<OnceLock<reqwest::Client>>,
    allowlist: Arc<Allowlist>,
    addresses: Arc<address::AddressPolicy>,
    default_timeout: Duration,
    max_response_bytes: usize,
}

impl HttpEgress {
    /// Checks the policy; fails if an allowed prefix is not a usable http(s) URL prefix or lies
    /// outside the admin's bounds. The client itself is built on the first request.
    pub fn new(policy: EgressPolicy) -> Result<HttpEgress, EgressConfigError> {
        let allowlist = Arc::new(Allowlist::new(&policy.allow_prefixes)?);
        policy
            .admin
            .check_grants(&policy.allow_prefixes)
            .map_err(EgressConfigError::OutsideAdminPolicy)?;
        Ok(HttpEgress {
            client: Arc::default(),
            allowlist,
            addresses: policy.admin.addresses(),
            default_timeout: policy.default_timeout,
            max_response_bytes: policy.max_response_bytes,
        })
    }

    /// The client, built now if this is the first request.
    fn client(&self) -> Result<&reqwest::Client, HostError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let built = self.build_client().map_err(|error| {
            HostError::transport(format!("could not create the HTTP client: {error}"))
        })?;
        // A concurrent first request may have built one too; either serves.
        Ok(self.client.get_or_init(|| built))
    }

    fn build_client(&self) -> Result<reqwest::Client, String> {
        let addresses = self.addresses.clone();
        let redirect_allowlist = self.allowlist.clone();
        let redirect_addresses = addresses.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS || !redirect_allowlist.allows(attempt.url())
            {
                return attempt.stop();
            }
            // A hop to an IP literal is checked here; a named hop goes through the resolver.
            match guard::check_literal(&redirect_addresses, attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(denied) => attempt.error(denied),
            }
        });
        // The address guard (filtering resolver, no proxy), with this operator's redirect policy.
        guard::guarded_client_builder(addresses)
            .redirect(redirects)
            .user_agent(concat!("wasm-operator/", env!("CARGO_PKG_VERSION")))
            // Many operators each have a client: keep idle connections few and short-lived.
            .pool_max_idle_per_host(2)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|error| error_chain(&error))
    }

    /// Performs `request` if the allowlist permits it.
    pub async fn send(&self, request: HttpRequest) -> HostResponse {
        match self.try_send(request).await {
            Ok(response) => match serde_json::to_value(response) {
                Ok(value) => HostResponse::Ok(value),
                Err(error) => HostResponse::Error(HostError::transport(format!(
                    "encoding the response: {error}"
                ))),
            },
            Err(error) => HostResponse::Error(error),
        }
    }

    async fn try_send(&self, request: HttpRequest) -> Result<HttpResponse, HostError> {
        let url = Url::parse(&request.url).map_err(|error| {
            HostError::invalid_request(format!(
                "http request URL {:?} is not a valid absolute URL: {error}",
                request.url
            ))
        })?;
        if !self.allowlist.allows(&url) {
            return Err(HostError::capability_denied(format!(
                "http request to {url} refused: not in the operator's allowlist (allowed prefixes: {})",
                self.allowlist
            )));
        }
        if let Err(denied) = guard::check_literal(&self.addresses, &url) {
            return Err(denied_error(&url, &denied));
        }
        let method =
            Method::from_bytes(request.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
                HostError::invalid_request(format!(
                    "{:?} is not a valid HTTP method",
                    request.method
                ))
            })?;
        let timeout = match request.timeout_ms {
            Some(ms) => Duration::from_millis(ms).min(self.default_timeout),
            None => self.default_timeout,
        };

        let mut outgoing = self
            .client()?
            .request(method, url.clone())
            .headers(request_headers(&request.headers)?);
        if let Some(body) = request.body {
            outgoing = outgoing.body(body);
        }
        let exchange = async {
            let response = outgoing
                .send()
                .await
                .map_err(|error| transport_error(&url, &error))?;
            let status = response.status().as_u16();
            let headers = response_headers(response.headers());
            let content_type = headers.get("content-type").cloned();
            let body = body::read_capped(response, self.max_response_bytes, &url).await?;
            let body = String::from_utf8(body).map_err(|_| {
                HostError::invalid_request(format!(
                    "the response from {url} ({}) is not UTF-8 text, and ABI v1 carries text bodies \
                     only; request a text representation instead",
                    content_type.as_deref().unwrap_or("no content-type")
                ))
            })?;
            Ok(HttpResponse {
                status,
                headers,
                body,
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(HostError::timeout(format!(
                "http request timed out after {} ms",
                timeout.as_millis()
            ))),
        }
    }
}

fn request_headers(headers: &BTreeMap<String, String>) -> Result<HeaderMap, HostError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            HostError::invalid_request(format!("{name:?} is not a valid HTTP header name"))
        })?;
        if guard::forbidden_header(name) {
            return Err(HostError::invalid_request(format!(
                "HTTP header {name:?} is set by the host and cannot be set by an operator \
                 (Host, Content-Length and the hop-by-hop headers Connection, Keep-Alive, \
                 Proxy-*, TE, Trailer, Transfer-Encoding and Upgrade); remove it from the request"
            )));
        }
        let header_value = HeaderValue::from_str(value).map_err(|_| {
            HostError::invalid_request(format!(
                "the value of HTTP header {name:?} contains characters HTTP does not allow"
            ))
        })?;
        map.insert(header_name, header_value);
    }
    Ok(map)
}

/// Header names are lower-case; repeated headers are joined with ", " as HTTP permits.
fn response_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut map = BTreeMap::<String, String>::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        map.entry(name.as_str().to_owned())
            .and_modify(|existing| {
                existing.push_str(", ");
                existing.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    map
}

fn transport_error(url: &Url, error: &reqwest::Error) -> HostError {
    if let Some(denied) = guard::find_denied(error) {
        return denied_error(url, denied);
    }
    HostError::transport(format!(
        "http request to {url} failed: {}",
        error_chain(error)
    ))
}

fn denied_error(url: &Url, denied: &DeniedAddress) -> HostError {
    HostError::capability_denied(format!("http request to {url} refused: {denied}"))
}

/// An error and its sources on one line: reqwest's own message alone rarely says what went wrong.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests;
