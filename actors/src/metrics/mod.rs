//! Prometheus `/metrics` (text exposition, OpenMetrics flavour) through the official
//! `prometheus-client` crate. Almost every series is read at scrape time from numbers the
//! gateway keeps anyway (the `Counters`, the limiter, the audit stats, the tunnel, TLS,
//! Tailscale and node tables) by one [`Collector`], so the hot path pays nothing for them.
//! The only hot-path additions are per-method request counts and a latency histogram made
//! of atomics (no lock), indexed by the method's position in the method table, and
//! bounded counter maps for auth-failure reasons and actor restarts. Every label set is
//! bounded: methods come from the table (one `unknown` bucket for the rest), reasons and
//! actor names are capped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::shared::{lock, Counters, Hub, VERSION};

/// Latency buckets (seconds) of `openclaw_gateway_rpc_handler_seconds`.
pub const BUCKETS: [f64; 12] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// Most distinct labels kept in a counter map (auth-failure reasons, actor names); the
/// rest are counted under `other`.
const MAX_LABELS: usize = 64;

/// One method's errors and latency histogram (the request count is the buckets' sum, so a
/// request costs two relaxed atomic adds: its bucket and the sum).
#[derive(Debug, Default)]
pub struct MethodStat {
    errors: AtomicU64,
    sum_ns: AtomicU64,
    /// Non-cumulative counts per bucket; the last one is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
}

/// Numbers kept only for `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    /// By method-table position; the last slot counts unknown methods.
    methods: Vec<MethodStat>,
    names: Vec<&'static str>,
    /// Method name → slot (one hash per request instead of a scan of the table).
    index: std::collections::HashMap<&'static str, usize>,
    auth_failures: Mutex<BTreeMap<String, u64>>,
    actor_restarts: Mutex<BTreeMap<String, u64>>,
    /// Auth-failure lockouts.
    pub lockouts: AtomicU64,
    /// `/metrics` scrapes answered.
    pub scrapes: AtomicU64,
    /// `gateway.metrics.enabled: false` clears it: requests then skip the histogram.
    pub enabled: std::sync::atomic::AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let names: Vec<&'static str> = crate::session::methods::names();
        Self {
            methods: (0..=names.len()).map(|_| MethodStat::default()).collect(),
            index: names.iter().enumerate().map(|(i, n)| (*n, i)).collect(),
            names,
            auth_failures: Mutex::default(),
            actor_restarts: Mutex::default(),
            lockouts: AtomicU64::new(0),
            scrapes: AtomicU64::new(0),
            enabled: std::sync::atomic::AtomicBool::new(true),
        }
    }
}

fn bump_label(map: &Mutex<BTreeMap<String, u64>>, label: &str) {
    let mut m = lock(map);
    if let Some(n) = m.get_mut(label) {
        *n += 1;
    } else if m.len() < MAX_LABELS {
        m.insert(label.to_string(), 1);
    } else {
        *m.entry("other".into()).or_default() += 1;
    }
}

// === impl MethodStat ===

impl MethodStat {
    /// Requests answered (the sum of the buckets).
    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
}

// === impl Metrics ===

impl Metrics {
    /// The slot of a method (its table position; unknown methods share the last slot).
    pub fn slot(&self, method: &str) -> usize {
        self.index.get(method).copied().unwrap_or(self.names.len())
    }

