//! The `nodes` mode (issue 11): `node.invoke` relayed by the gateway (operator → gateway →
//! node → gateway → operator) against the same request answered by the node on a direct
//! WebSocket connection (client → node → client), same run, alternating.
//!
//! Per in-flight level L: ceil(L / per-conn) client connections, L requests in flight in
//! total, each connection a closed loop (a response sends the next request); connection i
//! talks to node i mod N, through the gateway or straight to that node's port. Latencies are
//! of requests sent inside the measured window (after a warm-up), invokes/s counts responses
//! received inside it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{open, Conn, Frame, Target, Ws};
use crate::gateway::{bin_path, Gateway};
use crate::nodes::{Farm, COMMAND};
use crate::stats::{first_errors, r3, summarize, Lat};
use crate::sys;

/// How long a client waits for its outstanding responses after the window.
const DRAIN: Duration = Duration::from_secs(5);

/// What to run.
pub struct Opts {
    /// Test nodes.
    pub nodes: usize,
    /// Measured seconds per path, level and round.
    pub seconds: f64,
    /// Unmeasured seconds before each window.
    pub warmup: f64,
    /// Rounds (the path measured first alternates).
    pub rounds: usize,
    /// Total requests in flight, one run per value.
    pub inflight: Vec<usize>,
    /// Most requests in flight on one client connection.
    pub per_conn: usize,
    /// Worker threads of the node runtime.
    pub node_workers: usize,
    /// Handshake / per-response timeout.
    pub timeout: Duration,
}

/// The two ways to reach a node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Path {
    /// Through the gateway (`node.invoke`, relayed).
    Gateway,
    /// Straight to the node's own WebSocket port.
    Direct,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Gateway => "gateway",
            Path::Direct => "direct",
        }
    }
}

/// One path at one level, summed over the rounds.
#[derive(Default)]
pub struct PathResult {
    /// Latencies of requests sent inside the windows.
    pub lat: Lat,
    /// The raw samples (ns) until [`PathResult::finish`].
    raw: Vec<u64>,
    /// Responses received inside the windows.
    pub in_window: u64,
    /// Sum of the window lengths, s.
    pub window_s: f64,
    /// invokes/s of each round.
    pub round_rates: Vec<f64>,
    /// All responses (warm-up and drain included), for CPU per invoke.
    pub done: u64,
    /// Responses with ok:false.
    pub not_ok: u64,
    /// The first ok:false error.
    pub first_not_ok: Option<Value>,
    /// Transport errors and timeouts.
    pub errors: Vec<String>,
    /// Gateway process CPU, s (gateway path only).
    pub gw_cpu_s: f64,
    /// Node runtime CPU, s.
    pub node_cpu_s: f64,
}

impl PathResult {
    fn finish(&mut self) {
        self.lat = summarize(&mut self.raw);
        self.raw = Vec::new();
    }

    /// invokes/s over all windows.
    pub fn rate(&self) -> f64 {
        self.in_window as f64 / self.window_s.max(1e-9)
    }

    fn json(&self) -> Value {
        let per = |s: f64| r3(s * 1e6 / self.done.max(1) as f64);
        json!({
            "invokesPerSec": self.rate().round(), "roundRates": self.round_rates.iter().map(|r| r.round()).collect::<Vec<_>>(),
            "latencyMs": self.lat.json(), "responses": self.done, "notOk": self.not_ok,
            "firstNotOk": self.first_not_ok, "errors": self.errors.len(),
            "firstErrors": first_errors(&self.errors, 5), "gatewayCpuUsPerInvoke": per(self.gw_cpu_s),
            "nodeCpuUsPerInvoke": per(self.node_cpu_s),
        })
    }
}

/// One in-flight level.
pub struct Level {
    /// Total requests in flight.
    pub inflight: usize,
    /// In flight per client connection.
    pub depths: Vec<usize>,
    /// Through the gateway.
    pub gw: PathResult,
    /// Direct.
    pub direct: PathResult,
}

