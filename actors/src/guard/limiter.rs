//! The request rate limit (`gateway.rateLimit`): one token bucket per client key holding
//! `maxRequests` tokens and refilling `maxRequests` per `windowMs`, plus the client's count of
//! open connections for `maxConnections`. Pure apart from its locks: `now` is passed in.
//!
//! Hot path: a session checks its key with one shard lock (no actor round trip); the
//! RateLimiter actor owns the table's upkeep (pruning idle keys, reconfiguration).
//!
//! Memory is bounded: at most `max_keys` entries (default 65,536, about 100 bytes each with
//! the map's overhead, so under 7 MiB). An idle key — full bucket, no open connection — is
//! indistinguishable from an absent one, so it can be dropped at any time. When a shard is
//! full and nothing in it is idle, keys without an entry share that shard's overflow bucket:
//! a flood of fresh addresses then limits itself, and clients that already hold an entry are
//! not affected.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::shared::lock;

/// Default cap on tracked keys.
pub const DEFAULT_MAX_KEYS: usize = 65_536;
const SHARDS: usize = 16;

/// `gateway.rateLimit`, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateConfig {
    /// Requests per window per client.
    pub max_requests: u32,
    /// The window.
    pub window: Duration,
    /// Open connections per client.
    pub max_connections: u32,
    /// Loopback peers are not limited.
    pub exempt_loopback: bool,
}

impl Default for RateConfig {
    fn default() -> Self {
        Self {
            max_requests: 100,
            window: Duration::from_secs(60),
            max_connections: 10,
            exempt_loopback: false,
        }
    }
}

/// Who is counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// A client address (IPv6 by its /64; see [`super::ipset::client_key`]).
    Ip(IpAddr),
    /// An identity named by a trusted proxy.
    User(Arc<str>),
}

impl std::fmt::Display for LimitKey {
    /// As written in the audit log: the address, or `user:<name>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitKey::Ip(ip) => write!(f, "{ip}"),
            LimitKey::User(u) => write!(f, "user:{u}"),
        }
    }
}

/// A refused request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied {
    /// When one token will be back.
    pub retry_after: Duration,
    /// First refusal since the key was last allowed (audit once per burst).
    pub first: bool,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last_ns: u64,
    conns: u32,
    reported: bool,
}

#[derive(Debug)]
struct Shard {
    map: HashMap<LimitKey, Bucket>,
    overflow: Bucket,
    /// No eviction scan before this (a scan that freed nothing is not repeated at once).
    next_scan_ns: u64,
}

/// The table.
#[derive(Debug)]
pub struct Limiter {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    epoch: Instant,
    max_requests: AtomicU32,
    window_ns: AtomicU64,
    max_connections: AtomicU32,
    per_shard: usize,
    keys: AtomicUsize,
    peak: AtomicUsize,
    /// Requests refused since start.
    pub denied: AtomicU64,
    /// Upgrades refused for `maxConnections` since start.
    pub conns_denied: AtomicU64,
}

/// An open connection counted against its key; released on drop.
#[derive(Debug)]
pub struct ConnPermit {
    limiter: Arc<Limiter>,
    shard: usize,
    /// `None`: counted in the shard's overflow bucket.
    key: Option<LimitKey>,
}

// === impl Bucket ===

impl Bucket {
    fn full(cap: f64, now_ns: u64) -> Self {
        Self {
            tokens: cap,
            last_ns: now_ns,
            conns: 0,
            reported: false,
        }
    }

    fn refill(&mut self, now_ns: u64, cap: f64, window_ns: u64) {
        let elapsed = now_ns.saturating_sub(self.last_ns) as f64;
        self.tokens = (self.tokens + elapsed * cap / window_ns as f64).min(cap);
        self.last_ns = self.last_ns.max(now_ns);
    }

    /// Idle: nothing would change if it were dropped and recreated full.
    fn idle(&self, now_ns: u64, cap: f64, window_ns: u64) -> bool {
        let mut b = *self;
        b.refill(now_ns, cap, window_ns);
        b.conns == 0 && b.tokens >= cap
    }
}

