//! Protocol-level load tool and measurement harness for the gateway (modeled on
//! `/work/shared/peer/rpc-load.mjs`). Every client connection does the full v4 handshake:
//! wait for `connect.challenge`, send a `connect` req (client `cli`/`cli`, role operator,
//! scope `operator.admin`, `auth.token`), wait for the `hello-ok` res. Loopback targets only.
//!
//! Run as `cargo bench --bench load -- <mode> [options]`:
//!
//! - `echo-server --port P [--tls]` — a bare tokio-tungstenite (over tokio-rustls with
//!   `--tls`) server that sends the challenge,
//!   answers `connect` with a minimal `hello-ok` and every other req with `{ok:true}`: the
//!   "echo baseline" for what a WebSocket round trip costs here.
//! - `rpc --url U --token T --connections N --seconds S --method health [--params JSON]` —
//!   N connections, each a sequential req/res loop for S s; prints JSON (req/s, p50/p90/p99/max
//!   latency in ms, errors). `--json` prints it on one line.
//! - `handshakes --url U --token T --workers W --seconds S` — W loops of
//!   open → challenge → connect → hello-ok → close; prints handshakes/s and latency.
//! - `idle --url U --token T --connections N --hold-seconds S [--connect-parallel 32]` —
//!   opens N authenticated connections (bounded parallel handshakes), prints `READY n` on
//!   stderr, holds them S s (answering pings), closes them, prints JSON.
//! - `report [--seconds 5] [--workers 8] [--idle-sizes 1000,10000] [--health-conns 1,50]` —
//!   the full suite against the release gateway binary (`$OPENCLAW_BIN`, else
//!   `$CARGO_TARGET_DIR/release/openclaw`, else `target/release/openclaw`): start-up time,
//!   idle RSS, RSS per idle connection, `health` req/s vs the echo baseline, handshakes/s;
//!   with `PEER=1` also the real OpenClaw gateway. Markdown on stdout, progress on stderr.
//! - `nodes [--nodes 10] [--seconds 4] [--warmup-seconds 0.5] [--rounds 3] [--inflight 1,32,256]
//!   [--per-conn 8] [--node-workers 2] [--json]` — the node relay (issue 11): starts the
//!   release gateway and N test nodes (signed device identities, `echo.test`, approved by an
//!   admin operator; a runtime of their own) that answer every `node.invoke.request` at once
//!   and also listen on their own loopback WS port; then for each in-flight level, closed loops
//!   of `node.invoke` through the gateway vs the same request frame sent straight to the node
//!   (alternating, `--rounds` times): invokes/s and p50/p99 with gateway/direct ratios.
//!   Markdown (or JSON) on stdout, progress on stderr. See `benches/load/relay.rs`.
//!
//! - `garbage --url U --token T [--connections 200] [--seconds 5]` — one client's `health`
//!   p50/p99 alone, then while N authenticated connections send only invalid frames
//!   (pipelined, reconnecting whenever closed); JSON with both and their ratios. See
//!   `benches/garbage-flood.sh` for old binary vs new.
//! - `churn [--cycles 10000] [--warmup 200] [--workers 4] [--json]` — a fresh release gateway,
//!   then a fresh `echo-server` process: per server, warm-up cycles, VmRSS and /proc/PID/fd
//!   count, `--cycles` full open → hello-ok → close cycles, settle (≤ 5 s), read again; JSON
//!   with before/after/deltas; exit 1 if the gateway's fds grew by > 2 or RSS by > 2 MiB.
//!   See `benches/load/churn.rs` and `benches/scale.sh`.
//!
//! Common options: `--url` (default `$GW_URL` or `ws://127.0.0.1:18789`), `--token`
//! (default `$GW_TOKEN` / `$OPENCLAW_GATEWAY_TOKEN`), `--timeout-ms` (10000),
//! `--client-mode` (`cli`; `ui` or `webchat` make clients the gateway lists in presence),
//! `--connect-parallel` (16 for rpc, 32 for idle: the gateway admits at most 32 unauthenticated
//! connections per address, as the real one does).
//!
//! Example: `CARGO_TARGET_DIR=/work/target-bench cargo build --release --bin openclaw &&
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench load -- report > report.md`
//!
//! The soft `RLIMIT_NOFILE` is raised to the hard limit at start (idle runs need one fd per
//! connection, and the spawned gateway inherits the limit).

/// The gateway's allocator (feature `mimalloc`), so that the bare echo server's figures
/// stay a like-for-like ceiling.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "load/args.rs"]
mod args;
#[path = "load/churn.rs"]
mod churn;
#[path = "load/client.rs"]
mod client;
#[path = "load/echo.rs"]
mod echo;
#[path = "load/garbage.rs"]
mod garbage;
#[path = "load/gateway.rs"]
mod gateway;
#[path = "load/markdown.rs"]
mod markdown;
#[path = "load/modes.rs"]
mod modes;
#[path = "load/nodes.rs"]
mod nodes;
#[path = "load/peer.rs"]
mod peer;
#[path = "load/relay.rs"]
mod relay;
#[path = "load/report.rs"]
mod report;
#[path = "load/stats.rs"]
mod stats;
#[path = "load/sys.rs"]
mod sys;

use std::time::Duration;

use serde_json::{json, Value};
use tokio::runtime::Runtime;

use args::Args;
use client::Target;
use stats::first_errors;

const USAGE: &str =
    "usage: cargo bench --bench load -- <echo-server|rpc|handshakes|idle|report|nodes|garbage|churn> [options]
  echo-server --port P [--tls]
  rpc         --url U --token T --connections N --seconds S --method health [--params JSON] [--json]
  handshakes  --url U --token T --workers W --seconds S [--json]
  idle        --url U --token T --connections N --hold-seconds S [--connect-parallel 32]
              [--client-mode cli|ui|webchat]
  report      [--seconds 5] [--workers 8] [--connect-parallel 32] [--idle-sizes 1000,10000]
              [--health-conns 1,50] [--startup-runs 5]   (PEER=1: also the real gateway)
  nodes       [--nodes 10] [--seconds 4] [--warmup-seconds 0.5] [--rounds 3]
              [--inflight 1,32,256] [--per-conn 8] [--node-workers 2] [--json]
  garbage     --url U --token T [--connections 200] [--seconds 5] [--json]
  churn       [--cycles 10000] [--warmup 200] [--workers 4] [--json]
see the //! header of benches/load.rs";

const KNOWN: &[&str] = &[
    "--port",
    "--url",
    "--token",
    "--connections",
    "--seconds",
    "--method",
    "--params",
    "--workers",
    "--hold-seconds",
    "--connect-parallel",
    "--timeout-ms",
    "--client-mode",
    "--idle-sizes",
    "--health-conns",
    "--startup-runs",
    "--tls",
    "--nodes",
    "--warmup-seconds",
    "--rounds",
    "--inflight",
    "--per-conn",
    "--node-workers",
    "--cycles",
    "--warmup",
];

fn main() {
    let a = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => fail(&e),
    };
    let unknown = a.unknown(KNOWN);
    if !unknown.is_empty() {
        fail(&format!("unknown option(s) {unknown:?}"));
    }
    let Some(mode) = a
        .mode
        .clone()
        .filter(|_| !a.flag("--help") && !a.flag("-h"))
    else {
        // Plain `cargo bench` (no mode): print usage, do nothing.
        println!("{USAGE}");
        return;
    };
    let (nofile, _) = sys::raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = match dispatch(&rt, &mode, &a, nofile) {
        Ok(c) => c,
        Err(e) => fail(&e),
    };
    rt.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code);
}

fn fail(msg: &str) -> ! {
    eprintln!("load: {msg}\n{USAGE}");
    std::process::exit(2)
}

fn dispatch(rt: &Runtime, mode: &str, a: &Args, nofile: u64) -> Result<i32, String> {
    match mode {
        "echo-server" => echo_server(rt, a),
        "rpc" => rpc(rt, a),
        "handshakes" => handshakes(rt, a),
        "idle" => idle(rt, a),
        "report" => {
            let r = report::run(rt, a, nofile)?;
            print!("{}", markdown::render(&r));
            Ok(0)
        }
        "nodes" => nodes_mode(rt, a),
        "garbage" => {
            let t = target(a)?;
            let conns = a.num("--connections", 200)?;
            let v = rt.block_on(garbage::run(&t, conns, a.num("--seconds", 5.0)?))?;
            print_json(a, &v);
            Ok(0)
        }
        "churn" => {
            let o = churn::Opts {
                cycles: a.num("--cycles", 10_000usize)?.clamp(1, 1_000_000),
                warmup: a.num("--warmup", 200usize)?.min(100_000),
                workers: a.num("--workers", 4usize)?.clamp(1, 256),
                timeout: Duration::from_millis(a.num("--timeout-ms", 10_000)?),
            };
            let (v, pass) = churn::run(rt, &o, &report::make_token())?;
            print_json(a, &v);
            Ok(i32::from(!pass))
        }
        other => Err(format!("unknown mode {other:?}")),
    }
}

fn target(a: &Args) -> Result<Target, String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let url = a.get("--url").map(str::to_string).or_else(|| env("GW_URL"));
    let url = url.unwrap_or_else(|| "ws://127.0.0.1:18789".into());
    if !args::is_loopback_url(&url) {
        return Err(format!("refusing non-loopback url {url}"));
    }
    let token = a
        .get("--token")
        .map(str::to_string)
        .or_else(|| env("GW_TOKEN"))
        .or_else(|| env("OPENCLAW_GATEWAY_TOKEN"));
    let timeout = Duration::from_millis(a.num("--timeout-ms", 10_000)?);
    let mode = match a.get("--client-mode").unwrap_or("cli") {
        "cli" => "cli",
        "ui" => "ui",
        "webchat" => "webchat",
        other => return Err(format!("--client-mode {other:?}: use cli, ui or webchat")),
    };
    Ok(Target {
        url,
        token: token.unwrap_or_default(),
        timeout,
        mode,
    })
}

fn print_json(a: &Args, v: &Value) {
    if a.flag("--json") {
        println!("{v}");
    } else {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    }
}

fn echo_server(rt: &Runtime, a: &Args) -> Result<i32, String> {
    let port: u16 = a.num("--port", 0)?;
    let tls = if a.flag("--tls") {
        Some(echo::tls_acceptor()?)
    } else {
        None
    };
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| format!("bind: {e}"))?;
        println!(
            "listening on {scheme}://{}",
            l.local_addr().map_err(|e| e.to_string())?
        );
        tokio::select! {
            _ = echo::serve(l, tls) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(0)
    })
}

fn rpc(rt: &Runtime, a: &Args) -> Result<i32, String> {
    let method = a.get("--method").unwrap_or("health").to_string();
    if method.is_empty()
        || !method
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(format!("bad method name {method:?}"));
    }
    let params = a.get("--params").map(str::to_string);
    if let Some(p) = &params {
        serde_json::from_str::<Value>(p).map_err(|e| format!("--params is not JSON: {e}"))?;
    }
    let o = modes::RpcOpts {
        target: target(a)?,
        connections: a.num("--connections", 1)?,
        seconds: a.num("--seconds", 5.0)?,
        method,
        params,
        parallel: a.num("--connect-parallel", 16)?,
    };
    let r = rt.block_on(modes::rpc(&o));
    print_json(a, &r.json(&o));
    Ok(i32::from(
        r.opened == 0 || !r.errors.is_empty() || r.not_ok > 0,
    ))
}

fn handshakes(rt: &Runtime, a: &Args) -> Result<i32, String> {
    let t = target(a)?;
    let workers = a.num("--workers", a.num("--connections", 4)?)?;
    let r = rt.block_on(modes::handshakes(&t, workers, a.num("--seconds", 5.0)?));
    print_json(a, &r.json(&t.url));
    Ok(i32::from(r.lat.n == 0))
}

fn idle(rt: &Runtime, a: &Args) -> Result<i32, String> {
    let t = target(a)?;
    let n = a.num("--connections", 1)?;
    let hold = a.num("--hold-seconds", a.num("--seconds", 5.0)?)?;
    let set = rt.block_on(modes::open_idle(&t, n, a.num("--connect-parallel", 32)?));
    eprintln!("READY {} pid={}", set.opened, std::process::id());
    std::thread::sleep(Duration::from_secs_f64(hold));
    let summary = json!({
        "url": t.url, "mode": "idle", "connections": n, "holdSeconds": hold, "opened": set.opened,
        "openErrors": set.errors.len(), "firstOpenErrors": first_errors(&set.errors, 5),
        "openAllMs": stats::r3(set.open_ms), "handshakeMs": set.handshake.json(),
    });
    let opened = set.opened;
    let (alive, events) = rt.block_on(set.close());
    let mut summary = summary;
    summary["aliveAtEnd"] = json!(alive);
    summary["eventsReceived"] = json!(events);
    print_json(a, &summary);
    Ok(i32::from(opened == 0))
}

fn nodes_mode(rt: &Runtime, a: &Args) -> Result<i32, String> {
    let o = relay::Opts {
        nodes: a.num("--nodes", 10usize)?.clamp(1, 1000),
        seconds: a.num("--seconds", 4.0f64)?.clamp(0.1, 600.0),
        warmup: a.num("--warmup-seconds", 0.5f64)?.clamp(0.0, 60.0),
        rounds: a.num("--rounds", 3usize)?.clamp(1, 100),
        inflight: a.list("--inflight", &[1, 32, 256])?,
        per_conn: a.num("--per-conn", 8usize)?.clamp(1, 48),
        node_workers: a.num("--node-workers", 2usize)?.clamp(1, 64),
        timeout: Duration::from_millis(a.num("--timeout-ms", 10_000)?),
    };
    if o.inflight.iter().any(|&l| l == 0 || l > 10_000) {
        return Err("--inflight values must be 1..=10000".into());
    }
    let r = relay::run(rt, &o)?;
    if a.flag("--json") {
        println!("{}", r.json());
    } else {
        print!("{}", r.markdown());
    }
    Ok(i32::from(r.failed()))
}
