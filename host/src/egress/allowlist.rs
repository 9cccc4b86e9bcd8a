//! The outbound-HTTP allowlist: URL prefixes compared on parsed, normalised URLs.
//!
//! Comparing raw strings would let `http://127.0.0.1:9090.evil.com/` or
//! `http://127.0.0.1:9090@evil.com/` pass a `http://127.0.0.1:9090` prefix. Here both sides are
//! parsed (which lower-cases the scheme and host, resolves `.` and `..` path segments and drops
//! default ports), and a URL is allowed only if scheme, host and effective port are equal and its
//! path continues the prefix's path at a segment boundary: `/api` allows `/api` and `/api/v1`,
//! not `/apix`.

use std::fmt;

use reqwest::Url;

/// One allowed prefix, parsed.
#[derive(Debug, Clone)]
struct AllowedPrefix {
    scheme: String,
    host: String,
    port: u16,
    path: String,
    /// The normalised form, for messages.
    display: String,
}

/// The set of URL prefixes one operator may reach.
#[derive(Debug, Clone, Default)]
pub(crate) struct Allowlist {
    prefixes: Vec<AllowedPrefix>,
}

/// Why a configured prefix is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("allowed URL prefix {prefix:?} is invalid: {reason}")]
pub struct InvalidPrefix {
    pub prefix: String,
    pub reason: String,
}

impl Allowlist {
    pub fn new(prefixes: &[String]) -> Result<Allowlist, InvalidPrefix> {
        let prefixes = prefixes
            .iter()
            .map(|prefix| parse_prefix(prefix))
            .collect::<Result<_, _>>()?;
        Ok(Allowlist { prefixes })
    }

    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let Some(port) = url.port_or_known_default() else {
            return false;
        };
        self.prefixes.iter().any(|prefix| {
            prefix.scheme == url.scheme()
                && prefix.host == host
                && prefix.port == port
                && path_continues(url.path(), &prefix.path)
        })
    }
}

impl fmt::Display for Allowlist {
    /// The normalised prefixes, comma separated, for error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefixes.is_empty() {
            return f.write_str("none");
        }
        for (index, prefix) in self.prefixes.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&prefix.display)?;
        }
        Ok(())
    }
}

fn parse_prefix(prefix: &str) -> Result<AllowedPrefix, InvalidPrefix> {
    let invalid = |reason: &str| InvalidPrefix {
        prefix: prefix.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(prefix).map_err(|error| {
        invalid(&format!(
            "{error}; write a full URL such as http://host:port/path"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("only http:// and https:// prefixes are supported"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "a prefix cannot contain a query (?) or fragment (#)",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("a prefix cannot contain credentials"));
    }
    let host = url
        .host_str()
        .ok_or_else(|| invalid("the prefix has no host"))?
        .to_owned();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| invalid("the prefix has no port"))?;
    Ok(AllowedPrefix {
        scheme: url.scheme().to_owned(),
        host,
        port,
        path: url.path().to_owned(),
        display: url.to_string(),
    })
}

/// Whether `path` is `prefix` or lies below it. A prefix ending in `/` (including the root `/`)
/// already marks a segment boundary.
fn path_continues(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowlist(prefixes: &[&str]) -> Allowlist {
        Allowlist::new(
            &prefixes
                .iter()
                .map(|prefix| prefix.to_string())
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    /// URLs that do not even parse can never be allowed.
    fn allows(list: &Allowlist, url: &str) -> bool {
        Url::parse(url).is_ok_and(|url| list.allows(&url))
    }

    #[test]
    fn host_tricks_do_not_match() {
        let list = allowlist(&["http://127.0.0.1:9090/", "http://metrics.example:9090"]);
        assert!(allows(&list, "http://127.0.0.1:9090/api/v1/query?query=up"));
        assert!(allows(&list, "http://metrics.example:9090/api"));
        for evil in [
            "http://127.0.0.1:9090.evil.com/",
            "http://127.0.0.1:9090@evil.com/",
            "http://metrics.example.evil.com:9090/",
            "http://metrics.example:9090@evil.com/",
            "http://metrics.example:90901/",
            "http://127.0.0.1:9091/",
            "https://127.0.0.1:9090/",
        ] {
            assert!(!allows(&list, evil), "{evil} must not be allowed");
        }
    }

    #[test]
    fn paths_match_on_segment_boundaries_after_normalisation() {
        let list = allowlist(&["https://Example.COM/api"]);
        assert!(allows(&list, "https://example.com/api"));
        assert!(allows(&list, "https://example.com:443/api/v1"));
        assert!(!allows(&list, "https://example.com/apix"));
        assert!(!allows(&list, "https://example.com/api/../admin"));
        assert!(!allows(&list, "https://example.com/"));
    }

    #[test]
    fn default_ports_are_normalised() {
        let list = allowlist(&["http://example.com:80/"]);
        assert!(allows(&list, "http://example.com/x"));
    }

    #[test]
    fn invalid_prefixes_are_refused_with_a_reason() {
        for prefix in [
            "example.com/",
            "ftp://example.com/",
            "http://example.com/?a=b",
            "http://u:p@example.com/",
        ] {
            let error = Allowlist::new(&[prefix.to_owned()]).unwrap_err();
            assert_eq!(error.prefix, prefix);
            assert!(!error.reason.is_empty());
        }
    }
}
