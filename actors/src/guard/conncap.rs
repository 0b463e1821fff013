//! The cap on open TCP connections, checked at `accept` before a byte is read: a total below
//! the process's open-file budget (so a flood of idle sockets cannot take every descriptor
//! and lock out `/healthz`, admins and the audit log), a reserve inside that total that only
//! loopback peers may use (local health checks, `openclaw status`, SSH tunnels and the
//! Tailscale proxy arrive on loopback), and a per-address cap for remote peers that are not
//! trusted proxies (a trusted proxy carries many clients on one address; the pre-auth cap
//! and the rate limit see through it).
//!
//! [`decide`] is pure; [`ConnTable`] holds the counts and hands out permits that release on
//! drop. The permit travels with the socket: through hyper, the upgrade and the session, so
//! a connection counts until its last owner lets go of it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::shared::lock;

/// Default `gateway.connections.perAddress`: open connections from one remote address.
pub const DEFAULT_PER_ADDRESS: u32 = 256;
/// Default `gateway.connections.loopbackReserve`: slots of the total only loopback may use.
pub const DEFAULT_LOOPBACK_RESERVE: u32 = 32;
/// Descriptors kept for the process itself (listeners, the audit and log files, the
/// runtime, ssh and tailscale pipes, state files) before any go to connections.
pub const MIN_INTERNAL_FDS: u64 = 64;

/// `gateway.connections`, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// `gateway.connections.max`; `None`: as many as the open-file budget allows.
    pub max: Option<u32>,
    /// `gateway.connections.perAddress`.
    pub per_address: u32,
    /// `gateway.connections.loopbackReserve`.
    pub loopback_reserve: u32,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            max: None,
            per_address: DEFAULT_PER_ADDRESS,
            loopback_reserve: DEFAULT_LOOPBACK_RESERVE,
        }
    }
}

/// How the cap treats a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerClass {
    /// A loopback peer: may use the reserve; no per-address cap (everything local shares
    /// 127.0.0.1).
    Loopback,
    /// A trusted proxy (`gateway.trustedProxies`): no per-address cap, no reserve.
    Proxy,
    /// Anyone else: the per-address cap and the total minus the reserve.
    Remote,
}

/// Why a connection is refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnRefusal {
    /// The total (for this class of peer) is reached.
    Full {
        /// The ceiling that applied.
        limit: u32,
    },
    /// The address has `limit` connections open.
    PerAddress {
        /// The address.
        ip: IpAddr,
        /// `gateway.connections.perAddress`.
        limit: u32,
    },
}

/// What the per-address cap counts: an IPv4 address (also when IPv4-mapped), or an IPv6
/// /64 (one subscriber's prefix, as the rate limiter keys it).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// The connection ceiling that an open-file soft limit of `nofile` leaves room for.
pub fn fd_budget(nofile: u64) -> u32 {
    let internal = MIN_INTERNAL_FDS.max(nofile / 16);
    nofile.saturating_sub(internal).min(u64::from(u32::MAX)) as u32
}

/// The total in force: the configured max, never above the open-file budget.
pub fn effective_max(limits: &ConnLimits, budget: u32) -> u32 {
    limits.max.map_or(budget, |m| m.min(budget))
}

/// Whether one more connection may open, given `total` open now and `from_addr` open from
/// its address. Pure.
pub fn decide(
    total: u32,
    from_addr: u32,
    ip: IpAddr,
    class: PeerClass,
    limits: &ConnLimits,
    budget: u32,
) -> Result<(), ConnRefusal> {
    let max = effective_max(limits, budget);
    let ceiling = match class {
        PeerClass::Loopback => max,
        // The reserve never takes the whole total.
        PeerClass::Proxy | PeerClass::Remote => {
            max.saturating_sub(limits.loopback_reserve.min(max / 2))
        }
    };
    if total >= ceiling {
        return Err(ConnRefusal::Full { limit: ceiling });
    }
    if class == PeerClass::Remote && from_addr >= limits.per_address {
        return Err(ConnRefusal::PerAddress {
            ip,
            limit: limits.per_address,
        });
    }
    Ok(())
}

/// Open connections: the total and the count per remote address.
#[derive(Debug)]
pub struct ConnTable {
    budget: u32,
    counts: Mutex<Counts>,
    /// Connections refused because the total was reached.
    pub refused_full: AtomicU64,
    /// Connections refused by the per-address cap.
    pub refused_per_address: AtomicU64,
}

