//! Who the client is when a proxy forwards it (PROTOCOL §5 "Proxy attribution", RUNTIME-NOTES
//! §7.3). Forwarded headers count only from a peer in `gateway.trustedProxies`; the client is
//! the right-most hop that is not itself a trusted proxy. Headers from anyone else are refused
//! (`proxy_attribution_required`), never ignored and never treated as local. Pure: no I/O.

use std::net::{IpAddr, SocketAddr};

use super::ipset::{canonical, IpSet};

/// The forwarding headers of one request, as sent (every occurrence, in order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarding {
    /// `X-Forwarded-For` values.
    pub xff: Vec<String>,
    /// `Forwarded` values (RFC 7239).
    pub forwarded: Vec<String>,
    /// `X-Real-IP`.
    pub real_ip: Option<String>,
    /// Any other `X-Forwarded-*` header (host, proto, port…).
    pub other: bool,
    /// Any `Tailscale-*` header (user, funnel): meaningful only on the managed listener,
    /// refused like forwarding headers from anyone but a trusted proxy elsewhere.
    pub tailscale: bool,
}

/// Where a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribution {
    /// No forwarding headers: the TCP peer is the client.
    Direct(IpAddr),
    /// Through a trusted proxy.
    Proxied {
        /// The client, per the proxy.
        client: IpAddr,
        /// The proxy (TCP peer).
        proxy: IpAddr,
    },
}

/// Why a forwarded request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardError {
    /// Forwarding headers from a peer that is not a trusted proxy.
    UntrustedProxy(IpAddr),
    /// A trusted proxy that did not say who the client is.
    NoClient(IpAddr),
    /// A hop that is not an address.
    Malformed(String),
}

// === impl Forwarding ===

impl Forwarding {
    /// Whether any forwarding header is present.
    pub fn present(&self) -> bool {
        !self.xff.is_empty()
            || !self.forwarded.is_empty()
            || self.real_ip.is_some()
            || self.other
            || self.tailscale
    }

    /// The hops, left (original client) to right (nearest proxy): `X-Forwarded-For` when
    /// sent, else the `for=` parameters of `Forwarded`, else `X-Real-IP` if allowed.
    fn hops(&self, real_ip_fallback: bool) -> Result<Vec<IpAddr>, ForwardError> {
        let list: Vec<&str> = if !self.xff.is_empty() {
            self.xff.iter().flat_map(|v| v.split(',')).collect()
        } else if !self.forwarded.is_empty() {
            self.forwarded
                .iter()
                .flat_map(|v| v.split(','))
                .filter_map(|el| {
                    el.split(';').find_map(|kv| {
                        let (k, v) = kv.split_once('=')?;
                        k.trim().eq_ignore_ascii_case("for").then_some(v)
                    })
                })
                .collect()
        } else if real_ip_fallback {
            self.real_ip.iter().map(String::as_str).collect()
        } else {
            Vec::new()
        };
        list.into_iter().map(parse_hop).collect()
    }
}

impl ForwardError {
    /// One line for the HTTP body, the log and the audit event.
    pub fn describe(&self) -> String {
        match self {
            ForwardError::UntrustedProxy(p) => format!(
                "proxy_attribution_required: forwarded headers from {p}, which is not in \
                 gateway.trustedProxies (add the proxy's address there, or stop sending \
                 X-Forwarded-*/Forwarded/X-Real-IP)"
            ),
            ForwardError::NoClient(p) => format!(
                "proxy_attribution_required: trusted proxy {p} did not send X-Forwarded-For \
                 or Forwarded for= (set gateway.allowRealIpFallback to accept X-Real-IP)"
            ),
            ForwardError::Malformed(h) => {
                format!("bad forwarded header: {h:?} is not an IP address")
            }
        }
    }
}

/// One hop: `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:443`, `"[2001:db8::1]"`, `2001:db8::1`.
fn parse_hop(raw: &str) -> Result<IpAddr, ForwardError> {
    let s = raw.trim().trim_matches('"');
    let bad = || ForwardError::Malformed(raw.trim().chars().take(64).collect());
    if let Some(rest) = s.strip_prefix('[') {
        let inner = rest.split(']').next().ok_or_else(bad)?;
        return inner.parse().map(canonical).map_err(|_| bad());
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(canonical(ip));
    }
    s.parse::<SocketAddr>()
        .map(|a| canonical(a.ip()))
        .map_err(|_| bad())
}

/// Attributes a request. `peer` is the TCP peer.
pub fn attribute(
    peer: IpAddr,
    headers: &Forwarding,
    trusted: &IpSet,
    real_ip_fallback: bool,
) -> Result<Attribution, ForwardError> {
    let peer = canonical(peer);
    if !headers.present() {
        return Ok(Attribution::Direct(peer));
    }
    if !trusted.contains(peer) {
        return Err(ForwardError::UntrustedProxy(peer));
    }
    let hops = headers.hops(real_ip_fallback)?;
    let Some(first) = hops.first().copied() else {
        return Err(ForwardError::NoClient(peer));
    };
    let client = hops
        .iter()
        .rev()
        .copied()
        .find(|h| !trusted.contains(*h))
        .unwrap_or(first);
    Ok(Attribution::Proxied {
        client,
        proxy: peer,
    })
}