/// Everything the mode measured.
pub struct Report {
    /// Options.
    pub nodes: usize,
    /// Seconds per window.
    pub seconds: f64,
    /// Warm-up seconds.
    pub warmup: f64,
    /// Rounds.
    pub rounds: usize,
    /// Node runtime threads.
    pub node_workers: usize,
    /// Levels in order.
    pub levels: Vec<Level>,
    /// Response frame sizes on the two paths (warm-up call).
    pub res_bytes: (usize, usize),
    /// Node-side counters: relayed, direct, acks ok, errors, first errors.
    pub node: (u64, u64, u64, u64, Vec<String>),
    /// Gateway stderr: WARN, ERROR lines and kinds.
    pub gw_log: (usize, usize, Vec<String>),
    /// Gateway shutdown.
    pub gw_exit: String,
    /// Setup: nodes connected + approved, ms.
    pub setup_ms: f64,
}

impl Report {
    /// Whether anything failed.
    pub fn failed(&self) -> bool {
        self.node.3 > 0
            || self.levels.iter().any(|l| {
                [&l.gw, &l.direct]
                    .iter()
                    .any(|p| p.not_ok > 0 || !p.errors.is_empty() || p.lat.n == 0)
            })
    }
}

/// Unique idempotency keys across runs.
static RUN: AtomicU64 = AtomicU64::new(0);

fn invoke_params(node: &str, key: &str, seq: u64) -> String {
    format!(
        r#"{{"nodeId":"{node}","command":"{COMMAND}","params":{{"text":"ping","seq":{seq}}},"idempotencyKey":"{key}","timeoutMs":30000}}"#
    )
}

