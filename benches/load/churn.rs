//! `churn`: connection churn against the release gateway and, as the baseline, the bare echo
//! server (this binary in `echo-server` mode, a separate process so its RSS and descriptors
//! can be read on their own). For each server: 1 s after it is ready, `--warmup` full cycles
//! (open → challenge → connect → hello-ok → close), settle, read VmRSS (/proc/PID/status)
//! and the number of open descriptors (/proc/PID/fd); then `--cycles` full cycles from
//! `--workers` parallel loops; settle again (poll every 50 ms, at most 5 s, until the
//! descriptor count is back at its level before); read both again.
//!
//! Prints JSON (before, after, deltas, cycles/s for each server, the gateway's figures as
//! ratios after/before next to the bare server's). Exits 1 when the gateway's descriptor
//! count after is above before + [`FD_SLACK`], or its RSS grew by more than
//! [`RSS_SLACK_KIB`], or a cycle failed. A benchmark, not a timed test: the loops are bounded
//! by count and by [`TIME_CAP`].

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::runtime::Runtime;

use crate::client::{open, Target};
use crate::gateway::{self, Gateway};
use crate::stats::{first_errors, r3};
use crate::sys;

/// Descriptors the gateway may hold above its level before the cycles (a rotated log, a
/// state file that happens to be open at the read).
pub const FD_SLACK: u64 = 2;
/// RSS growth allowed across the cycles (allocator caches, lazily touched pages).
pub const RSS_SLACK_KIB: u64 = 2048;
/// Wall-time bound of one server's cycle phase.
const TIME_CAP: Duration = Duration::from_secs(600);
/// How long the server may take to release the closed connections' descriptors.
const SETTLE_MAX: Duration = Duration::from_secs(5);
/// How long a closing client waits for the server's close frame.
const LINGER: Duration = Duration::from_secs(2);
/// Failed cycles after which a worker gives up.
const MAX_ERRORS: usize = 1000;

/// `churn` parameters.
pub struct Opts {
    /// Measured cycles per server.
    pub cycles: usize,
    /// Warm-up cycles per server.
    pub warmup: usize,
    /// Parallel cycle loops.
    pub workers: usize,
    /// Per-step client timeout.
    pub timeout: Duration,
}

/// A process's memory and descriptors at one moment.
#[derive(Clone, Copy, Default)]
struct Snap {
    rss_kib: u64,
    fds: u64,
}

impl Snap {
    fn read(pid: u32) -> Snap {
        Snap {
            rss_kib: sys::rss_kib(pid).unwrap_or(0),
            fds: fd_count(pid).unwrap_or(0),
        }
    }

    fn json(&self) -> Value {
        json!({ "rssKib": self.rss_kib, "fds": self.fds })
    }
}

