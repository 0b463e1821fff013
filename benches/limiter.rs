//! Cost of the admission checks on the hot path, against a baseline measured in the same run
//! (an uncontended `Mutex` lock + increment: the floor for any locked operation), and the
//! limiter's memory per tracked key.
//!
//! Run: `cargo bench --bench limiter` (criterion; add `-- --quick` for a short run). The
//! memory line is printed first: bytes held by the table's maps / keys, at 65,536 keys.

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use openclaw_actors::guard::forwarded::{attribute, Forwarding};
use openclaw_actors::guard::ipset::IpSet;
use openclaw_actors::guard::limiter::{LimitKey, Limiter, RateConfig, DEFAULT_MAX_KEYS};
use openclaw_actors::guard::Policy;

fn cfg(max_requests: u32) -> RateConfig {
    RateConfig {
        max_requests,
        window: Duration::from_secs(60),
        max_connections: 10,
        exempt_loopback: false,
    }
}

fn key(n: u32) -> LimitKey {
    LimitKey::Ip(IpAddr::from(n.to_be_bytes()))
}

fn memory_per_key() {
    let t0 = Instant::now();
    let l = Limiter::new(cfg(100), DEFAULT_MAX_KEYS, t0);
    for n in 0..DEFAULT_MAX_KEYS as u32 {
        let _ = l.check(&key(0x0A00_0000 + n), t0);
    }
    let (bytes, max) = l.memory();
    println!(
        "limiter memory: {} keys, {} bytes = {:.1} B/key (bound {} bytes = {:.2} MiB)",
        l.len(),
        bytes,
        bytes as f64 / l.len() as f64,
        max,
        max as f64 / 1048576.0
    );
}

fn checks(c: &mut Criterion) {
    let mut g = c.benchmark_group("admission");
    let m = Mutex::new(0u64);
    g.bench_function("baseline: uncontended mutex lock+inc", |b| {
        b.iter(|| *m.lock().unwrap() += 1)
    });
    let t0 = Instant::now();
    let one = Limiter::new(cfg(u32::MAX), 1024, t0);
    let k = key(1);
    g.bench_function("limiter check, allowed", |b| {
        b.iter(|| black_box(one.check(black_box(&k), t0)))
    });
    let none = Limiter::new(cfg(1), 1024, t0);
    let _ = none.check(&k, t0);
    g.bench_function("limiter check, denied", |b| {
        b.iter(|| black_box(none.check(black_box(&k), t0)))
    });
    let full = Limiter::new(cfg(u32::MAX), DEFAULT_MAX_KEYS, t0);
    for n in 0..DEFAULT_MAX_KEYS as u32 {
        let _ = full.check(&key(n), t0);
    }
    let keys: Vec<LimitKey> = (0..DEFAULT_MAX_KEYS as u32).map(key).collect();
    let mut i = 0usize;
    g.bench_function("limiter check, 65,536 keys tracked", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            black_box(full.check(&keys[i], t0))
        })
    });
    let shared = Arc::new(Limiter::new(cfg(u32::MAX), 1024, t0));
    g.bench_function("limiter open+release connection", |b| {
        b.iter(|| drop(black_box(shared.open(&k, t0))))
    });
    let policy = Policy {
        allowed: Some(
            IpSet::parse(&["10.0.0.0/8", "192.168.0.0/16", "fd00::/8", "100.64.0.0/10"]).unwrap(),
        ),
        allow_loopback: true,
        ..Default::default()
    };
    let peer: IpAddr = "192.168.7.9".parse().unwrap();
    let direct = Forwarding::default();
    let no_headers = |_: &str| None;
    g.bench_function("admit: 4-entry allowlist, direct", |b| {
        b.iter(|| black_box(policy.admit(black_box(peer), &direct, &no_headers)))
    });
    let trusted = IpSet::parse(&["127.0.0.1", "10.0.0.0/8"]).unwrap();
    let fwd = Forwarding {
        xff: vec!["6.6.6.6, 203.0.113.7, 10.1.1.1".into()],
        ..Default::default()
    };
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    g.bench_function("attribute: 3-hop X-Forwarded-For", |b| {
        b.iter(|| black_box(attribute(black_box(lo), &fwd, &trusted, false)))
    });
    g.finish();
}

criterion_group!(benches, checks);

fn main() {
    memory_per_key();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