fn invoke_frame(node: &str, tag: &str, seq: u64) -> String {
    let key = format!("bench-{tag}-{seq}");
    let p = invoke_params(node, &key, seq);
    format!(r#"{{"type":"req","id":"{seq}","method":"node.invoke","params":{p}}}"#)
}

#[derive(Default)]
struct DriveOut {
    lat: Vec<u64>,
    in_window: u64,
    done: u64,
    not_ok: u64,
    first_not_ok: Option<Value>,
    errors: Vec<String>,
}

/// A closed loop of `depth` requests in flight on one connection until `end`, then a
/// bounded drain of the outstanding ones.
async fn drive(
    mut ws: Ws,
    node: Arc<str>,
    tag: String,
    depth: usize,
    (start, end): (Instant, Instant),
    timeout: Duration,
) -> DriveOut {
    let mut out = DriveOut::default();
    let mut sent: HashMap<u64, Instant> = HashMap::with_capacity(depth * 2);
    let mut seq = 0u64;
    for _ in 0..depth {
        seq += 1;
        if let Err(e) = ws.send(Message::text(invoke_frame(&node, &tag, seq))).await {
            out.errors.push(format!("send: {e}"));
            return out;
        }
        sent.insert(seq, Instant::now());
    }
    let hard_stop = end + DRAIN;
    while !sent.is_empty() {
        let wait = timeout.min(hard_stop.saturating_duration_since(Instant::now()));
        let m = match tokio::time::timeout(wait, ws.next()).await {
            Err(_) => {
                out.errors.push(format!(
                    "{} request(s) unanswered after {} ms",
                    sent.len(),
                    wait.as_millis()
                ));
                break;
            }
            Ok(None) => {
                out.errors.push("eof".into());
                break;
            }
            Ok(Some(Err(e))) => {
                out.errors.push(format!("recv: {e}"));
                break;
            }
            Ok(Some(Ok(m))) => m,
        };
        let t = match m {
            Message::Text(t) => t,
            Message::Close(f) => {
                out.errors.push(format!("closed by server: {f:?}"));
                break;
            }
            _ => continue,
        };
        let now = Instant::now();
        let f: Frame = match serde_json::from_str(&t) {
            Ok(f) => f,
            Err(e) => {
                out.errors.push(format!("bad frame: {e}"));
                continue;
            }
        };
        if f.ty != "res" {
            continue;
        }
        let Some(s) =
            f.id.as_deref()
                .and_then(|i| i.parse::<u64>().ok())
                .and_then(|i| sent.remove(&i))
        else {
            continue;
        };
        out.done += 1;
        if f.ok != Some(true) {
            out.not_ok += 1;
            out.first_not_ok = out.first_not_ok.take().or(f.error);
        }
        if s >= start && s < end {
            out.lat.push(now.duration_since(s).as_nanos() as u64);
        }
        if now >= start && now < end {
            out.in_window += 1;
        }
        if now < end {
            seq += 1;
            if let Err(e) = ws.send(Message::text(invoke_frame(&node, &tag, seq))).await {
                out.errors.push(format!("send: {e}"));
                break;
            }
            sent.insert(seq, Instant::now());
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    out
}

/// The depth of each connection for `inflight` requests at most `per_conn` per connection.
fn depths(inflight: usize, per_conn: usize) -> Vec<usize> {
    let inflight = inflight.max(1);
    let conns = inflight.div_ceil(per_conn.max(1));
    (0..conns)
        .map(|i| inflight / conns + usize::from(i < inflight % conns))
        .collect()
}

struct Ctx<'a> {
    gw: Target,
    farm: &'a Farm,
    gw_pid: u32,
    o: &'a Opts,
}

impl Ctx<'_> {
    fn target(&self, path: Path, node: usize) -> Target {
        match path {
            Path::Gateway => self.gw.clone(),
            Path::Direct => Target {
                url: format!("ws://127.0.0.1:{}", self.farm.ports[node]),
                ..self.gw.clone()
            },
        }
    }

    /// One window of one path at one level; adds to `into`.
    async fn run(&self, path: Path, depths: &[usize], into: &mut PathResult) {
        let mut conns: Vec<(Conn, usize)> = Vec::new();
        for (i, _) in depths.iter().enumerate() {
            let node = i % self.farm.ids.len();
            match open(&self.target(path, node)).await {
                Ok((c, _)) => conns.push((c, node)),
                Err(e) => into.errors.push(format!("open: {e}")),
            }
        }
        let run = RUN.fetch_add(1, Ordering::Relaxed);
        let (cpu_gw0, cpu_node0) = (sys::cpu_secs(self.gw_pid), self.farm.cpu_secs());
        let start = Instant::now() + Duration::from_secs_f64(self.o.warmup);
        let end = start + Duration::from_secs_f64(self.o.seconds);
        let tasks: Vec<_> = conns
            .into_iter()
            .zip(depths)
            .enumerate()
            .map(|(i, ((c, node), &d))| {
                let id: Arc<str> = self.farm.ids[node].as_str().into();
                let tag = format!("{}-{run}-{i}", path.name());
                tokio::spawn(drive(c.into_ws(), id, tag, d, (start, end), self.o.timeout))
            })
            .collect();
        let mut lat = Vec::new();
        let mut in_window = 0;
        for t in tasks {
            match t.await {
                Ok(r) => {
                    lat.extend(r.lat);
                    in_window += r.in_window;
                    into.done += r.done;
                    into.not_ok += r.not_ok;
                    into.first_not_ok = into.first_not_ok.take().or(r.first_not_ok);
                    into.errors.extend(r.errors);
                }
                Err(e) => into.errors.push(format!("client task: {e}")),
            }
        }
        if path == Path::Gateway {
            let now = sys::cpu_secs(self.gw_pid);
            into.gw_cpu_s += now.zip(cpu_gw0).map(|(b, a)| b - a).unwrap_or(0.0);
        }
        into.node_cpu_s += self.farm.cpu_secs() - cpu_node0;
        into.round_rates
            .push(in_window as f64 / self.o.seconds.max(1e-9));
        into.in_window += in_window;
        into.window_s += self.o.seconds;
        into.raw.extend(lat);
    }
}

/// Approves every pending request of our nodes with an admin operator connection.
async fn approve(t: &Target, ids: &[String]) -> Result<(), String> {
    let (mut op, _) = open(t).await?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut approved: Vec<String> = Vec::new();
    let mut last = Value::Null;
    while approved.len() < ids.len() {
        if Instant::now() > deadline {
            return Err(format!(
                "only {}/{} nodes approved within 15 s; last node.pair.list: {last}",
                approved.len(),
                ids.len()
            ));
        }
        last = op.call_value("node.pair.list", Some("{}")).await?;
        let pending = last["payload"]["pending"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for p in pending {
            let Some(nid) = p["nodeId"].as_str() else {
                continue;
            };
            if !ids.iter().any(|i| i == nid) || approved.iter().any(|a| a == nid) {
                continue;
            }
            let params = json!({"requestId": p["requestId"]}).to_string();
            let r = op.call_value("node.pair.approve", Some(&params)).await?;
            if r["ok"] != true {
                return Err(format!("node.pair.approve refused: {r}"));
            }
            approved.push(nid.to_string());
        }
        if approved.len() < ids.len() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    op.close(Duration::from_secs(1)).await;
    Ok(())
}

/// One invoke per node through the gateway, one straight to node 0; node 0's two answers
/// must carry the same payload. Returns the two response frame sizes.
async fn check_paths(ctx: &Ctx<'_>) -> Result<(usize, usize), String> {
    let (mut op, _) = open(&ctx.gw).await?;
    let mut gw_first = Value::Null;
    for (i, id) in ctx.farm.ids.iter().enumerate() {
        let p = invoke_params(id, &format!("check-{i}"), 0);
        let r = op.call_value("node.invoke", Some(&p)).await?;
        if r["ok"] != true {
            return Err(format!("check invoke on node {i} failed: {r}"));
        }
        if i == 0 {
            gw_first = r;
        }
    }
    op.close(Duration::from_secs(1)).await;
    let (mut d, _) = open(&ctx.target(Path::Direct, 0)).await?;
    let p = invoke_params(&ctx.farm.ids[0], "check-0", 0);
    let direct = d.call_value("node.invoke", Some(&p)).await?;
    d.close(Duration::from_secs(1)).await;
    if direct["ok"] != true || direct["payload"] != gw_first["payload"] {
        return Err(format!(
            "direct answer differs from the gateway's: {direct} vs {gw_first}"
        ));
    }
    Ok((gw_first.to_string().len(), direct.to_string().len()))
}

/// Runs the whole mode: gateway, nodes, approval, check, then the levels × rounds.
pub fn run(rt: &Runtime, o: &Opts) -> Result<Report, String> {
    let bin = bin_path();
    if !bin.exists() {
        return Err(format!(
            "no gateway binary at {} (cargo build --release --bin openclaw, or set OPENCLAW_BIN)",
            bin.display()
        ));
    }
    let token = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let mut gw = Gateway::start(&bin, &token)?;
    eprintln!("gateway pid {} on {}", gw.pid, gw.url);
    let t0 = Instant::now();
    let farm = Farm::start(o.nodes, o.node_workers, &gw.url, &token, o.timeout)?;
    let gw_target = Target {
        url: gw.url.clone(),
        token,
        timeout: o.timeout,
        mode: "cli",
    };
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), approve(&gw_target, &farm.ids)).await
    })
    .map_err(|_| "approval timed out".to_string())??;
    let setup_ms = t0.elapsed().as_secs_f64() * 1e3;
    eprintln!(
        "{} nodes connected and approved in {setup_ms:.0} ms",
        o.nodes
    );
    let ctx = Ctx {
        gw: gw_target,
        farm: &farm,
        gw_pid: gw.pid,
        o,
    };
    let res_bytes = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), check_paths(&ctx)).await })
        .map_err(|_| "check invokes timed out".to_string())??;
    let mut levels: Vec<Level> = o
        .inflight
        .iter()
        .map(|&l| Level {
            inflight: l,
            depths: depths(l, o.per_conn),
            gw: PathResult::default(),
            direct: PathResult::default(),
        })
        .collect();
    for round in 0..o.rounds {
        for l in levels.iter_mut() {
            let order = if round % 2 == 0 {
                [Path::Gateway, Path::Direct]
            } else {
                [Path::Direct, Path::Gateway]
            };
            for path in order {
                let into = match path {
                    Path::Gateway => &mut l.gw,
                    Path::Direct => &mut l.direct,
                };
                rt.block_on(ctx.run(path, &l.depths, into));
                eprintln!(
                    "round {} in-flight {} {}: {:.0} invokes/s",
                    round + 1,
                    l.inflight,
                    path.name(),
                    into.round_rates.last().copied().unwrap_or(0.0)
                );
            }
        }
    }
    for l in levels.iter_mut() {
        l.gw.finish();
        l.direct.finish();
    }
    let s = &farm.stats;
    let node = (
        s.relayed.load(Ordering::Relaxed),
        s.direct.load(Ordering::Relaxed),
        s.acks_ok.load(Ordering::Relaxed),
        s.errors.load(Ordering::Relaxed),
        s.first_errors.lock().map(|v| v.clone()).unwrap_or_default(),
    );
    let gw_log = gw.log_summary();
    farm.stop();
    let gw_exit = gw.stop();
    Ok(Report {
        nodes: o.nodes,
        seconds: o.seconds,
        warmup: o.warmup,
        rounds: o.rounds,
        node_workers: o.node_workers,
        levels,
        res_bytes,
        node,
        gw_log,
        gw_exit,
        setup_ms,
    })
}