    /// Records one answered request.
    pub fn observe(&self, slot: usize, took: Duration, ok: bool) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let Some(m) = self.methods.get(slot) else {
            return;
        };
        if !ok {
            m.errors.fetch_add(1, Ordering::Relaxed);
        }
        let ns = took.as_nanos().min(u128::from(u64::MAX)) as u64;
        m.sum_ns.fetch_add(ns, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        m.buckets[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an authentication failure by reason.
    pub fn auth_failure(&self, reason: &str) {
        bump_label(&self.auth_failures, reason);
    }

    /// Counts a restart of a supervised actor.
    pub fn actor_restart(&self, actor: &str) {
        bump_label(&self.actor_restarts, actor);
    }

    /// Requests seen for `method`.
    pub fn requests(&self, method: &str) -> u64 {
        self.methods[self.slot(method)].count()
    }
}

/// Renders `/metrics` for `hub`.
pub fn render(hub: &Hub) -> String {
    Counters::bump(&hub.metrics.scrapes);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(hub.clone())));
    let mut out = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// The same series in the classic Prometheus text format (0.0.4), for scrapers and tools
/// that do not ask for OpenMetrics (`promtool check metrics`, `curl`): a counter family is
/// named with its `_total` suffix in `HELP`/`TYPE`, and the `# EOF` marker goes.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut counters = std::collections::HashSet::new();
    for l in openmetrics.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            if let Some(name) = rest.strip_suffix(" counter") {
                counters.insert(name.to_string());
            }
        }
    }
    let mut out = String::with_capacity(openmetrics.len() + counters.len() * 16);
    for l in openmetrics.lines() {
        if l == "# EOF" || l.starts_with("# UNIT ") {
            continue;
        }
        let meta = l
            .strip_prefix("# HELP ")
            .map(|r| ("# HELP ", r))
            .or_else(|| l.strip_prefix("# TYPE ").map(|r| ("# TYPE ", r)));
        match meta {
            Some((kind, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) {
                    out.push_str(&format!("{kind}{name}_total {tail}"));
                } else {
                    out.push_str(l);
                }
            }
            None => out.push_str(l),
        }
        out.push('\n');
    }
    out
}

/// Reads every series at scrape time.
#[derive(Debug)]
struct Scrape(Hub);

type Enc<'a> = DescriptorEncoder<'a>;
type R = Result<(), std::fmt::Error>;

