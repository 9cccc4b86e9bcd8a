//! Which IP addresses operators may reach: the default deny of non-public ranges and the
//! networks a cluster admin re-allows (`--egress-allow-network`).
//!
//! A tenant's `allowHttp` names hosts, but what a name means is decided by DNS and by the
//! network the host runs in: `metrics.example` may resolve to 127.0.0.1, and 169.254.169.254 is
//! the cloud metadata service that hands out the node's credentials. So the check is made on
//! the addresses actually connected to — after resolution, for IP-literal URLs, and on every
//! redirect hop (see [`super::guard`]). IPv6 forms that carry an IPv4 address (IPv4-mapped,
//! NAT64, 6to4) are judged by the IPv4 address they carry, so `::ffff:127.0.0.1` is loopback.
//!
//! This module only computes; it never sends a packet.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network in CIDR notation; a bare address is a single-address network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix_len: u8,
}

impl Network {
    /// Whether `ip` lies in this network. An IPv4-mapped IPv6 address counts as its IPv4
    /// address and the other way round, since either form reaches the same host.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => v4_in(ip, net, self.prefix_len),
            (IpAddr::V6(net), IpAddr::V6(ip)) => v6_in(ip, net, self.prefix_len),
            (IpAddr::V6(net), IpAddr::V4(ip)) => v6_in(ip.to_ipv6_mapped(), net, self.prefix_len),
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Network, String> {
        let invalid = |why: &str| {
            format!(
                "{text:?} is not a network: {why}; write e.g. 127.0.0.1/32, 10.0.0.0/8 or fd00::/8"
            )
        };
        let (addr, prefix_len) = match text.trim().split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| invalid("not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix_len {
            Some(len) => len
                .parse::<u8>()
                .ok()
                .filter(|len| *len <= max)
                .ok_or_else(|| invalid(&format!("the prefix length must be 0 to {max}")))?,
            None => max,
        };
        Ok(Network { addr, prefix_len })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// An address refused by the policy: which host named it, and which range it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeniedAddress {
    pub host: String,
    pub ip: IpAddr,
    pub range: String,
}

impl fmt::Display for DeniedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        if host.parse::<IpAddr>().is_ok() {
            write!(f, "{} is", self.ip)?;
        } else {
            write!(f, "{host} resolves to {}, which is", self.ip)?;
        }
        write!(
            f,
            " a {} address, which operators may not reach; a cluster admin can allow that \
             network with --egress-allow-network",
            self.range
        )
    }
}

impl std::error::Error for DeniedAddress {}

/// The admin's address policy: non-public ranges are denied unless `allowed` contains the
/// address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    pub allowed: Vec<Network>,
}

impl AddressPolicy {
    /// `Ok` if an operator may connect to `ip` (which `host` resolved to, or is).
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), DeniedAddress> {
        let Some(range) = denied_range(ip) else {
            return Ok(());
        };
        if self.allowed.iter().any(|network| network.contains(ip)) {
            return Ok(());
        }
        Err(DeniedAddress {
            host: host.to_owned(),
            ip,
            range,
        })
    }
}

/// IPv4-mapped IPv6 addresses as the IPv4 address they are; everything else unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// IPv4 ranges no operator reaches by default (RFC 6890 special-purpose registry and more).
const DENIED_V4: &[([u8; 4], u8, &str)] = &[
    ([0, 0, 0, 0], 8, "unspecified (\"this network\", 0.0.0.0/8)"),
    ([10, 0, 0, 0], 8, "private (10.0.0.0/8)"),
    ([100, 64, 0, 0], 10, "carrier-grade NAT (100.64.0.0/10)"),
    ([127, 0, 0, 0], 8, "loopback (127.0.0.0/8)"),
    (
        [169, 254, 0, 0],
        16,
        "link-local (169.254.0.0/16, cloud metadata)",
    ),
    ([172, 16, 0, 0], 12, "private (172.16.0.0/12)"),
    (
        [192, 0, 0, 0],
        24,
        "IETF protocol assignment (192.0.0.0/24)",
    ),
    ([192, 0, 2, 0], 24, "documentation (192.0.2.0/24)"),
    ([192, 88, 99, 0], 24, "6to4 relay anycast (192.88.99.0/24)"),
    ([192, 168, 0, 0], 16, "private (192.168.0.0/16)"),
    ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
    ([198, 51, 100, 0], 24, "documentation (198.51.100.0/24)"),
    ([203, 0, 113, 0], 24, "documentation (203.0.113.0/24)"),
    ([224, 0, 0, 0], 4, "multicast (224.0.0.0/4)"),
    ([240, 0, 0, 0], 4, "reserved or broadcast (240.0.0.0/4)"),
];