/// gateway/direct invokes/s of each round: (median, min, max).
fn round_ratios(l: &Level) -> (f64, f64, f64) {
    let mut r: Vec<f64> =
        l.gw.round_rates
            .iter()
            .zip(&l.direct.round_rates)
            .map(|(g, d)| ratio(*g, *d))
            .collect();
    r.sort_by(f64::total_cmp);
    if r.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let mid = if r.len() % 2 == 1 {
        r[r.len() / 2]
    } else {
        (r[r.len() / 2 - 1] + r[r.len() / 2]) / 2.0
    };
    (mid, r[0], r[r.len() - 1])
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn shape(d: &[usize]) -> String {
    let (min, max) = (
        d.iter().min().copied().unwrap_or(0),
        d.iter().max().copied().unwrap_or(0),
    );
    if min == max {
        format!("{} × {max}", d.len())
    } else {
        format!("{} × {min}–{max}", d.len())
    }
}

impl Report {
    /// Markdown tables.
    pub fn markdown(&self) -> String {
        let mut m = String::new();
        m.push_str(&format!(
            "### `node.invoke` through the gateway vs direct to the node — {} nodes ({} node runtime thread(s)), {} round(s) × {} s per path and level (+{} s warm-up each)\n\n",
            self.nodes, self.node_workers, self.rounds, self.seconds, self.warmup
        ));
        m.push_str("| in flight (conns × depth) | invokes/s gateway | direct | gw/direct | per round: median (min–max) | p50 ms gateway | direct | gw/direct | p99 ms gateway | direct | gw/direct | errors |\n");
        m.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for l in &self.levels {
            let (g, d) = (&l.gw, &l.direct);
            let errs = g.errors.len() + d.errors.len() + (g.not_ok + d.not_ok) as usize;
            let (med, lo, hi) = round_ratios(l);
            m.push_str(&format!(
                "| {} ({}) | {} | {} | **{:.2}** | {med:.2} ({lo:.2}–{hi:.2}) | {:.3} | {:.3} | **{:.2}** | {:.3} | {:.3} | **{:.2}** | {errs} |\n",
                l.inflight,
                shape(&l.depths),
                thousands(g.rate()),
                thousands(d.rate()),
                ratio(g.rate(), d.rate()),
                g.lat.p50,
                d.lat.p50,
                ratio(g.lat.p50, d.lat.p50),
                g.lat.p99,
                d.lat.p99,
                ratio(g.lat.p99, d.lat.p99),
            ));
        }
        m.push_str("\n| in flight | path | invokes/s per round | mean ms | p50 ms | p90 ms | p99 ms | max ms | samples | ok:false | errors | gateway CPU µs/invoke | node CPU µs/invoke |\n");
        m.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for l in &self.levels {
            for (name, p) in [("gateway", &l.gw), ("direct", &l.direct)] {
                let per = |s: f64| s * 1e6 / p.done.max(1) as f64;
                let rates: Vec<String> = p.round_rates.iter().map(|r| thousands(*r)).collect();
                let gw_cpu = if name == "gateway" {
                    format!("{:.1}", per(p.gw_cpu_s))
                } else {
                    "–".into()
                };
                m.push_str(&format!(
                    "| {} | {name} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} | {} | {gw_cpu} | {:.1} |\n",
                    l.inflight,
                    rates.join(", "),
                    p.lat.mean,
                    p.lat.p50,
                    p.lat.p90,
                    p.lat.p99,
                    p.lat.max,
                    p.lat.n,
                    p.not_ok,
                    p.errors.len(),
                    per(p.node_cpu_s),
                ));
            }
        }
        m.push_str("\nOther observations:\n\n");
        m.push_str(&format!(
            "- setup: {} nodes connected (signed v3 device identities) and approved in {:.0} ms\n",
            self.nodes, self.setup_ms
        ));
        m.push_str(&format!(
            "- response frame to the client: {} bytes via the gateway, {} bytes direct (same payload, checked)\n",
            self.res_bytes.0, self.res_bytes.1
        ));
        let (relayed, direct, acks, errs, first) = &self.node;
        m.push_str(&format!(
            "- nodes: {relayed} relayed invokes answered, {acks} `node.invoke.result` acks ok, {direct} direct answers, {errs} node-side errors {first:?}\n"
        ));
        for l in &self.levels {
            for (name, p) in [("gateway", &l.gw), ("direct", &l.direct)] {
                if let Some(e) = &p.first_not_ok {
                    m.push_str(&format!("- first ok:false ({name}, {}): {e}\n", l.inflight));
                }
                if !p.errors.is_empty() {
                    m.push_str(&format!(
                        "- errors ({name}, {}): {:?}\n",
                        l.inflight,
                        first_errors(&p.errors, 3)
                    ));
                }
            }
        }
        let (w, e, kinds) = &self.gw_log;
        m.push_str(&format!(
            "- gateway stderr: {w} WARN, {e} ERROR lines; kinds: {kinds:?}\n- gateway shutdown: {}\n",
            self.gw_exit
        ));
        m
    }

    /// One JSON object.
    pub fn json(&self) -> Value {
        let levels: Vec<Value> = self
            .levels
            .iter()
            .map(|l| {
                json!({
                    "inflight": l.inflight, "connections": l.depths.len(), "depths": l.depths,
                    "gateway": l.gw.json(), "direct": l.direct.json(),
                    "ratio": {
                        "invokesPerSec": r3(ratio(l.gw.rate(), l.direct.rate())),
                        "invokesPerSecPerRound": {"median": r3(round_ratios(l).0), "min": r3(round_ratios(l).1), "max": r3(round_ratios(l).2)},
                        "p50": r3(ratio(l.gw.lat.p50, l.direct.lat.p50)),
                        "p99": r3(ratio(l.gw.lat.p99, l.direct.lat.p99)),
                    },
                })
            })
            .collect();
        let (relayed, direct, acks, errs, first) = &self.node;
        json!({
            "mode": "nodes", "nodes": self.nodes, "seconds": self.seconds, "warmupSeconds": self.warmup,
            "rounds": self.rounds, "nodeWorkers": self.node_workers, "setupMs": r3(self.setup_ms), "levels": levels,
            "responseBytes": {"gateway": self.res_bytes.0, "direct": self.res_bytes.1},
            "nodeSide": {"relayed": relayed, "direct": direct, "acksOk": acks, "errors": errs, "firstErrors": first},
            "gatewayLog": {"warn": self.gw_log.0, "error": self.gw_log.1, "kinds": self.gw_log.2},
            "gatewayExit": self.gw_exit, "failed": self.failed(),
        })
    }
}
