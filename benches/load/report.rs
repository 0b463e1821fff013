//! `report`: the whole measurement suite in one run (start-up, idle RSS, RSS per idle
//! connection, health throughput vs the echo baseline, handshake rate, optional real peer).
//! Progress goes to stderr; [`crate::markdown`] renders the results.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::runtime::Runtime;

use crate::args::Args;
use crate::client::{open, Target};
use crate::gateway::{self, Gateway};
use crate::modes::{self, HsResult, RpcOpts, RpcResult};
use crate::{echo, peer, sys};

/// Suite parameters (flags of `report`).
pub struct Cfg {
    /// Seconds per load run.
    pub seconds: f64,
    /// Handshake-loop workers.
    pub workers: usize,
    /// Handshakes in flight while opening idle connections.
    pub parallel: usize,
    /// Idle connection counts for the RSS-per-connection runs.
    pub idle_sizes: Vec<usize>,
    /// Start-up samples.
    pub startup_runs: usize,
    /// Connection counts for the health runs.
    pub health_conns: Vec<usize>,
}

/// A load run plus the server CPU it cost.
pub struct Measured {
    /// Client-side result.
    pub rpc: RpcResult,
    /// Server CPU seconds during the run (open + requests + close).
    pub server_cpu_s: Option<f64>,
}

/// One RSS-per-idle-connection run (fresh server process).
pub struct PerConn {
    /// `ours` or `echo`.
    pub server: &'static str,
    /// Connections asked for.
    pub n: usize,
    /// Connections that completed the handshake.
    pub opened: usize,
    /// Open failures.
    pub errors: Vec<String>,
    /// Wall time to open them.
    pub open_ms: f64,
    /// Gateway RSS (KiB): idle, with the connections, 1 s after closing them.
    pub rss: [u64; 3],
    /// Connections still open when the RSS was read.
    pub alive: usize,
    /// This (client) process's RSS growth per connection, KiB.
    pub client_kib_per_conn: f64,
}

/// The real gateway's numbers.
pub struct PeerResult {
    /// start-peer.sh's listen / ready times.
    pub listen_ms: Option<f64>,
    /// start-peer.sh's ready time.
    pub ready_ms: Option<f64>,
    /// RSS 1 s after ready, KiB: gateway process alone, with its children.
    pub idle_rss_kib: [u64; 2],
    /// Child processes at that time.
    pub kids: usize,
    /// Health runs.
    pub health: Vec<Measured>,
    /// How it stopped.
    pub stop: String,
}

/// Everything the suite measured.
#[derive(Default)]
pub struct Results {
    /// The binary measured.
    pub bin: PathBuf,
    /// Start-up samples: spawn -> TCP accept (ms).
    pub startup_connect_ms: Vec<f64>,
    /// Start-up samples: spawn -> "listening on" line read (ms).
    pub startup_line_ms: Vec<f64>,
    /// Gateway RSS 1 s after ready, KiB.
    pub idle_rss_kib: u64,
    /// Gateway RSS after the health runs and after the handshake run, KiB.
    pub rss_after_kib: [u64; 2],
    /// RSS-per-connection runs.
    pub per_conn: Vec<PerConn>,
    /// Health runs against our gateway (one per connection count).
    pub ours: Vec<Measured>,
    /// Health runs against the echo baseline.
    pub echo: Vec<Measured>,
    /// Handshake loops: ours, echo.
    pub handshakes: Vec<(String, HsResult, Option<f64>)>,
    /// Real gateway, when PEER=1.
    pub peer: Option<Result<PeerResult, String>>,
    /// How the main gateway stopped.
    pub stop: String,
    /// Main gateway stderr: WARN lines, ERROR lines, distinct messages.
    pub log: (usize, usize, Vec<String>),
    /// The suite parameters.
    pub seconds: f64,
    /// Handshake workers.
    pub workers: usize,
    /// `ulimit -n` after raising.
    pub nofile: u64,
}

impl Cfg {
    /// Reads the `report` flags.
    pub fn from_args(a: &Args) -> Result<Cfg, String> {
        Ok(Cfg {
            seconds: a.num("--seconds", 5.0)?,
            workers: a.num("--workers", 8)?,
            parallel: a.num("--connect-parallel", 32)?,
            idle_sizes: a.list("--idle-sizes", &[1000, 10000])?,
            startup_runs: a.num("--startup-runs", 5)?,
            health_conns: a.list("--health-conns", &[1, 50])?,
        })
    }
}