/// IPv6 ranges no operator reaches by default. Ranges embedding an IPv4 address are handled
/// in [`denied_range`] before this list.
const DENIED_V6: &[(u128, u8, &str)] = &[
    (0, 128, "unspecified (::)"),
    (1, 128, "loopback (::1)"),
    (0, 96, "IPv4-compatible, deprecated (::/96)"),
    (
        0x0064_ff9b_0001_0000_0000_0000_0000_0000,
        48,
        "local-use NAT64 (64:ff9b:1::/48)",
    ),
    (
        0x0100_0000_0000_0000_0000_0000_0000_0000,
        64,
        "discard-only (100::/64)",
    ),
    (
        0x2001_0db8_0000_0000_0000_0000_0000_0000,
        32,
        "documentation (2001:db8::/32)",
    ),
    (
        0x2001_0000_0000_0000_0000_0000_0000_0000,
        32,
        "Teredo (2001::/32)",
    ),
    (
        0xfc00_0000_0000_0000_0000_0000_0000_0000,
        7,
        "unique local (fc00::/7)",
    ),
    (
        0xfe80_0000_0000_0000_0000_0000_0000_0000,
        10,
        "link-local (fe80::/10)",
    ),
    (
        0xfec0_0000_0000_0000_0000_0000_0000_0000,
        10,
        "site-local, deprecated (fec0::/10)",
    ),
    (
        0xff00_0000_0000_0000_0000_0000_0000_0000,
        8,
        "multicast (ff00::/8)",
    ),
];

/// The name of the non-public range `ip` is in, or `None` for a public address.
pub fn denied_range(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => denied_v4(v4).map(str::to_owned),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return denied_v4(v4).map(|range| format!("{range} as IPv4-mapped IPv6"));
            }
            let bits = u128::from(v6);
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address they carry.
            if v6_in(v6, Ipv6Addr::from(0x0064_ff9b_u128 << 96), 96) {
                let v4 = Ipv4Addr::from(bits as u32);
                return denied_v4(v4).map(|range| format!("{range} via NAT64"));
            }
            if v6_in(v6, Ipv6Addr::from(0x2002_u128 << 112), 16) {
                let v4 = Ipv4Addr::from((bits >> 80) as u32);
                return denied_v4(v4).map(|range| format!("{range} via 6to4"));
            }
            DENIED_V6
                .iter()
                .find(|(net, len, _)| v6_in(v6, Ipv6Addr::from(*net), *len))
                .map(|(_, _, range)| (*range).to_owned())
        }
    }
}

fn denied_v4(ip: Ipv4Addr) -> Option<&'static str> {
    DENIED_V4
        .iter()
        .find(|(net, len, _)| v4_in(ip, Ipv4Addr::from(*net), *len))
        .map(|(_, _, range)| *range)
}

fn v4_in(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn v6_in(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn every_non_public_range_is_denied_by_default() {
        let policy = AddressPolicy::default();
        for (address, range) in [
            ("169.254.169.254", "link-local"),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::ffff:10.1.2.3", "private"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("::", "unspecified"),
            ("10.0.0.1", "private (10.0.0.0/8)"),
            ("10.255.255.255", "private (10.0.0.0/8)"),
            ("172.16.0.1", "private (172.16.0.0/12)"),
            ("172.31.255.255", "private (172.16.0.0/12)"),
            ("192.168.1.1", "private (192.168.0.0/16)"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("100.127.255.255", "carrier-grade NAT"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("192.0.0.8", "IETF"),
            ("192.0.2.1", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("fd00::1", "unique local"),
            ("fc00::1", "unique local"),
            ("fe80::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("64:ff9b::7f00:1", "loopback (127.0.0.0/8) via NAT64"),
            (
                "64:ff9b::a9fe:a9fe",
                "link-local (169.254.0.0/16, cloud metadata) via NAT64",
            ),
            ("2002:7f00:1::", "loopback (127.0.0.0/8) via 6to4"),
            ("2002:a00:1::1", "private (10.0.0.0/8) via 6to4"),
            ("64:ff9b:1::1", "local-use NAT64"),
            ("2001:db8::1", "documentation"),
            ("2001:0:4136:e378::1", "Teredo"),
            ("100::1", "discard-only"),
        ] {
            let denied = policy
                .check("h", ip(address))
                .expect_err(&format!("{address} must be denied"));
            assert!(
                denied.range.contains(range),
                "{address}: range {:?} should name {range:?}",
                denied.range
            );
            assert!(denied.to_string().contains("--egress-allow-network"));
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        let policy = AddressPolicy::default();
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "169.253.255.255",
            "11.0.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(policy.check("h", ip(address)), Ok(()), "{address}");
        }
    }

    #[test]
    fn allowed_networks_reopen_exactly_what_they_contain() {
        let policy = AddressPolicy {
            allowed: vec!["127.0.0.1/32".parse().unwrap(), "fd00::/8".parse().unwrap()],
        };
        assert_eq!(policy.check("h", ip("127.0.0.1")), Ok(()));
        assert_eq!(policy.check("h", ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(policy.check("h", ip("fd12::1")), Ok(()));
        assert!(policy.check("h", ip("127.0.0.2")).is_err());
        assert!(policy.check("h", ip("fc00::1")).is_err());
        assert!(policy.check("h", ip("169.254.169.254")).is_err());
    }

    #[test]
    fn networks_parse_with_and_without_a_prefix_length() {
        assert_eq!(
            "10.0.0.0/8".parse::<Network>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            "127.0.0.1".parse::<Network>().unwrap().to_string(),
            "127.0.0.1/32"
        );
        assert_eq!("::1".parse::<Network>().unwrap().to_string(), "::1/128");
        assert!("0.0.0.0/0"
            .parse::<Network>()
            .unwrap()
            .contains(ip("9.9.9.9")));
        for bad in ["10.0.0.0/33", "::/129", "example.com/8", "10.0.0.0/x", ""] {
            let error = bad.parse::<Network>().unwrap_err();
            assert!(error.contains("is not a network"), "{bad}: {error}");
        }
    }
}
