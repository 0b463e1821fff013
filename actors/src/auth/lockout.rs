//! Auth-failure lockout, the real gateway's rules (PROTOCOL §5): wrong credentials count
//! (missing ones do not) per key within a sliding window; `max_attempts` of them lock the
//! key out for `lockout`; a success resets it. Keys are the client IP (IPv6 by /64), or
//! `browser-origin:<origin>` for a loopback browser (an `Origin` header removes the loopback
//! exemption). Pure, with `now` passed in; memory is bounded by evicting idle keys and
//! capping the table.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Most keys tracked; past it the stalest key is evicted (an attacker rotating addresses
/// can only push out other idle keys, not grow memory).
pub const MAX_KEYS: usize = 65_536;

/// Settings (`gateway.auth.rateLimit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutConfig {
    /// Wrong attempts allowed in the window (default 10).
    pub max_attempts: u32,
    /// Sliding window (default 60 s).
    pub window: Duration,
    /// Lockout length (default 5 min).
    pub lockout: Duration,
    /// Loopback clients without an `Origin` are never locked out (default true).
    pub exempt_loopback: bool,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(300),
            exempt_loopback: true,
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
    last_seen: Option<Instant>,
}

/// The lockout table.
#[derive(Debug)]
pub struct Lockout {
    cfg: LockoutConfig,
    keys: HashMap<String, Entry>,
}

/// The key for a client: IPv4 address, IPv6 /64, or the browser origin on loopback.
/// `None` when the client is exempt.
pub fn key_for(cfg: &LockoutConfig, ip: IpAddr, origin: Option<&str>) -> Option<String> {
    if ip.is_loopback() {
        return match origin {
            Some(o) => Some(format!("browser-origin:{o}")),
            None if cfg.exempt_loopback => None,
            None => Some(format!("ip:{ip}")),
        };
    }
    Some(match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let net = ipnet::Ipv6Net::new(v6, 64)
                    .map(|n| n.trunc())
                    .unwrap_or_default();
                format!("ip:{net}")
            }
        },
    })
}

// === impl Lockout ===

impl Lockout {
    /// An empty table.
    pub fn new(cfg: LockoutConfig) -> Self {
        Self {
            cfg,
            keys: HashMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &LockoutConfig {
        &self.cfg
    }

    /// `Err(retry_after)` while `key` is locked out.
    pub fn check(&mut self, key: &str, now: Instant) -> Result<(), Duration> {
        match self.keys.get(key).and_then(|e| e.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Records a wrong credential; returns the failure count when this one starts a lockout.
    pub fn failure(&mut self, key: &str, now: Instant) -> Option<u32> {
        if !self.keys.contains_key(key) && self.keys.len() >= MAX_KEYS {
            self.evict(now);
        }
        let cfg = self.cfg;
        let e = self.keys.entry(key.to_string()).or_default();
        e.last_seen = Some(now);
        while e
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > cfg.window)
        {
            e.failures.pop_front();
        }
        e.failures.push_back(now);
        let n = e.failures.len() as u32;
        if n >= cfg.max_attempts && e.locked_until.is_none_or(|u| u <= now) {
            e.locked_until = Some(now + cfg.lockout);
            e.failures.clear();
            return Some(n);
        }
        None
    }

    /// A success resets the key.
    pub fn success(&mut self, key: &str) {
        self.keys.remove(key);
    }

    /// Keys tracked.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Drops keys that are neither locked nor have failures inside the window.
    pub fn prune(&mut self, now: Instant) {
        let cfg = self.cfg;
        self.keys.retain(|_, e| {
            let locked = e.locked_until.is_some_and(|u| u > now);
            let recent = e
                .failures
                .back()
                .is_some_and(|t| now.duration_since(*t) <= cfg.window);
            locked || recent
        });
    }

    /// Prunes, and if still full drops the stalest unlocked 1/16 of the keys in one pass.
    fn evict(&mut self, now: Instant) {
        self.prune(now);
        if self.keys.len() < MAX_KEYS {
            return;
        }
        let mut candidates: Vec<(Option<Instant>, String)> = self
            .keys
            .iter()
            .filter(|(_, e)| e.locked_until.is_none_or(|u| u <= now))
            .map(|(k, e)| (e.last_seen, k.clone()))
            .collect();
        let n = (MAX_KEYS / 16).min(candidates.len());
        if n == 0 {
            return;
        }
        candidates.select_nth_unstable(n - 1);
        for (_, k) in candidates.into_iter().take(n) {
            self.keys.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max: u32) -> LockoutConfig {
        LockoutConfig {
            max_attempts: max,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(300),
            exempt_loopback: true,
        }
    }

    #[test]
    fn locks_after_max_attempts_and_expires() {
        let t0 = Instant::now();
        let mut l = Lockout::new(cfg(3));
        assert_eq!(l.failure("k", t0), None);
        assert_eq!(l.failure("k", t0 + Duration::from_secs(1)), None);
        assert_eq!(l.failure("k", t0 + Duration::from_secs(2)), Some(3));
        assert_eq!(
            l.check("k", t0 + Duration::from_secs(3)),
            Err(Duration::from_secs(299))
        );
        assert_eq!(l.check("other", t0), Ok(()));
        assert_eq!(l.check("k", t0 + Duration::from_secs(303)), Ok(()));
    }

    #[test]
    fn window_slides_and_success_resets() {
        let t0 = Instant::now();
        let mut l = Lockout::new(cfg(3));
        l.failure("k", t0);
        l.failure("k", t0 + Duration::from_secs(10));
        // the first failure has left the 60 s window
        assert_eq!(l.failure("k", t0 + Duration::from_secs(61)), None);
        l.success("k");
        assert_eq!(l.failure("k", t0 + Duration::from_secs(62)), None);
        assert_eq!(l.failure("k", t0 + Duration::from_secs(63)), None);
        assert_eq!(l.failure("k", t0 + Duration::from_secs(64)), Some(3));
    }

    #[test]
    fn keys_and_exemptions() {
        let c = LockoutConfig::default();
        let v4: IpAddr = "198.18.0.7".parse().unwrap();
        let v6a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(key_for(&c, v4, None).as_deref(), Some("ip:198.18.0.7"));
        assert_eq!(
            key_for(&c, v6a, None),
            key_for(&c, v6b, None),
            "IPv6 keyed by /64"
        );
        assert_eq!(
            key_for(&c, v6a, None).as_deref(),
            Some("ip:2001:db8:1:2::/64")
        );
        assert_eq!(key_for(&c, lo, None), None, "loopback exempt by default");
        assert_eq!(
            key_for(&c, lo, Some("http://evil.example")).as_deref(),
            Some("browser-origin:http://evil.example")
        );
        let strict = LockoutConfig {
            exempt_loopback: false,
            ..c
        };
        assert_eq!(key_for(&strict, lo, None).as_deref(), Some("ip:127.0.0.1"));
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_keys() {
        let t0 = Instant::now();
        let mut l = Lockout::new(cfg(10));
        for i in 0..(MAX_KEYS as u32 + 5_000) {
            l.failure(&format!("ip:{i}"), t0 + Duration::from_micros(i as u64));
        }
        assert!(l.len() <= MAX_KEYS, "{}", l.len());
        l.prune(t0 + Duration::from_secs(120));
        assert!(l.is_empty());
    }
}