fn target(url: &str, token: &str) -> Target {
    Target {
        url: url.to_string(),
        token: token.to_string(),
        timeout: Duration::from_secs(10),
        mode: "cli",
    }
}

fn say(msg: &str) {
    eprintln!("[report] {msg}");
}

/// A 64-hex-char token.
pub fn make_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Runs the suite; returns the results for rendering.
pub fn run(rt: &Runtime, a: &Args, nofile: u64) -> Result<Results, String> {
    let bin = gateway::bin_path();
    if !bin.is_file() {
        return Err(format!(
            "{} not found: build it first (cargo build --release --bin openclaw) or set OPENCLAW_BIN",
            bin.display()
        ));
    }
    let cfg = Cfg::from_args(a)?;
    let token = make_token();
    let mut r = Results {
        bin: bin.clone(),
        seconds: cfg.seconds,
        workers: cfg.workers,
        nofile,
        ..Default::default()
    };
    startup(&bin, &token, cfg.startup_runs, &mut r)?;
    for &n in &cfg.idle_sizes {
        let g = Gateway::start(&bin, &token)?;
        r.per_conn
            .push(per_conn(rt, g, "ours", &token, n, cfg.parallel));
    }
    for &n in &cfg.idle_sizes {
        let g = Gateway::start_echo()?;
        r.per_conn
            .push(per_conn(rt, g, "echo", &token, n, cfg.parallel));
    }
    throughput(rt, &bin, &token, &cfg, &mut r)?;
    if peer::enabled() {
        say("PEER=1: starting the real OpenClaw gateway (takes ~10 s)");
        r.peer = Some(peer_run(rt, &token, &cfg));
    }
    Ok(r)
}