// === impl Limiter ===

impl Limiter {
    /// A table for `cfg` holding at most `max_keys` keys.
    pub fn new(cfg: RateConfig, max_keys: usize, epoch: Instant) -> Self {
        let per_shard = max_keys.div_ceil(SHARDS).max(1);
        let cap = f64::from(cfg.max_requests.max(1));
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    map: HashMap::new(),
                    overflow: Bucket::full(cap, 0),
                    next_scan_ns: 0,
                })
            })
            .collect();
        let me = Self {
            shards,
            hasher: RandomState::new(),
            epoch,
            max_requests: AtomicU32::new(0),
            window_ns: AtomicU64::new(1),
            max_connections: AtomicU32::new(0),
            per_shard,
            keys: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            denied: AtomicU64::new(0),
            conns_denied: AtomicU64::new(0),
        };
        me.reconfigure(cfg);
        me
    }

    /// New limits for every key; buckets keep their state (clamped to the new size).
    pub fn reconfigure(&self, cfg: RateConfig) {
        self.max_requests
            .store(cfg.max_requests.max(1), Ordering::Relaxed);
        self.window_ns
            .store((cfg.window.as_nanos() as u64).max(1), Ordering::Relaxed);
        self.max_connections
            .store(cfg.max_connections, Ordering::Relaxed);
    }

    fn params(&self) -> (f64, u64) {
        (
            f64::from(self.max_requests.load(Ordering::Relaxed)),
            self.window_ns.load(Ordering::Relaxed),
        )
    }

    fn ns(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    fn shard_of(&self, key: &LimitKey) -> usize {
        (self.hasher.hash_one(key) as usize) % self.shards.len()
    }

    /// Runs `f` on the key's bucket (created full if absent; the overflow bucket when the
    /// shard is full). The bool says whether the overflow bucket was used.
    fn with_bucket<R>(
        &self,
        key: &LimitKey,
        now: Instant,
        f: impl FnOnce(&mut Bucket, f64, u64) -> R,
    ) -> (usize, bool, R) {
        let (cap, window_ns) = self.params();
        let now_ns = self.ns(now);
        let idx = self.shard_of(key);
        let mut guard = lock(&self.shards[idx]);
        let shard = &mut *guard;
        if !shard.map.contains_key(key) && shard.map.len() >= self.per_shard {
            if now_ns >= shard.next_scan_ns {
                let before = shard.map.len();
                shard.map.retain(|_, b| !b.idle(now_ns, cap, window_ns));
                self.keys
                    .fetch_sub(before - shard.map.len(), Ordering::Relaxed);
                if shard.map.len() >= self.per_shard {
                    // Nothing idle yet; the earliest any bucket can refill one token.
                    shard.next_scan_ns = now_ns + window_ns / cap as u64;
                }
            }
            if shard.map.len() >= self.per_shard {
                let b = &mut shard.overflow;
                b.refill(now_ns, cap, window_ns);
                return (idx, true, f(b, cap, window_ns));
            }
        }
        let b = shard.map.entry(key.clone()).or_insert_with(|| {
            let n = self.keys.fetch_add(1, Ordering::Relaxed) + 1;
            self.peak.fetch_max(n, Ordering::Relaxed);
            Bucket::full(cap, now_ns)
        });
        b.refill(now_ns, cap, window_ns);
        (idx, false, f(b, cap, window_ns))
    }

    /// Takes one token for `key`, or says when one will be back.
    pub fn check(&self, key: &LimitKey, now: Instant) -> Result<(), Denied> {
        let (_, _, r) = self.with_bucket(key, now, |b, cap, window_ns| {
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                b.reported = false;
                return Ok(());
            }
            let per_token_ns = window_ns as f64 / cap;
            let wait = ((1.0 - b.tokens) * per_token_ns).ceil() as u64;
            let first = !b.reported;
            b.reported = true;
            Err(Denied {
                retry_after: Duration::from_nanos(wait.max(1_000_000)),
                first,
            })
        });
        if r.is_err() {
            self.denied.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// Counts one more open connection for `key`, unless it already has `maxConnections`.
    pub fn open(self: &Arc<Self>, key: &LimitKey, now: Instant) -> Option<ConnPermit> {
        let max = self.max_connections.load(Ordering::Relaxed);
        let (shard, overflow, ok) = self.with_bucket(key, now, |b, _, _| {
            if b.conns >= max {
                return false;
            }
            b.conns += 1;
            true
        });
        if !ok {
            self.conns_denied.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(ConnPermit {
            limiter: self.clone(),
            shard,
            key: (!overflow).then(|| key.clone()),
        })
    }

    /// Drops idle keys and returns how many; gives memory back when the table shrank a lot.
    pub fn prune(&self, now: Instant) -> usize {
        let (cap, window_ns) = self.params();
        let now_ns = self.ns(now);
        let mut removed = 0;
        for s in self.shards.iter() {
            let mut s = lock(s);
            let before = s.map.len();
            s.map.retain(|_, b| !b.idle(now_ns, cap, window_ns));
            removed += before - s.map.len();
            self.keys.fetch_sub(before - s.map.len(), Ordering::Relaxed);
            if s.map.capacity() > 64 && s.map.len() < s.map.capacity() / 4 {
                s.map.shrink_to_fit();
            }
        }
        removed
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }

    /// The most keys tracked at once since start.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys this table will hold.
    pub fn max_keys(&self) -> usize {
        self.per_shard * self.shards.len()
    }

    /// Bytes held by the table's maps now (entries allocated, occupied or not), and the most
    /// they can reach at [`Self::max_keys`].
    pub fn memory(&self) -> (usize, usize) {
        let slot = std::mem::size_of::<(LimitKey, Bucket)>() + 1;
        let now = self
            .shards
            .iter()
            .map(|s| lock(s).map.capacity() * slot)
            .sum();
        // hashbrown keeps at most 7/8 of its buckets full and rounds up to a power of two.
        let per_shard_buckets = (self.per_shard * 8 / 7).next_power_of_two();
        (now, per_shard_buckets * slot * self.shards.len())
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut s = lock(&self.limiter.shards[self.shard]);
        let b = match &self.key {
            Some(k) => s.map.get_mut(k),
            None => Some(&mut s.overflow),
        };
        if let Some(b) = b {
            b.conns = b.conns.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max_requests: u32, window_ms: u64, max_connections: u32) -> RateConfig {
        RateConfig {
            max_requests,
            window: Duration::from_millis(window_ms),
            max_connections,
            exempt_loopback: false,
        }
    }

    fn ip(n: u32) -> LimitKey {
        LimitKey::Ip(IpAddr::from(n.to_be_bytes()))
    }

    #[test]
    fn the_101st_request_in_a_window_is_refused() {
        let t0 = Instant::now();
        let l = Limiter::new(cfg(100, 60_000, 10), 1024, t0);
        let k = ip(1);
        for i in 0..100 {
            assert!(l.check(&k, t0).is_ok(), "request {}", i + 1);
        }
        let d = l.check(&k, t0).unwrap_err();
        assert!(d.first);
        assert_eq!(d.retry_after, Duration::from_millis(600));
        assert!(
            !l.check(&k, t0).unwrap_err().first,
            "audited once per burst"
        );
        // Another client is not affected.
        assert!(l.check(&ip(2), t0).is_ok());
        // One token is back after window / maxRequests.
        assert!(l.check(&k, t0 + Duration::from_millis(599)).is_err());
        assert!(l.check(&k, t0 + Duration::from_millis(600)).is_ok());
        assert!(l.check(&k, t0 + Duration::from_millis(600)).is_err());
        // A whole idle window refills the bucket, never beyond maxRequests.
        let later = t0 + Duration::from_secs(600);
        for _ in 0..100 {
            assert!(l.check(&k, later).is_ok());
        }
        assert!(l.check(&k, later).is_err());
        assert_eq!(l.denied.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn retry_after_table() {
        // (maxRequests, windowMs, tokens used at t0, expected retry at t0 + 1 ms after exhaustion)
        for (max, window, want_ms) in [(1, 1000, 1000), (10, 1000, 100), (3, 60_000, 20_000)] {
            let t0 = Instant::now();
            let l = Limiter::new(cfg(max, window, 1), 16, t0);
            for _ in 0..max {
                l.check(&ip(9), t0).unwrap();
            }
            let d = l.check(&ip(9), t0).unwrap_err();
            assert_eq!(
                d.retry_after,
                Duration::from_millis(want_ms),
                "{max}/{window}"
            );
        }
    }

    #[test]
    fn connections_are_counted_and_released() {
        let t0 = Instant::now();
        let l = Arc::new(Limiter::new(cfg(100, 60_000, 2), 1024, t0));
        let k = LimitKey::User("alice".into());
        let a = l.open(&k, t0).unwrap();
        let b = l.open(&k, t0).unwrap();
        assert!(l.open(&k, t0).is_none());
        assert!(l.open(&ip(7), t0).is_some(), "others unaffected");
        drop(a);
        let c = l.open(&k, t0).unwrap();
        assert!(l.open(&k, t0).is_none());
        drop((b, c));
        assert!(l.open(&k, t0).is_some());
        assert_eq!(l.conns_denied.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn idle_keys_are_pruned_busy_ones_kept() {
        let t0 = Instant::now();
        let l = Arc::new(Limiter::new(cfg(10, 1000, 5), 1024, t0));
        l.check(&ip(1), t0).unwrap();
        let _held = l.open(&ip(2), t0).unwrap();
        l.check(&ip(3), t0 + Duration::from_millis(900)).unwrap();
        assert_eq!(l.len(), 3);
        // At t0+100 ms ip(1) has its token back; ip(3) does not yet.
        assert_eq!(l.prune(t0 + Duration::from_millis(100)), 1);
        assert_eq!(l.len(), 2);
        assert_eq!(
            l.prune(t0 + Duration::from_secs(5)),
            1,
            "ip(3) idle, ip(2) holds a connection"
        );
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn a_flood_of_fresh_keys_stays_bounded_and_spares_known_clients() {
        let t0 = Instant::now();
        let l = Limiter::new(cfg(100, 60_000, 10), 4096, t0);
        let legit = ip(0xC612_0001);
        l.check(&legit, t0).unwrap();
        for n in 0..100_000u32 {
            let _ = l.check(
                &ip(0x0A00_0000 + n),
                t0 + Duration::from_micros(u64::from(n)),
            );
        }
        assert!(l.len() <= l.max_keys(), "{} > {}", l.len(), l.max_keys());
        assert!(
            l.peak() <= l.max_keys() && l.peak() >= 4000,
            "peak {}",
            l.peak()
        );
        assert!(l.max_keys() <= 4096 + SHARDS);
        // The known client still has its own bucket: 99 tokens left.
        let t1 = t0 + Duration::from_millis(100);
        for _ in 0..99 {
            assert!(l.check(&legit, t1).is_ok());
        }
        // Flooders without an entry share a shard's overflow bucket and are refused.
        let refused = (200_000..201_000u32)
            .filter(|n| l.check(&ip(0x0A00_0000 + n), t1).is_err())
            .count();
        assert!(
            refused > 900,
            "only {refused} of 1000 fresh flood keys refused"
        );
    }

    #[test]
    fn reconfigure_applies_to_existing_keys() {
        let t0 = Instant::now();
        let l = Limiter::new(cfg(100, 60_000, 10), 64, t0);
        let k = ip(5);
        l.check(&k, t0).unwrap();
        l.reconfigure(cfg(2, 60_000, 10));
        l.check(&k, t0).unwrap();
        l.check(&k, t0).unwrap();
        assert!(l.check(&k, t0).is_err(), "clamped to the new maxRequests");
    }
}