/// Open descriptors of `pid` (entries of /proc/PID/fd).
fn fd_count(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Polls until `pid` holds at most `fds` descriptors (bounded by [`SETTLE_MAX`]), then
/// waits 500 ms more for freed memory; returns the ms spent polling.
fn settle(pid: u32, fds: u64) -> f64 {
    let t0 = Instant::now();
    while fd_count(pid).unwrap_or(0) > fds && t0.elapsed() < SETTLE_MAX {
        std::thread::sleep(Duration::from_millis(50));
    }
    let waited = t0.elapsed().as_secs_f64() * 1e3;
    std::thread::sleep(Duration::from_millis(500));
    waited
}

/// Outcome of a batch of cycles.
struct Cycles {
    done: usize,
    errors: Vec<String>,
    elapsed_s: f64,
}

/// `n` full cycles from `workers` loops (each bounded by count, errors and [`TIME_CAP`]).
async fn cycles(t: &Target, n: usize, workers: usize) -> Cycles {
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let deadline = t0 + TIME_CAP;
    let tasks: Vec<_> = (0..workers.clamp(1, n.max(1)))
        .map(|_| {
            let (t, next) = (t.clone(), next.clone());
            tokio::spawn(async move {
                let (mut done, mut errs) = (0usize, Vec::new());
                while next.fetch_add(1, Ordering::Relaxed) < n && Instant::now() < deadline {
                    match open(&t).await {
                        Ok((c, _)) => {
                            c.close(LINGER).await;
                            done += 1;
                        }
                        Err(e) => {
                            errs.push(e);
                            if errs.len() > MAX_ERRORS {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                (done, errs)
            })
        })
        .collect();
    let (mut done, mut errors) = (0, Vec::new());
    for task in tasks {
        match task.await {
            Ok((d, e)) => {
                done += d;
                errors.extend(e);
            }
            Err(e) => errors.push(format!("worker panicked: {e}")),
        }
    }
    Cycles {
        done,
        errors,
        elapsed_s: t0.elapsed().as_secs_f64(),
    }
}

/// One server's churn figures.
struct ServerRun {
    before: Snap,
    after: Snap,
    cycles: Cycles,
    warmup_errors: usize,
    settle_ms: f64,
}

impl ServerRun {
    fn rss_delta(&self) -> i64 {
        self.after.rss_kib as i64 - self.before.rss_kib as i64
    }

    fn fd_delta(&self) -> i64 {
        self.after.fds as i64 - self.before.fds as i64
    }

    fn json(&self) -> Value {
        let ratio = |a: u64, b: u64| r3(a as f64 / (b.max(1)) as f64);
        json!({
            "before": self.before.json(),
            "after": self.after.json(),
            "delta": { "rssKib": self.rss_delta(), "fds": self.fd_delta() },
            "ratioAfterBefore": {
                "rss": ratio(self.after.rss_kib, self.before.rss_kib),
                "fds": ratio(self.after.fds, self.before.fds),
            },
            "cycles": self.cycles.done,
            "errors": self.cycles.errors.len(),
            "firstErrors": first_errors(&self.cycles.errors, 5),
            "warmupErrors": self.warmup_errors,
            "elapsedS": r3(self.cycles.elapsed_s),
            "cyclesPerSec": (self.cycles.done as f64 / self.cycles.elapsed_s.max(1e-9)).round(),
            "settleMs": r3(self.settle_ms),
        })
    }
}

fn run_server(rt: &Runtime, label: &str, pid: u32, t: &Target, o: &Opts) -> ServerRun {
    std::thread::sleep(Duration::from_secs(1));
    let idle = Snap::read(pid);
    let warm = rt.block_on(cycles(t, o.warmup, o.workers));
    settle(pid, idle.fds);
    let before = Snap::read(pid);
    eprintln!(
        "[churn] {label}: warm-up {} cycles ({} errors); before: RSS {} KiB, {} fds; running {}",
        warm.done,
        warm.errors.len(),
        before.rss_kib,
        before.fds,
        o.cycles
    );
    let c = rt.block_on(cycles(t, o.cycles, o.workers));
    let settle_ms = settle(pid, before.fds);
    let after = Snap::read(pid);
    eprintln!(
        "[churn] {label}: {} cycles in {:.1} s ({} errors); after: RSS {} KiB, {} fds",
        c.done,
        c.elapsed_s,
        c.errors.len(),
        after.rss_kib,
        after.fds
    );
    ServerRun {
        before,
        after,
        cycles: c,
        warmup_errors: warm.errors.len(),
        settle_ms,
    }
}

/// Runs the churn against a fresh release gateway and a fresh echo server; returns the JSON
/// summary and whether the gateway stayed within the thresholds.
pub fn run(rt: &Runtime, o: &Opts, token: &str) -> Result<(Value, bool), String> {
    let bin = gateway::bin_path();
    if !Path::new(&bin).is_file() {
        return Err(format!(
            "{} not found: build it first (cargo build --release --bin openclaw) or set OPENCLAW_BIN",
            bin.display()
        ));
    }
    let target = |url: &str| Target {
        url: url.to_string(),
        token: token.to_string(),
        timeout: o.timeout,
        mode: "cli",
    };
    let me = std::process::id();
    let client0 = Snap::read(me);
    let mut g = Gateway::start(&bin, token)?;
    let gw = run_server(rt, "gateway", g.pid, &target(&g.url), o);
    let (warn, error, kinds) = g.log_summary();
    let gw_stop = g.stop();
    drop(g);
    let mut e = Gateway::start_echo()?;
    let echo = run_server(rt, "echo", e.pid, &target(&e.url), o);
    let echo_stop = e.stop();
    drop(e);
    let client1 = Snap::read(me);
    let fd_ok = gw.after.fds <= gw.before.fds + FD_SLACK;
    let rss_ok = gw.rss_delta() <= RSS_SLACK_KIB as i64;
    let cycles_ok = gw.cycles.done == o.cycles && gw.cycles.errors.is_empty();
    let pass = fd_ok && rss_ok && cycles_ok;
    let v = json!({
        "mode": "churn",
        "cycles": o.cycles,
        "warmup": o.warmup,
        "workers": o.workers,
        "thresholds": { "fdSlack": FD_SLACK, "rssSlackKib": RSS_SLACK_KIB },
        "gateway": gw.json(),
        "echo": echo.json(),
        "gatewayLog": { "warn": warn, "error": error, "kinds": kinds },
        "stops": { "gateway": gw_stop, "echo": echo_stop },
        "client": { "before": client0.json(), "after": client1.json() },
        "pass": { "fds": fd_ok, "rss": rss_ok, "cycles": cycles_ok, "all": pass },
    });
    Ok((v, pass))
}