#[derive(Debug, Default)]
struct Counts {
    total: u32,
    by_addr: HashMap<IpAddr, u32>,
}

/// One open connection; released when the last clone drops.
#[derive(Debug)]
pub struct ConnPermit {
    table: Arc<ConnTable>,
    /// The address counted per address (remote peers only).
    addr: Option<IpAddr>,
}

// === impl ConnTable ===

impl ConnTable {
    /// A table for a process whose open-file soft limit is `nofile`.
    pub fn new(nofile: u64) -> Self {
        Self {
            budget: fd_budget(nofile),
            counts: Mutex::default(),
            refused_full: AtomicU64::new(0),
            refused_per_address: AtomicU64::new(0),
        }
    }

    /// A table sized by this process's open-file soft limit (1024 when it cannot be read).
    pub fn for_this_process() -> Self {
        let nofile = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(1024);
        Self::new(nofile)
    }

    /// The connection ceiling the open-file limit allows.
    pub fn budget(&self) -> u32 {
        self.budget
    }

    /// Counts a new connection from `ip`, or says why it may not open.
    pub fn try_open(
        self: &Arc<Self>,
        ip: IpAddr,
        class: PeerClass,
        limits: &ConnLimits,
    ) -> Result<ConnPermit, ConnRefusal> {
        let ip = address_key(ip);
        let mut c = lock(&self.counts);
        let from_addr = match class {
            PeerClass::Remote => c.by_addr.get(&ip).copied().unwrap_or(0),
            _ => 0,
        };
        if let Err(r) = decide(c.total, from_addr, ip, class, limits, self.budget) {
            let counter = match r {
                ConnRefusal::Full { .. } => &self.refused_full,
                ConnRefusal::PerAddress { .. } => &self.refused_per_address,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            return Err(r);
        }
        c.total += 1;
        let addr = (class == PeerClass::Remote).then(|| {
            *c.by_addr.entry(ip).or_insert(0) += 1;
            ip
        });
        Ok(ConnPermit {
            table: self.clone(),
            addr,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> u32 {
        lock(&self.counts).total
    }

    /// Remote addresses tracked now.
    pub fn addresses(&self) -> usize {
        lock(&self.counts).by_addr.len()
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut c = lock(&self.table.counts);
        c.total = c.total.saturating_sub(1);
        if let Some(ip) = self.addr {
            if let Some(n) = c.by_addr.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.by_addr.remove(&ip);
                }
            }
        }
    }
}

// === impl ConnRefusal ===

impl ConnRefusal {
    /// The raw HTTP answer written to a refused socket before it is closed (the request
    /// is never read: this costs no buffer).
    pub fn http_answer(&self) -> Vec<u8> {
        let (status, body) = match self {
            ConnRefusal::Full { limit } => (
                "503 Service Unavailable",
                format!(
                    "the gateway is at its connection limit ({limit} open; \
                     gateway.connections.max and the open-file limit); try again later\n"
                ),
            ),
            ConnRefusal::PerAddress { ip, limit } => (
                "429 Too Many Requests",
                format!(
                    "too many connections from {}{} (limit {limit}, \
                     gateway.connections.perAddress)\n",
                    ip,
                    if ip.is_ipv6() { "/64" } else { "" }
                ),
            ),
        };
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 5\r\n\
             Cache-Control: no-store\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    /// A short label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ConnRefusal::Full { .. } => "connection_cap",
            ConnRefusal::PerAddress { .. } => "per_address_cap",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn budget_keeps_descriptors_for_the_process() {
        assert_eq!(fd_budget(1024), 960);
        assert_eq!(fd_budget(256), 192);
        assert_eq!(fd_budget(10), 0);
        assert_eq!(fd_budget(1 << 20), (1 << 20) - (1 << 16));
        let l = ConnLimits {
            max: Some(100_000),
            ..Default::default()
        };
        assert_eq!(effective_max(&l, 960), 960, "never above the budget");
        assert_eq!(effective_max(&ConnLimits::default(), 960), 960);
    }

    #[test]
    fn decide_table() {
        let l = ConnLimits {
            max: Some(100),
            per_address: 10,
            loopback_reserve: 20,
        };
        let remote = ip("198.18.0.2");
        let lo = ip("127.0.0.1");
        use PeerClass::*;
        // (open, from this address, address, class, verdict)
        type Case = (u32, u32, IpAddr, PeerClass, Result<(), ConnRefusal>);
        let cases: &[Case] = &[
            (0, 0, remote, Remote, Ok(())),
            (79, 9, remote, Remote, Ok(())),
            (80, 0, remote, Remote, Err(ConnRefusal::Full { limit: 80 })),
            (80, 0, lo, Loopback, Ok(())),
            (99, 0, lo, Loopback, Ok(())),
            (100, 0, lo, Loopback, Err(ConnRefusal::Full { limit: 100 })),
            (
                5,
                10,
                remote,
                Remote,
                Err(ConnRefusal::PerAddress {
                    ip: remote,
                    limit: 10,
                }),
            ),
            (5, 10, remote, Proxy, Ok(())),
            (80, 0, remote, Proxy, Err(ConnRefusal::Full { limit: 80 })),
        ];
        for (total, from, ip, class, want) in cases {
            assert_eq!(
                decide(*total, *from, *ip, *class, &l, 1000),
                *want,
                "{total} {from} {class:?}"
            );
        }
        // A reserve larger than half the total leaves remote peers half.
        let greedy = ConnLimits {
            max: Some(10),
            per_address: 10,
            loopback_reserve: 100,
        };
        assert_eq!(
            decide(5, 0, remote, Remote, &greedy, 1000),
            Err(ConnRefusal::Full { limit: 5 })
        );
    }

    #[test]
    fn permits_count_and_release() {
        let t = Arc::new(ConnTable::new(64 + 40));
        assert_eq!(t.budget(), 40);
        let l = ConnLimits {
            max: None,
            per_address: 3,
            loopback_reserve: 10,
        };
        let a = ip("198.18.0.2");
        let held: Vec<_> = (0..3)
            .map(|_| t.try_open(a, PeerClass::Remote, &l).unwrap())
            .collect();
        assert!(matches!(
            t.try_open(a, PeerClass::Remote, &l),
            Err(ConnRefusal::PerAddress { .. })
        ));
        assert_eq!(t.refused_per_address.load(Ordering::Relaxed), 1);
        let lo: Vec<_> = (0..37)
            .map(|_| {
                t.try_open(ip("127.0.0.1"), PeerClass::Loopback, &l)
                    .unwrap()
            })
            .collect();
        assert_eq!(t.open(), 40);
        assert!(matches!(
            t.try_open(ip("127.0.0.1"), PeerClass::Loopback, &l),
            Err(ConnRefusal::Full { limit: 40 })
        ));
        drop(held);
        assert_eq!(t.addresses(), 0, "released addresses leave the table");
        drop(lo);
        assert_eq!(t.open(), 0);
    }

    #[test]
    fn ipv6_counts_per_64() {
        let t = Arc::new(ConnTable::new(1000));
        let l = ConnLimits {
            max: None,
            per_address: 2,
            loopback_reserve: 0,
        };
        let _a = t
            .try_open(ip("2001:db8::1"), PeerClass::Remote, &l)
            .unwrap();
        let _b = t
            .try_open(ip("2001:db8::ffff:2"), PeerClass::Remote, &l)
            .unwrap();
        let r = t
            .try_open(ip("2001:db8::3"), PeerClass::Remote, &l)
            .unwrap_err();
        assert_eq!(
            r,
            ConnRefusal::PerAddress {
                ip: ip("2001:db8::"),
                limit: 2
            }
        );
        assert!(String::from_utf8(r.http_answer())
            .unwrap()
            .contains("from 2001:db8::/64 (limit 2"));
        assert!(t
            .try_open(ip("2001:db8:0:1::1"), PeerClass::Remote, &l)
            .is_ok());
        // IPv4-mapped counts as the IPv4 address.
        let _c = t.try_open(ip("198.18.0.9"), PeerClass::Remote, &l).unwrap();
        let _d = t
            .try_open(ip("::ffff:198.18.0.9"), PeerClass::Remote, &l)
            .unwrap();
        assert!(t.try_open(ip("198.18.0.9"), PeerClass::Remote, &l).is_err());
    }

    #[test]
    fn refusal_answers_are_complete_http() {
        for r in [
            ConnRefusal::Full { limit: 7 },
            ConnRefusal::PerAddress {
                ip: ip("198.18.0.2"),
                limit: 3,
            },
        ] {
            let a = String::from_utf8(r.http_answer()).unwrap();
            let (head, body) = a.split_once("\r\n\r\n").unwrap();
            assert!(
                head.contains(&format!("Content-Length: {}", body.len())),
                "{a}"
            );
            assert!(body.contains("gateway.connections"), "{a}");
        }
    }
}