fn counter(e: &mut Enc<'_>, name: &str, help: &str, v: u64) -> R {
    ConstCounter::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(e: &mut Enc<'_>, name: &str, help: &str, v: f64) -> R {
    ConstGauge::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// One counter family with a single label.
fn counters_by(e: &mut Enc<'_>, name: &str, help: &str, label: &str, rows: &[(String, u64)]) -> R {
    if rows.is_empty() {
        return Ok(());
    }
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (l, v) in rows {
        let labels = [(label, l.as_str())];
        ConstCounter::new(*v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One gauge family with a single label.
fn gauges_by(e: &mut Enc<'_>, name: &str, help: &str, label: &str, rows: &[(String, f64)]) -> R {
    if rows.is_empty() {
        return Ok(());
    }
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (l, v) in rows {
        let labels = [(label, l.as_str())];
        ConstGauge::new(*v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> R {
        let h = &self.0;
        let c = &h.counters;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        {
            let mut m = e.encode_descriptor(
                "openclaw_gateway_build_info",
                "Build and process facts (the value is always 1).",
                None,
                MetricType::Gauge,
            )?;
            let labels = [("version", VERSION), ("boot_id", h.facts.boot_id.as_str())];
            ConstGauge::new(1).encode(m.encode_family(&labels)?)?;
        }
        gauge(
            &mut e,
            "openclaw_gateway_uptime_seconds",
            "Seconds since the gateway started.",
            h.facts.uptime_ms() as f64 / 1000.0,
        )?;
        gauge(
            &mut e,
            "openclaw_gateway_connections_open",
            "WebSocket connections open now.",
            h.registry.connection_count() as f64,
        )?;
        gauge(
            &mut e,
            "openclaw_gateway_sockets_open",
            "TCP connections open now (HTTP and WebSocket), counted against gateway.connections.",
            f64::from(h.conns.open()),
        )?;
        gauge(
            &mut e,
            "openclaw_gateway_sockets_max",
            "The connection ceiling in force (gateway.connections.max, never above the open-file budget).",
            f64::from(crate::guard::conncap::effective_max(
                &h.live.get().policy.connections,
                h.conns.budget(),
            )),
        )?;
        counter(
            &mut e,
            "openclaw_gateway_connections_accepted",
            "WebSocket connections accepted since start.",
            n(&c.connections_total),
        )?;
        let hs = [
            ("ok".to_string(), n(&c.auth_ok)),
            ("failed".to_string(), n(&c.auth_failed)),
            ("timeout".to_string(), n(&c.handshake_timeouts)),
        ];
        counters_by(
            &mut e,
            "openclaw_gateway_handshakes",
            "Handshakes by result.",
            "result",
            &hs,
        )?;
        let reasons: Vec<(String, u64)> = lock(&h.metrics.auth_failures)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        counters_by(
            &mut e,
            "openclaw_gateway_auth_failures",
            "Rejected handshakes by reason.",
            "reason",
            &reasons,
        )?;
        counter(
            &mut e,
            "openclaw_gateway_auth_lockouts",
            "Clients locked out after repeated wrong credentials.",
            n(&h.metrics.lockouts),
        )?;
        counter(
            &mut e,
            "openclaw_gateway_ratelimit_hits",
            "Requests refused by the rate limit.",
            n(&h.limiter.denied),
        )?;
        let refused = [
            ("allowlist".to_string(), n(&c.allowlist_denied)),
            ("proxy_attribution".to_string(), n(&c.forwarding_refused)),
            ("preauth_cap".to_string(), n(&c.preauth_refused)),
            ("max_connections".to_string(), n(&h.limiter.conns_denied)),
            ("audit_unwritable".to_string(), n(&h.audit.stats.refused)),
            ("connection_cap".to_string(), n(&h.conns.refused_full)),
            (
                "per_address_cap".to_string(),
                n(&h.conns.refused_per_address),
            ),
        ];
        counters_by(
            &mut e,
            "openclaw_gateway_refused",
            "Requests refused before the upgrade, by reason.",
            "reason",
            &refused,
        )?;
        counter(
            &mut e,
            "openclaw_gateway_slow_consumers",
            "Connections closed because the client stopped reading.",
            n(&c.slow_consumers),
        )?;
        counter(
            &mut e,
            "openclaw_gateway_sessions_crashed",
            "Session actors that crashed (only their socket closed).",
            n(&c.sessions_crashed),
        )?;
        self.rpc(&mut e)?;
        let a = &h.audit.stats;
        counter(
            &mut e,
            "openclaw_gateway_audit_events_written",
            "Audit events written and synced.",
            n(&a.written),
        )?;
        gauge(
            &mut e,
            "openclaw_gateway_audit_queue_depth",
            "Audit events queued but not yet written.",
            n(&a.queued).saturating_sub(n(&a.written)) as f64,
        )?;
        counter(
            &mut e,
            "openclaw_gateway_audit_write_errors",
            "Failed audit writes (retried, never dropped).",
            n(&a.write_errors),
        )?;
        counter(
            &mut e,
            "openclaw_gateway_audit_batches",
            "Audit batches written (one fsync each).",
            n(&a.batches),
        )?;
        ConstCounter::new(n(&a.batch_ns) as f64 / 1e9).encode(e.encode_descriptor(
            "openclaw_gateway_audit_write_seconds",
            "Time spent writing and syncing audit batches.",
            None,
            MetricType::Counter,
        )?)?;
        let restarts: Vec<(String, u64)> = lock(&h.metrics.actor_restarts)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        counters_by(
            &mut e,
            "openclaw_gateway_actor_restarts",
            "Supervised actors restarted after a crash.",
            "actor",
            &restarts,
        )?;
        self.tunnels(&mut e)?;
        self.tls(&mut e)?;
        self.tailscale(&mut e)?;
        let nodes = h.nodes.status();
        gauge(
            &mut e,
            "openclaw_gateway_nodes_connected",
            "Nodes connected now.",
            nodes["connected"].as_f64().unwrap_or(0.0),
        )?;
        let inv = &nodes["invokes"];
        counter(
            &mut e,
            "openclaw_gateway_node_invokes",
            "node.invoke requests relayed to a node.",
            inv["relayed"].as_u64().unwrap_or(0),
        )?;
        counter(
            &mut e,
            "openclaw_gateway_node_invoke_timeouts",
            "Relayed invokes that hit their deadline.",
            inv["timeouts"].as_u64().unwrap_or(0),
        )?;
        let (rss, fds) = process_numbers();
        gauge(
            &mut e,
            "openclaw_process_resident_memory_bytes",
            "Resident set size of the gateway process.",
            rss as f64,
        )?;
        gauge(
            &mut e,
            "openclaw_process_open_fds",
            "Open file descriptors of the gateway process.",
            fds as f64,
        )?;
        Ok(())
    }
}

impl Scrape {
    fn rpc(&self, e: &mut Enc<'_>) -> R {
        let m = &self.0.metrics;
        let label = |i: usize| m.names.get(i).copied().unwrap_or("unknown");
        let seen: Vec<usize> = (0..m.methods.len())
            .filter(|i| m.methods[*i].count() > 0)
            .collect();
        let rows = |f: &dyn Fn(&MethodStat) -> u64| -> Vec<(String, u64)> {
            seen.iter()
                .map(|i| (label(*i).to_string(), f(&m.methods[*i])))
                .collect()
        };
        counters_by(
            e,
            "openclaw_gateway_rpc_requests",
            "RPC requests answered, by method.",
            "method",
            &rows(&|s| s.count()),
        )?;
        counters_by(
            e,
            "openclaw_gateway_rpc_errors",
            "RPC requests answered with an error, by method.",
            "method",
            &rows(&|s| s.errors.load(Ordering::Relaxed)),
        )?;
        if seen.is_empty() {
            return Ok(());
        }
        let mut d = e.encode_descriptor(
            "openclaw_gateway_rpc_handler_seconds",
            "Time from a request's arrival to its answer being queued, by method.",
            None,
            MetricType::Histogram,
        )?;
        for i in seen {
            let s = &m.methods[i];
            let mut buckets: Vec<(f64, u64)> = BUCKETS
                .iter()
                .zip(&s.buckets)
                .map(|(b, c)| (*b, c.load(Ordering::Relaxed)))
                .collect();
            buckets.push((f64::MAX, s.buckets[BUCKETS.len()].load(Ordering::Relaxed)));
            let count = buckets.iter().map(|(_, c)| c).sum();
            let sum = s.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
            let labels = [("method", label(i))];
            d.encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }

    fn tunnels(&self, e: &mut Enc<'_>) -> R {
        let rows = self.0.tunnels.rows();
        let name = |r: &serde_json::Value| r["name"].as_str().unwrap_or("?").to_string();
        let up: Vec<(String, f64)> = rows
            .iter()
            .map(|r| (name(r), f64::from(u8::from(r["state"] == "up"))))
            .collect();
        gauges_by(
            e,
            "openclaw_tunnel_up",
            "1 when the tunnel is up.",
            "tunnel",
            &up,
        )?;
        let restarts: Vec<(String, u64)> = rows
            .iter()
            .map(|r| (name(r), r["restarts"].as_u64().unwrap_or(0)))
            .collect();
        counters_by(
            e,
            "openclaw_tunnel_restarts",
            "ssh restarts of the tunnel.",
            "tunnel",
            &restarts,
        )?;
        let recovery: Vec<(String, f64)> = rows
            .iter()
            .filter(|r| r["lastRecoveryMs"].is_u64())
            .map(|r| {
                (
                    name(r),
                    r["lastRecoveryMs"].as_f64().unwrap_or(0.0) / 1000.0,
                )
            })
            .collect();
        gauges_by(
            e,
            "openclaw_tunnel_last_recovery_seconds",
            "How long the tunnel's last recovery took (down to proven up again).",
            "tunnel",
            &recovery,
        )?;
        let uptime: Vec<(String, f64)> = rows
            .iter()
            .map(|r| (name(r), r["uptimeMs"].as_f64().unwrap_or(0.0) / 1000.0))
            .collect();
        gauges_by(
            e,
            "openclaw_tunnel_uptime_seconds",
            "Seconds since the tunnel last came up (0 when down).",
            "tunnel",
            &uptime,
        )?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut d = e.encode_descriptor(
            "openclaw_tunnel_state",
            "The tunnel's state (1 for the current one).",
            None,
            MetricType::Gauge,
        )?;
        for r in &rows {
            let (n, s) = (
                name(r),
                r["state"].as_str().unwrap_or("unknown").to_string(),
            );
            let labels = [("tunnel", n.as_str()), ("state", s.as_str())];
            ConstGauge::new(1.0).encode(d.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn tls(&self, e: &mut Enc<'_>) -> R {
        let Some(t) = &self.0.tls else { return Ok(()) };
        let s = t.status();
        if let Some(ms) = s["notAfter"].as_i64() {
            let left = (ms - crate::shared::now_ms()) as f64 / 1000.0;
            gauge(
                e,
                "openclaw_gateway_tls_cert_expiry_seconds",
                "Seconds until the served certificate expires.",
                left,
            )?;
        }
        counter(
            e,
            "openclaw_gateway_tls_reloads",
            "Certificate reloads applied.",
            s["reloads"].as_u64().unwrap_or(0),
        )?;
        counter(
            e,
            "openclaw_gateway_tls_reload_failures",
            "Certificate reloads refused (the old pair stayed).",
            s["reloadFailures"].as_u64().unwrap_or(0),
        )
    }

    fn tailscale(&self, e: &mut Enc<'_>) -> R {
        let s = self.0.tailscale.status();
        if s["mode"] == "off" {
            return Ok(());
        }
        gauge(
            e,
            "openclaw_gateway_tailscale_claim_up",
            "1 when the tailscale serve/funnel claim is up.",
            f64::from(u8::from(s["state"] == "up")),
        )?;
        counter(
            e,
            "openclaw_gateway_tailscale_claim_restarts",
            "Times the claim was started again after it died.",
            s["restarts"].as_u64().unwrap_or(0),
        )
    }
}

/// Resident bytes and open fds of this process (Linux `/proc`; zeros elsewhere).
fn process_numbers() -> (u64, u64) {
    let page = 4096u64;
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |p| p * page);
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    (rss, fds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_slots() {
        let m = Metrics::default();
        let s = m.slot("health");
        assert!(s < m.names.len());
        assert_eq!(m.slot("no.such.method"), m.names.len());
        m.observe(s, Duration::from_micros(50), true);
        m.observe(s, Duration::from_millis(3), false);
        m.observe(s, Duration::from_secs(10), true);
        let st = &m.methods[s];
        let b: Vec<u64> = st
            .buckets
            .iter()
            .map(|x| x.load(Ordering::Relaxed))
            .collect();
        assert_eq!(b[0], 1, "50 µs ≤ 100 µs");
        assert_eq!(b[5], 1, "3 ms ≤ 5 ms");
        assert_eq!(b[BUCKETS.len()], 1, "10 s in +Inf");
        assert_eq!(
            (m.requests("health"), st.errors.load(Ordering::Relaxed)),
            (3, 1)
        );
    }

    #[test]
    fn classic_text_names_counters_with_total() {
        let om = "# HELP a_b Things.\n# TYPE a_b counter\na_b_total{x=\"1\"} 3\n# HELP g Now.\n# TYPE g gauge\ng 1.0\n# HELP h Lat.\n# TYPE h histogram\nh_sum 0.1\nh_count 1\nh_bucket{le=\"+Inf\"} 1\n# EOF\n";
        let t = to_prometheus_text(om);
        assert_eq!(
            t,
            "# HELP a_b_total Things.\n# TYPE a_b_total counter\na_b_total{x=\"1\"} 3\n# HELP g Now.\n# TYPE g gauge\ng 1.0\n# HELP h Lat.\n# TYPE h histogram\nh_sum 0.1\nh_count 1\nh_bucket{le=\"+Inf\"} 1\n"
        );
    }

    #[test]
    fn label_maps_are_bounded() {
        let m = Metrics::default();
        for i in 0..(MAX_LABELS + 10) {
            m.auth_failure(&format!("r{i}"));
        }
        let map = lock(&m.auth_failures);
        assert_eq!(map.len(), MAX_LABELS + 1);
        assert_eq!(map["other"], 10);
    }
}