fn startup(bin: &Path, token: &str, runs: usize, r: &mut Results) -> Result<(), String> {
    let home = sys::temp_dir("startup").map_err(|e| e.to_string())?;
    let mut res = Ok(());
    for i in 0..runs {
        match gateway::startup_sample(bin, &home, token) {
            Ok(s) => {
                say(&format!(
                    "startup {}: accept after {:.2} ms, line after {:.2} ms",
                    i + 1,
                    s.connect_ms,
                    s.line_ms
                ));
                r.startup_connect_ms.push(s.connect_ms);
                r.startup_line_ms.push(s.line_ms);
            }
            Err(e) => {
                res = Err(e);
                break;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&home);
    res
}

fn sleep_s(s: f64) {
    std::thread::sleep(Duration::from_secs_f64(s));
}

fn per_conn(
    rt: &Runtime,
    mut g: Gateway,
    server: &'static str,
    token: &str,
    n: usize,
    parallel: usize,
) -> PerConn {
    sleep_s(1.0);
    let rss0 = sys::rss_kib(g.pid).unwrap_or(0);
    let me = std::process::id();
    let self0 = sys::rss_kib(me).unwrap_or(0);
    say(&format!(
        "idle x{n}: opening ({parallel} handshakes in flight) against {server} {}",
        g.url
    ));
    let set = rt.block_on(modes::open_idle(&target(&g.url, token), n, parallel));
    sleep_s(1.0);
    let rss1 = sys::rss_kib(g.pid).unwrap_or(0);
    let self1 = sys::rss_kib(me).unwrap_or(0);
    let alive = set.alive();
    say(&format!(
        "idle x{n}: opened {} in {:.0} ms, {} errors, gateway RSS {rss0} -> {rss1} KiB",
        set.opened,
        set.open_ms,
        set.errors.len()
    ));
    let (opened, errors, open_ms) = (set.opened, set.errors.clone(), set.open_ms);
    rt.block_on(set.close());
    sleep_s(1.0);
    let rss2 = sys::rss_kib(g.pid).unwrap_or(0);
    let client = (self1 as f64 - self0 as f64) / opened.max(1) as f64;
    say(&format!("idle x{n}: {server} stop: {}", g.stop()));
    PerConn {
        server,
        n,
        opened,
        errors,
        open_ms,
        rss: [rss0, rss1, rss2],
        alive,
        client_kib_per_conn: client,
    }
}

/// One health run with the server's CPU time measured around it.
fn measure(
    rt: &Runtime,
    t: &Target,
    conns: usize,
    seconds: f64,
    cpu: &dyn Fn() -> Option<f64>,
) -> Measured {
    let o = RpcOpts {
        target: t.clone(),
        connections: conns,
        seconds,
        method: "health".into(),
        params: None,
        parallel: 16,
    };
    let c0 = cpu();
    let rpc = rt.block_on(modes::rpc(&o));
    let server_cpu_s = c0.zip(cpu()).map(|(a, b)| b - a);
    say(&format!(
        "health x{conns} {}: {:.0} req/s p50 {:.3} ms p99 {:.3} ms, {} errors, {} not ok",
        t.url,
        rpc.req_per_sec(),
        rpc.lat.p50,
        rpc.lat.p99,
        rpc.errors.len() + rpc.open_errors.len(),
        rpc.not_ok
    ));
    Measured { rpc, server_cpu_s }
}

fn hs(
    rt: &Runtime,
    label: &str,
    t: &Target,
    cfg: &Cfg,
    cpu: &dyn Fn() -> Option<f64>,
) -> (String, HsResult, Option<f64>) {
    let c0 = cpu();
    let h = rt.block_on(modes::handshakes(t, cfg.workers, cfg.seconds));
    let c = c0.zip(cpu()).map(|(a, b)| b - a);
    say(&format!(
        "handshakes {label}: {:.0}/s p50 {:.3} ms p99 {:.3} ms, {} errors",
        h.per_sec(),
        h.lat.p50,
        h.lat.p99,
        h.errors.len()
    ));
    (label.to_string(), h, c)
}

fn throughput(
    rt: &Runtime,
    bin: &Path,
    token: &str,
    cfg: &Cfg,
    r: &mut Results,
) -> Result<(), String> {
    let mut g = Gateway::start(bin, token)?;
    sleep_s(1.0);
    r.idle_rss_kib = sys::rss_kib(g.pid).unwrap_or(0);
    let ours = target(&g.url, token);
    let probe = rt.block_on(async {
        let (c, _) = open(&ours).await?;
        c.close(Duration::from_secs(1)).await;
        Ok::<(), String>(())
    });
    if let Err(e) = probe {
        return Err(format!(
            "handshake against our gateway failed: {e}; stderr: {}",
            g.stderr_tail()
        ));
    }
    let echo = echo::start_background(0).map_err(|e| format!("echo server: {e}"))?;
    let et = target(&format!("ws://127.0.0.1:{}", echo.port), token);
    let pid = g.pid;
    let gw_cpu = move || sys::cpu_secs(pid);
    let echo_cpu = || Some(sys::threads_cpu_secs("echo-server"));
    for &n in &cfg.health_conns {
        r.ours.push(measure(rt, &ours, n, cfg.seconds, &gw_cpu));
        r.echo.push(measure(rt, &et, n, cfg.seconds, &echo_cpu));
    }
    r.rss_after_kib[0] = sys::rss_kib(pid).unwrap_or(0);
    r.handshakes.push(hs(rt, "ours", &ours, cfg, &gw_cpu));
    r.rss_after_kib[1] = sys::rss_kib(pid).unwrap_or(0);
    r.handshakes.push(hs(rt, "echo", &et, cfg, &echo_cpu));
    echo.stop();
    r.stop = g.stop();
    r.log = g.log_summary();
    say(&format!("gateway stop: {}", r.stop));
    Ok(())
}

fn peer_run(rt: &Runtime, token: &str, cfg: &Cfg) -> Result<PeerResult, String> {
    let p = peer::start(token)?;
    say(&format!(
        "peer up at {} (listen {:?} ms, ready {:?} ms)",
        p.url, p.listen_ms, p.ready_ms
    ));
    sleep_s(1.0);
    let idle_rss_kib = [sys::rss_kib(p.pid).unwrap_or(0), p.rss_kib()];
    let kids = sys::children(p.pid).len();
    let t = target(&p.url, token);
    let pid = p.pid;
    let cpu = move || {
        let kids = sys::children(pid);
        std::iter::once(pid)
            .chain(kids)
            .map(sys::cpu_secs)
            .sum::<Option<f64>>()
    };
    let health = cfg
        .health_conns
        .iter()
        .map(|&n| measure(rt, &t, n, cfg.seconds, &cpu))
        .collect();
    let stop = p.stop();
    say(&format!("peer stop: {stop}"));
    Ok(PeerResult {
        listen_ms: p.listen_ms,
        ready_ms: p.ready_ms,
        idle_rss_kib,
        kids,
        health,
        stop,
    })
}
