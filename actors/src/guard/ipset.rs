//! Address lists (`gateway.allowedIPs`, `gateway.trustedProxies`): IPv4/IPv6 addresses and
//! CIDRs through `ipnet`. IPv4-mapped IPv6 peers (`::ffff:a.b.c.d`) match their IPv4 form.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv6Net};

/// A set of networks. Lookups are a linear scan: lists are short (a handful of entries), and
/// a scan over a few `IpNet`s is cheaper than any tree at that size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpSet {
    nets: Vec<IpNet>,
}

/// One entry that is neither an address nor a CIDR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEntry {
    /// Position in the list.
    pub index: usize,
    /// The entry as written.
    pub entry: String,
}

// === impl IpSet ===

impl IpSet {
    /// Parses addresses (`10.0.0.7`, `::1`) and CIDRs (`100.64.0.0/10`, `fd00::/8`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, BadEntry> {
        let mut nets = Vec::with_capacity(entries.len());
        for (index, e) in entries.iter().enumerate() {
            let s = e.as_ref().trim();
            let net = if s.contains('/') {
                s.parse::<IpNet>().ok().map(|n| n.trunc())
            } else {
                s.parse::<IpAddr>()
                    .ok()
                    .map(|ip| IpNet::from(canonical(ip)))
            };
            match net {
                Some(n) => nets.push(canonical_net(n)),
                None => {
                    return Err(BadEntry {
                        index,
                        entry: e.as_ref().to_string(),
                    })
                }
            }
        }
        Ok(Self { nets })
    }

    /// Whether `ip` is inside any network of the set.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.nets.len()
    }

    /// The entries in canonical form, for status and diffs.
    pub fn to_strings(&self) -> Vec<String> {
        self.nets.iter().map(ToString::to_string).collect()
    }
}

/// `::ffff:a.b.c.d` → `a.b.c.d`; everything else unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

fn canonical_net(n: IpNet) -> IpNet {
    match n {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(IpNet::V4)
                .unwrap_or(n),
            None => n,
        },
        other => other,
    }
}

/// The address a client is counted under: IPv4 as is, IPv6 by its /64 (one host usually
/// owns a whole /64, so per-address keys would let it rotate past any limit).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => Ipv6Net::new(v6, 64)
            .map(|n| IpAddr::V6(n.network()))
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn membership_table() {
        let set = IpSet::parse(&[
            "10.0.0.0/8",
            "192.168.1.7",
            "fd00::/8",
            "::1",
            "100.64.0.0/10",
            "::ffff:203.0.113.0/120",
        ])
        .unwrap();
        let cases = [
            ("10.1.2.3", true),
            ("11.0.0.1", false),
            ("192.168.1.7", true),
            ("192.168.1.8", false),
            ("fd12:3456::1", true),
            ("fe80::1", false),
            ("::1", true),
            ("127.0.0.1", false),
            ("100.100.1.1", true),
            ("100.128.0.1", false),
            ("::ffff:10.9.9.9", true),
            ("203.0.113.9", true),
            ("::ffff:203.0.113.9", true),
        ];
        for (addr, want) in cases {
            assert_eq!(set.contains(ip(addr)), want, "{addr}");
        }
    }

    #[test]
    fn bad_entries_are_named() {
        for (list, bad) in [
            (vec!["10.0.0.0/8", "10.0.0.300"], 1),
            (vec!["10.0.0.0/33"], 0),
            (vec!["::1", "fd00::/129"], 1),
            (vec!["localhost"], 0),
            (vec!["", "1.2.3.4"], 0),
        ] {
            let e = IpSet::parse(&list).unwrap_err();
            assert_eq!(e.index, bad, "{list:?}");
            assert_eq!(e.entry, list[bad]);
        }
    }

    #[test]
    fn host_bits_are_dropped() {
        let set = IpSet::parse(&["10.1.2.3/16"]).unwrap();
        assert_eq!(set.to_strings(), vec!["10.1.0.0/16"]);
        assert!(set.contains(ip("10.1.200.1")));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_slash_64() {
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            client_key(ip("2001:db8:1:2:ffff::9")),
            client_key(ip("2001:db8:1:2::1"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:3::1")),
            client_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(client_key(ip("198.18.0.9")), ip("198.18.0.9"));
        assert_eq!(client_key(ip("::ffff:198.18.0.9")), ip("198.18.0.9"));
    }
}