// === impl Attribution ===

impl Attribution {
    /// The client address.
    pub fn client(&self) -> IpAddr {
        match *self {
            Attribution::Direct(ip) => ip,
            Attribution::Proxied { client, .. } => client,
        }
    }

    /// Came through a proxy.
    pub fn proxied(&self) -> bool {
        matches!(self, Attribution::Proxied { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(v: &[&str]) -> Forwarding {
        Forwarding {
            xff: v.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn trust_table() {
        let trusted = IpSet::parse(&["127.0.0.1", "10.0.0.0/8"]).unwrap();
        let none = Forwarding::default();
        type Case<'a> = (&'a str, Forwarding, Result<Attribution, ForwardError>);
        let cases: Vec<Case> = vec![
            // No headers: the peer is the client, trusted or not.
            (
                "198.18.0.5",
                none.clone(),
                Ok(Attribution::Direct(ip("198.18.0.5"))),
            ),
            ("127.0.0.1", none, Ok(Attribution::Direct(ip("127.0.0.1")))),
            // Headers from an untrusted peer: refused, even from loopback.
            (
                "198.18.0.5",
                xff(&["1.2.3.4"]),
                Err(ForwardError::UntrustedProxy(ip("198.18.0.5"))),
            ),
            (
                "::1",
                xff(&["1.2.3.4"]),
                Err(ForwardError::UntrustedProxy(ip("::1"))),
            ),
            (
                "127.0.0.2",
                Forwarding {
                    other: true,
                    ..Default::default()
                },
                Err(ForwardError::UntrustedProxy(ip("127.0.0.2"))),
            ),
            // Right-most untrusted hop; spoofed left-most entries are ignored.
            (
                "127.0.0.1",
                xff(&["6.6.6.6, 203.0.113.7, 10.1.1.1"]),
                Ok(Attribution::Proxied {
                    client: ip("203.0.113.7"),
                    proxy: ip("127.0.0.1"),
                }),
            ),
            // Several header lines are one list.
            (
                "127.0.0.1",
                xff(&["6.6.6.6", "203.0.113.8"]),
                Ok(Attribution::Proxied {
                    client: ip("203.0.113.8"),
                    proxy: ip("127.0.0.1"),
                }),
            ),
            // Every hop trusted: the left-most is the client.
            (
                "10.0.0.1",
                xff(&["10.2.2.2, 10.3.3.3"]),
                Ok(Attribution::Proxied {
                    client: ip("10.2.2.2"),
                    proxy: ip("10.0.0.1"),
                }),
            ),
            // Ports and brackets.
            (
                "127.0.0.1",
                xff(&["[2001:db8::5]:4711"]),
                Ok(Attribution::Proxied {
                    client: ip("2001:db8::5"),
                    proxy: ip("127.0.0.1"),
                }),
            ),
            (
                "127.0.0.1",
                xff(&["203.0.113.9:1234"]),
                Ok(Attribution::Proxied {
                    client: ip("203.0.113.9"),
                    proxy: ip("127.0.0.1"),
                }),
            ),
            // Garbage is refused, not skipped.
            (
                "127.0.0.1",
                xff(&["unknown"]),
                Err(ForwardError::Malformed("unknown".into())),
            ),
            (
                "127.0.0.1",
                xff(&["1.2.3.4, "]),
                Err(ForwardError::Malformed(String::new())),
            ),
        ];
        for (peer, h, want) in cases {
            assert_eq!(
                attribute(ip(peer), &h, &trusted, false),
                want,
                "{peer} {h:?}"
            );
        }
    }

    #[test]
    fn forwarded_header_and_real_ip() {
        let trusted = IpSet::parse(&["127.0.0.1"]).unwrap();
        let fwd = Forwarding {
            forwarded: vec![
                r#"for=203.0.113.60;proto=https, For="[2001:db8:cafe::17]:4711""#.into(),
            ],
            ..Default::default()
        };
        assert_eq!(
            attribute(ip("127.0.0.1"), &fwd, &trusted, false)
                .unwrap()
                .client(),
            ip("2001:db8:cafe::17")
        );
        let real = Forwarding {
            real_ip: Some("203.0.113.61".into()),
            ..Default::default()
        };
        assert_eq!(
            attribute(ip("127.0.0.1"), &real, &trusted, false),
            Err(ForwardError::NoClient(ip("127.0.0.1")))
        );
        assert_eq!(
            attribute(ip("127.0.0.1"), &real, &trusted, true)
                .unwrap()
                .client(),
            ip("203.0.113.61")
        );
        // Proto alone from a trusted proxy names no client.
        let proto = Forwarding {
            other: true,
            ..Default::default()
        };
        assert!(matches!(
            attribute(ip("127.0.0.1"), &proto, &trusted, true),
            Err(ForwardError::NoClient(_))
        ));
    }

    #[test]
    fn mapped_peer_matches_ipv4_list() {
        let trusted = IpSet::parse(&["127.0.0.1"]).unwrap();
        let got = attribute(
            ip("::ffff:127.0.0.1"),
            &xff(&["198.18.0.9"]),
            &trusted,
            false,
        );
        assert_eq!(got.unwrap().client(), ip("198.18.0.9"));
    }
}
