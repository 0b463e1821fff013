//! Renders the `report` results as Markdown (summary with PASS/FAIL against the targets,
//! then the detail tables).

use std::fmt::Write;

use crate::modes::HsResult;
use crate::report::{Measured, PeerResult, PerConn, Results};
use crate::stats::first_errors;

/// Targets from the brief.
const STARTUP_MS: f64 = 25.0;
const IDLE_RSS_BYTES: f64 = 15e6;
const PER_CONN_KIB: f64 = 20.0;
const HEALTH_RATIO: f64 = 0.5;

fn verdict(ok: bool) -> &'static str {
    if ok {
        "**PASS**"
    } else {
        "**FAIL**"
    }
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn min_max(xs: &[f64]) -> (f64, f64) {
    xs.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        })
}

/// Thousands separators for rates.
fn num(x: f64) -> String {
    let s = format!("{:.0}", x);
    let (sign, digits) = s.split_at(usize::from(s.starts_with('-')));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

fn mib(kib: u64) -> String {
    format!(
        "{:.1} MiB ({:.1} MB)",
        kib as f64 / 1024.0,
        kib as f64 * 1024.0 / 1e6
    )
}

fn per_conn_kib(p: &PerConn) -> f64 {
    (p.rss[1] as f64 - p.rss[0] as f64) / p.opened.max(1) as f64
}

fn rate(m: &Measured) -> String {
    format!(
        "{} req/s (p50 {:.3} / p99 {:.3} ms)",
        num(m.rpc.req_per_sec()),
        m.rpc.lat.p50,
        m.rpc.lat.p99
    )
}

/// The whole document body (the caller prints it).
pub fn render(r: &Results) -> String {
    let mut s = String::new();
    header(&mut s, r);
    summary(&mut s, r);
    load_table(&mut s, r);
    idle_table(&mut s, r);
    hs_table(&mut s, r);
    misc_section(&mut s, r);
    peer_section(&mut s, r.peer.as_ref());
    errors_section(&mut s, r);
    s
}

fn sh(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn header(s: &mut String, r: &Results) {
    let root = env!("CARGO_MANIFEST_DIR");
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let _ = writeln!(s, "# openclaw gateway: load report\n");
    let _ = writeln!(s, "- date: {}", sh("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]));
    let _ = writeln!(
        s,
        "- binary: `{}` (git {})",
        r.bin.display(),
        sh("git", &["-C", root, "rev-parse", "--short", "HEAD"])
    );
    let _ = writeln!(
        s,
        "- machine: {cores} cores ({cpu}), Linux {}",
        sh("uname", &["-r"])
    );
    let _ = writeln!(s, "- load client: this process (tokio, {cores} workers); echo baseline: own runtime in this process");
    let _ = writeln!(
        s,
        "- {} s per load run, {} handshake workers, RLIMIT_NOFILE {}\n",
        r.seconds, r.workers, r.nofile
    );
}

fn summary(s: &mut String, r: &Results) {
    let _ = writeln!(
        s,
        "## Summary\n\n| # | metric | ours | echo baseline | target | result |\n|---|---|---|---|---|---|"
    );
    let (lo, hi) = min_max(&r.startup_connect_ms);
    let med = median(&r.startup_connect_ms);
    let _ = writeln!(
        s,
        "| a | start-up: spawn → port accepts TCP (median of {}) | {med:.1} ms (min {lo:.1}, max {hi:.1}) | – | ≤ {STARTUP_MS} ms | {} |",
        r.startup_connect_ms.len(),
        verdict(med <= STARTUP_MS)
    );
    let idle_ok = r.idle_rss_kib as f64 * 1024.0 <= IDLE_RSS_BYTES;
    let _ = writeln!(
        s,
        "| b | idle RSS 1 s after ready | {} | – | ≤ 15 MB | {} |",
        mib(r.idle_rss_kib),
        verdict(idle_ok)
    );
    summary_per_conn(s, r);
    summary_load(s, r);
    s.push('\n');
}

fn summary_per_conn(s: &mut String, r: &Results) {
    for p in r.per_conn.iter().filter(|p| p.server == "ours") {
        let k = per_conn_kib(p);
        let echo = r.per_conn.iter().find(|e| e.server == "echo" && e.n == p.n);
        let echo = echo
            .map(|e| format!("{:.1} KiB", per_conn_kib(e)))
            .unwrap_or_else(|| "–".into());
        let ok = p.opened == p.n && k <= PER_CONN_KIB;
        let note = if p.opened < p.n {
            format!(" (only {} of {} opened)", p.opened, p.n)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "| c | RSS per idle authenticated connection, N = {} | {k:.1} KiB{note} | {echo} | ≤ {PER_CONN_KIB} KiB | {} |",
            p.n,
            verdict(ok)
        );
    }
}

/// Health rows (the target applies to the run with the most connections) and handshakes.
fn summary_load(s: &mut String, r: &Results) {
    let last = r.ours.len().saturating_sub(1);
    for (i, (o, e)) in r.ours.iter().zip(&r.echo).enumerate() {
        let ratio = o.rpc.req_per_sec() / e.rpc.req_per_sec().max(1e-9);
        let clean = o.rpc.errors.is_empty() && o.rpc.open_errors.is_empty() && o.rpc.not_ok == 0;
        let (tgt, res) = if i == last {
            let v = verdict(ratio >= HEALTH_RATIO && clean);
            ("≥ 50 % of echo", format!("{v} ({:.0} %)", ratio * 100.0))
        } else {
            ("–", format!("ratio {:.0} %", ratio * 100.0))
        };
        let (oc, ec) = (rate(o), rate(e));
        let _ = writeln!(
            s,
            "| d | `health` on {} connection(s) | {oc} | {ec} | {tgt} | {res} |",
            o.rpc.opened
        );
    }
    let hs: Vec<String> = r.handshakes.iter().map(|(_, h, _)| hs_cell(h)).collect();
    if let [ours, echo] = hs.as_slice() {
        let _ = writeln!(
            s,
            "| e | handshakes/s ({} workers) | {ours} | {echo} | – | – |",
            r.workers
        );
    }
}

fn hs_cell(h: &HsResult) -> String {
    format!(
        "{}/s (p50 {:.3} / p99 {:.3} ms)",
        num(h.per_sec()),
        h.lat.p50,
        h.lat.p99
    )
}

fn cpu_per(cpu: Option<f64>, n: usize) -> String {
    cpu.map(|c| format!("{:.1}", c * 1e6 / n.max(1) as f64))
        .unwrap_or_else(|| "–".into())
}

fn load_rows(s: &mut String, server: &str, runs: &[Measured]) {
    for m in runs {
        let (x, l) = (&m.rpc, &m.rpc.lat);
        let _ = writeln!(
            s,
            "| {server} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} | {} | {} |",
            x.opened,
            num(x.req_per_sec()),
            l.p50,
            l.p90,
            l.p99,
            l.max,
            l.n,
            x.errors.len() + x.open_errors.len(),
            x.not_ok,
            cpu_per(m.server_cpu_s, l.n)
        );
    }
}

fn load_table(s: &mut String, r: &Results) {
    let _ = writeln!(
        s,
        "## `health` request loops (one request in flight per connection)\n"
    );
    let _ = writeln!(s, "| server | conns | req/s | p50 ms | p90 ms | p99 ms | max ms | requests | errors | ok:false | server CPU µs/req |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    load_rows(s, "ours", &r.ours);
    load_rows(s, "echo", &r.echo);
    if let Some(Ok(p)) = &r.peer {
        load_rows(s, "real OpenClaw", &p.health);
    }
    s.push('\n');
}

fn idle_table(s: &mut String, r: &Results) {
    let _ = writeln!(
        s,
        "## Idle authenticated connections (fresh server process per N)\n"
    );
    let _ = writeln!(s, "| server | N | opened | open errors | open time | RSS idle | RSS with N | KiB/conn | RSS 1 s after closing | alive at RSS read | client KiB/conn |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for p in &r.per_conn {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.1} s | {} KiB | {} KiB | {:.1} | {} KiB | {} | {:.1} |",
            p.server,
            p.n,
            p.opened,
            p.errors.len(),
            p.open_ms / 1e3,
            p.rss[0],
            p.rss[1],
            per_conn_kib(p),
            p.rss[2],
            p.alive,
            p.client_kib_per_conn
        );
    }
    s.push('\n');
}

fn hs_table(s: &mut String, r: &Results) {
    let _ = writeln!(
        s,
        "## Handshake loops (open → challenge → connect → hello-ok → close)\n"
    );
    let _ = writeln!(s, "| server | workers | handshakes/s | p50 ms | p90 ms | p99 ms | max ms | errors | server CPU µs/handshake |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for (label, h, cpu) in &r.handshakes {
        let l = &h.lat;
        let _ = writeln!(
            s,
            "| {label} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} |",
            h.workers,
            num(h.per_sec()),
            l.p50,
            l.p90,
            l.p99,
            l.max,
            h.errors.len(),
            cpu_per(*cpu, l.n)
        );
    }
    s.push('\n');
}

fn misc_section(s: &mut String, r: &Results) {
    let _ = writeln!(s, "## Other observations\n");
    let _ = writeln!(
        s,
        "- start-up samples (ms, spawn → TCP accept): {:?}",
        r.startup_connect_ms
            .iter()
            .map(|x| (x * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    );
    let _ = writeln!(
        s,
        "- start-up samples (ms, spawn → `listening on` line read): {:?}",
        r.startup_line_ms
            .iter()
            .map(|x| (x * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    );
    let n_hs = r.handshakes.first().map(|(_, h, _)| h.lat.n).unwrap_or(0);
    let _ = writeln!(
        s,
        "- main gateway RSS: {} KiB idle → {} KiB after the `health` runs → {} KiB after the handshake run ({} handshakes)",
        r.idle_rss_kib, r.rss_after_kib[0], r.rss_after_kib[1], n_hs
    );
    let hello = r
        .ours
        .first()
        .and_then(|m| m.rpc.hello_bytes)
        .map(|b| format!("{b} bytes"))
        .unwrap_or_else(|| "?".into());
    let _ = writeln!(s, "- `hello-ok` frame size (ours): {hello}");
    let _ = writeln!(s, "- main gateway shutdown: {}", r.stop);
    let (w, e, kinds) = &r.log;
    let _ = writeln!(
        s,
        "- main gateway stderr over the whole run: {w} WARN, {e} ERROR lines; kinds: {kinds:?}\n"
    );
}

fn peer_section(s: &mut String, p: Option<&Result<PeerResult, String>>) {
    match p {
        None => {}
        Some(Err(e)) => {
            let _ = writeln!(s, "## Real OpenClaw gateway (PEER=1)\n\nskipped: {e}\n");
        }
        Some(Ok(p)) => {
            let _ = writeln!(
                s,
                "## Real OpenClaw gateway (PEER=1, Node, via start-peer.sh)\n"
            );
            let opt = |x: Option<f64>| {
                x.map(|v| format!("{v:.0} ms"))
                    .unwrap_or_else(|| "?".into())
            };
            let _ = writeln!(
                s,
                "- start-peer.sh: port listening after {}, `[gateway] ready` after {}",
                opt(p.listen_ms),
                opt(p.ready_ms)
            );
            let _ =
                writeln!(
                s,
                "- idle RSS 1 s after ready: gateway process {}; with its {} child process(es) {}",
                mib(p.idle_rss_kib[0]), p.kids, mib(p.idle_rss_kib[1])
            );
            for m in &p.health {
                let _ = writeln!(
                    s,
                    "- `health` on {} connection(s): {}",
                    m.rpc.opened,
                    rate(m)
                );
            }
            let _ = writeln!(s, "- stop: {}\n", p.stop);
        }
    }
}

fn errors_section(s: &mut String, r: &Results) {
    let mut lines = Vec::new();
    let runs = r
        .ours
        .iter()
        .map(|m| ("ours", m))
        .chain(r.echo.iter().map(|m| ("echo", m)));
    for (who, m) in runs {
        let all: Vec<String> = m
            .rpc
            .open_errors
            .iter()
            .chain(&m.rpc.errors)
            .cloned()
            .collect();
        if !all.is_empty() || m.rpc.first_not_ok.is_some() {
            lines.push(format!(
                "- {who} x{}: {:?} first ok:false: {:?}",
                m.rpc.opened,
                first_errors(&all, 3),
                m.rpc.first_not_ok
            ));
        }
    }
    for p in r.per_conn.iter().filter(|p| !p.errors.is_empty()) {
        lines.push(format!(
            "- idle {} x{}: {:?}",
            p.server,
            p.n,
            first_errors(&p.errors, 3)
        ));
    }
    for (label, h, _) in r.handshakes.iter().filter(|(_, h, _)| !h.errors.is_empty()) {
        lines.push(format!(
            "- handshakes {label}: {:?}",
            first_errors(&h.errors, 3)
        ));
    }
    if !lines.is_empty() {
        let _ = writeln!(s, "## Errors seen\n\n{}\n", lines.join("\n"));
    }
}
