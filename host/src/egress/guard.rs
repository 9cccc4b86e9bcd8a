//! The cluster admin's bounds on outbound HTTP ([`AdminPolicy`]) and where they are enforced.
//!
//! Tenants write `allowHttp` in their WasmOperator, so it cannot be the last word:
//! - URL prefixes: when the admin lists prefixes (`--egress-allow-prefix`), every `allowHttp`
//!   entry must lie inside one of them, or the operator is refused at load ([`AdminPolicy::
//!   check_grants`]). Refusing rather than clamping keeps what runs equal to what the tenant
//!   wrote, and the message says which entry to change.
//! - Addresses: non-public addresses ([`super::address`]) are refused unless the admin allows
//!   their network (`--egress-allow-network`). The check runs on the resolved addresses in
//!   [`FilteringResolver`] (so a name that resolves to 127.0.0.1 or 169.254.169.254 is caught,
//!   and the connection goes to an address that was checked, leaving no window for DNS
//!   rebinding), and in [`check_literal`] for IP-literal hosts, which never reach a resolver.
//!   The redirect policy calls [`check_literal`] for every hop; named hops go through the
//!   resolver again.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

use super::address::{AddressPolicy, DeniedAddress, Network};
use super::allowlist::{Allowlist, InvalidPrefix};

/// What the cluster admin allows operators' outbound HTTP to reach, whatever their spec says.
#[derive(Debug, Clone, Default)]
pub struct AdminPolicy {
    /// `None`: any prefix (still subject to the address policy).
    prefixes: Option<Arc<Allowlist>>,
    addresses: Arc<AddressPolicy>,
}

impl AdminPolicy {
    /// `prefixes`: the URL prefixes tenants' `allowHttp` entries must lie in (`None` = any);
    /// `allowed_networks`: non-public networks operators may reach anyway.
    pub fn new(
        prefixes: Option<&[String]>,
        allowed_networks: Vec<Network>,
    ) -> Result<AdminPolicy, InvalidPrefix> {
        Ok(AdminPolicy {
            prefixes: prefixes
                .map(|prefixes| Allowlist::new(prefixes).map(Arc::new))
                .transpose()?,
            addresses: Arc::new(AddressPolicy {
                allowed: allowed_networks,
            }),
        })
    }

    /// The policy of the `--egress-allow-prefix` and `--egress-allow-network` flags; no prefix
    /// flag means any prefix.
    pub fn from_flags(prefixes: &[String], networks: &[String]) -> Result<AdminPolicy, String> {
        let networks = networks
            .iter()
            .map(|network| {
                network
                    .parse()
                    .map_err(|error| format!("--egress-allow-network: {error}"))
            })
            .collect::<Result<Vec<Network>, String>>()?;
        let prefixes = (!prefixes.is_empty()).then_some(prefixes);
        AdminPolicy::new(prefixes, networks)
            .map_err(|error| format!("--egress-allow-prefix: {error}"))
    }

    /// A policy that also allows `networks` (tests and tools that serve on loopback).
    pub fn allowing_networks(networks: &[&str]) -> AdminPolicy {
        AdminPolicy {
            prefixes: None,
            addresses: Arc::new(AddressPolicy {
                allowed: networks
                    .iter()
                    .map(|network| network.parse().expect("a valid network"))
                    .collect(),
            }),
        }
    }

    /// Refuses the first of an operator's `allowHttp` entries that lies outside the admin's
    /// prefixes.
    pub(super) fn check_grants(&self, operator_prefixes: &[String]) -> Result<(), String> {
        let Some(admin) = &self.prefixes else {
            return Ok(());
        };
        for prefix in operator_prefixes {
            // Unparsable entries are reported by the operator's own allowlist.
            let Ok(url) = Url::parse(prefix) else {
                continue;
            };
            if !admin.allows(&url) {
                return Err(format!(
                    "allowHttp entry {prefix:?} is outside the URL prefixes the cluster admin \
                     permits ({admin}); use a URL under one of them, or ask the admin to add it \
                     with --egress-allow-prefix"
                ));
            }
        }
        Ok(())
    }

    pub(super) fn addresses(&self) -> Arc<AddressPolicy> {
        self.addresses.clone()
    }

    /// The non-public networks the admin allows (module sources apply them too).
    pub fn allowed_networks(&self) -> Vec<Network> {
        self.addresses.allowed.clone()
    }
}

/// A client builder for other tenant-chosen URLs (module sources) under the same address
/// policy: resolved names filtered, IP-literal redirect hops refused when denied, proxies
/// ignored. The first URL of each request must still pass [`check_literal`] (a literal never
/// reaches the resolver). Operators' own client replaces the redirect policy with one that
/// also keeps to their allowlist.
pub fn guarded_client_builder(policy: Arc<AddressPolicy>) -> reqwest::ClientBuilder {
    let redirect_policy = policy.clone();
    reqwest::Client::builder()
        .dns_resolver(Arc::new(FilteringResolver { policy }))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > super::MAX_REDIRECTS {
                return attempt.error("too many redirects");
            }
            match check_literal(&redirect_policy, attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(denied) => attempt.error(denied),
            }
        }))
}

/// Checks a URL whose host is an IP address (which no resolver sees); names pass here and are
/// checked by [`FilteringResolver`] once resolved.
pub fn check_literal(policy: &AddressPolicy, url: &Url) -> Result<(), DeniedAddress> {
    let Some(host) = url.host_str() else {
        return Ok(());
    };
    // IPv6 literals come bracketed; the URL parser has already turned numeric IPv4 forms
    // (`2130706433`, `127.1`) into dotted quads.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let Ok(ip) = bare.parse::<IpAddr>() else {
        return Ok(());
    };
    policy.check(host, ip)
}

/// Resolves names with the system resolver and drops the addresses the policy denies; a name
/// left with none fails with the [`DeniedAddress`] of the first one.
#[derive(Debug)]
pub(super) struct FilteringResolver {
    pub policy: Arc<AddressPolicy>,
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_denied = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match policy.check(&host, addr.ip()) {
                    Ok(()) => true,
                    Err(denied) => {
                        first_denied.get_or_insert(denied);
                        false
                    }
                })
                .collect();
            match first_denied {
                Some(denied) if allowed.is_empty() => Err(Box::new(denied) as _),
                _ if allowed.is_empty() => Err(format!("{host} resolved to no address").into()),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// The [`DeniedAddress`] somewhere in an error's source chain (from the resolver or the
/// redirect policy, wrapped by reqwest and hyper).
pub fn find_denied<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a DeniedAddress> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(denied) = error.downcast_ref::<DeniedAddress>() {
            return Some(denied);
        }
        current = error.source();
    }
    None
}

/// Headers the host sets or that steer the connection itself: a guest setting `Host` could
/// reach another virtual host than its allowlist names, and hop-by-hop headers could smuggle
/// requests or change framing.
pub(super) fn forbidden_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "host"
            | "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    ) || name.starts_with("proxy-")
}
