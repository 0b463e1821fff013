//! The full-disk scenario (issue 14, defect 2), shared by `tests/audit.rs` and
//! `tests/chaos.rs` (each includes this file with `#[path]`; both have `mod common`): the
//! state dir's `logs/` is a small tmpfs that fills while clients keep logging in, then space
//! is freed. Also the audit-file readers both use: every line of every file must parse.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{self, patience, require, run_bounded, temp_dir, Client, Gw, Opts, TOKEN};

/// A tmpfs of `size` mounted on `dir`, unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts it (root only); `Err` says why it cannot.
    pub fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        if !is_root() {
            return Err("not root: mounting a tmpfs needs CAP_SYS_ADMIN".into());
        }
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("mount");
        cmd.args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
        ])
        .arg(dir);
        let (code, _, err) = run_bounded(cmd);
        if code != 0 {
            return Err(format!("mount -t tmpfs failed ({code}): {}", err.trim()));
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let mut cmd = Command::new("umount");
        cmd.arg(&self.0);
        if run_bounded(cmd).0 != 0 {
            // still busy: detach it now, the kernel frees it when the last user goes
            let mut lazy = Command::new("umount");
            lazy.arg("-l").arg(&self.0);
            let _ = run_bounded(lazy);
        }
    }
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// `<dir>/audit.jsonl.N` … `.1`, `audit.jsonl`: every existing file, oldest first. All
/// numbered files, not just `.1` up to the first gap: a kill between a rotation's renames
/// leaves one missing number until the next start finishes the rotation.
pub fn audit_files(logs: &Path) -> Vec<PathBuf> {
    let base = logs.join("audit.jsonl");
    let mut numbers: Vec<usize> = std::fs::read_dir(logs)
        .map(|d| {
            d.filter_map(|e| {
                let name = e.ok()?.file_name();
                name.to_str()?.strip_prefix("audit.jsonl.")?.parse().ok()
            })
            .collect()
        })
        .unwrap_or_default();
    numbers.sort_unstable();
    let mut files: Vec<PathBuf> = numbers
        .iter()
        .rev()
        .map(|i| logs.join(format!("audit.jsonl.{i}")))
        .collect();
    if base.exists() {
        files.push(base);
    }
    files
}

/// Every line of every file, in order; each must parse (a torn fragment glued to a record
/// does not). With `allow_torn`, a partial last line (no newline) of the current file is
/// left out.
pub fn events_in(logs: &Path, allow_torn: bool) -> Vec<Value> {
    let mut out = Vec::new();
    for f in audit_files(logs) {
        // Renamed by a rotation since it was listed: its lines are missing from this read,
        // which the callers' gapless checks see.
        let mut text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", f.display()),
        };
        if allow_torn && !text.ends_with('\n') {
            let keep = text.rfind('\n').map_or(0, |i| i + 1);
            text.truncate(keep);
        }
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{}: ends in a partial line",
            f.display()
        );
        for l in text.lines() {
            let v = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: unparsable line {l:?}: {e}", f.display()));
            out.push(v);
        }
    }
    out
}

/// Asserts that the seqs are exactly 1..=N in order (so none is missing or repeated);
/// returns N.
pub fn assert_gapless(events: &[Value]) -> u64 {
    for (i, v) in events.iter().enumerate() {
        assert_eq!(
            v["seq"].as_u64(),
            Some(i as u64 + 1),
            "seq {} at position {i} (want {}): {v}",
            v["seq"],
            i + 1
        );
    }
    events.len() as u64
}

/// `/readyz`: (status, body).
pub fn readyz(port: u16) -> (u16, Value) {
    let (code, body) = common::http_get(port, "/readyz");
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// What the scenario measured.
#[derive(Debug, Default)]
pub struct FullDisk {
    /// Logins answered hello-ok (each must have its `auth.ok` on disk).
    pub hello_ok: usize,
    /// Logins refused because their `auth.ok` could not be written.
    pub refused_login: usize,
    /// Upgrades refused 503 while the log was failing.
    pub refused_upgrade: usize,
    /// Audit write failures the gateway counted.
    pub write_errors: u64,
    /// Lines in the log at the end, and files it spans.
    pub lines: u64,
    pub files: usize,
    pub wall: Duration,
}

/// Shared tallies of the login loops.
#[derive(Default)]
struct Tally {
    ok_ids: Mutex<Vec<String>>,
    refused_login: AtomicUsize,
    refused_upgrade: AtomicUsize,
}

/// One client logging in again and again until `stop` (at most 2 000 times).
async fn login_loop(url: String, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    for _ in 0..2_000 {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let t = Duration::from_secs(5);
        let ws = match tokio::time::timeout(t, tokio_tungstenite::connect_async(&url)).await {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(_)) => {
                // a refused upgrade (503 while the log is failing)
                tally.refused_upgrade.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Err(_) => panic!("an upgrade hung for {t:?}"),
        };
        let mut c = Client::from_ws(ws);
        let params = common::connect_params(TOKEN, "cli", "cli", &["operator.read"]);
        let (_, res) = tokio::time::timeout(t, c.connect_with(params))
            .await
            .expect("a login hung");
        record(&tally, &res);
        let _ = c.ws.close(None).await;
    }
}

/// Tallies one `connect` answer: hello-ok (its connId) or the audit refusal; anything else
/// fails the test.
fn record(tally: &Tally, res: &Value) {
    if res["ok"] == true {
        let id = res["payload"]["server"]["connId"].as_str().unwrap();
        tally.ok_ids.lock().unwrap().push(id.to_string());
        return;
    }
    let msg = res["error"]["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("audit log cannot be written"),
        "a login refused for another reason: {res}"
    );
    tally.refused_login.fetch_add(1, Ordering::Relaxed);
}

/// Writes `chunk`-byte pieces into `path` (pausing `pause` between them) until the
/// filesystem is full; returns the bytes written.
fn fill(path: &Path, chunk: usize, pause: Duration) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let piece = vec![b'x'; chunk];
    let mut n = 0u64;
    for _ in 0..1_000_000 {
        match f.write(&piece) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k as u64,
        }
        std::thread::sleep(pause);
    }
    n
}

/// The scenario: `logs/` on a 1 MiB tmpfs rotating every 64 KiB; 12 clients log in again
/// and again while a filler takes the free space bit by bit; clients that upgraded before the
/// disk filled send `connect` while the log is failing; space is freed. Asserts: every line of
/// every file parses (no torn fragment), `seq` runs 1..=N with no gap or repeat, every
/// hello-ok has its `auth.ok`, every login while the log was failing was refused with the
/// audit error. `None`: no tmpfs (skipped).
pub async fn logins_through_a_full_disk(tag: &str) -> Option<FullDisk> {
    let started = Instant::now();
    let home = temp_dir(tag);
    let logs = home.join(".openclaw").join("logs");
    let fs = require("tmpfs", Tmpfs::mount(&logs, "1m"))?;
    let opts = Opts {
        config: Some(r#"{ audit: { maxBytes: 65536, keep: 1000 } }"#.into()),
        env: vec![(
            "OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP".into(),
            "1000".into(),
        )],
        ..Default::default()
    };
    let gw = Gw::start_in(home.clone(), opts);
    // clients that upgrade now and log in only once the log is failing
    let mut parked = Vec::new();
    for _ in 0..4 {
        parked.push(Client::connect(&gw.url()).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let loops: Vec<_> = (0..12)
        .map(|_| tokio::spawn(login_loop(gw.url(), stop.clone(), tally.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // take the free space bit by bit while the logins go on
    let filler = logs.join("filler");
    let f2 = filler.clone();
    let filled = tokio::task::spawn_blocking(move || fill(&f2, 700, Duration::from_micros(300)))
        .await
        .unwrap();
    let deadline = Instant::now() + patience();
    while readyz(gw.port).0 != 503 {
        assert!(Instant::now() < deadline, "the audit log never failed");
        // grab whatever the writer's cut-back gave back
        let _ = fill(&filler.with_extension("more"), 512, Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // a login on an accepted upgrade while the log cannot be written: refused, not hello-ok
    for c in &mut parked {
        let params = common::connect_params(TOKEN, "cli", "cli", &["operator.read"]);
        let (_, res) = c.connect_with(params).await;
        assert_ne!(
            res["ok"], true,
            "hello-ok while the audit log cannot be written: {res}"
        );
        record(&tally, &res);
    }
    tokio::time::sleep(Duration::from_millis(800)).await;

    // free the space: the log recovers, logins go on
    std::fs::remove_file(&filler).unwrap();
    let _ = std::fs::remove_file(filler.with_extension("more"));
    let deadline = Instant::now() + patience();
    while readyz(gw.port).0 != 200 {
        assert!(Instant::now() < deadline, "/readyz never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // logins go on after the recovery: a bounded number of them, not a stretch of time (at
    // a few thousand logins a second the loops would fill this 1 MiB disk again within
    // half a second)
    let recovered_at = tally.ok_ids.lock().unwrap().len();
    let deadline = Instant::now() + patience();
    while tally.ok_ids.lock().unwrap().len() < recovered_at + 24 {
        assert!(Instant::now() < deadline, "no logins after the recovery");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.await.unwrap();
    }
    let (mut last, hello) = Client::authed(&gw.url(), TOKEN).await;
    assert_eq!(last.call("health", json!({})).await["ok"], true);
    tally
        .ok_ids
        .lock()
        .unwrap()
        .push(hello["server"]["connId"].as_str().unwrap().to_string());

    let write_errors = write_errors(&gw);
    drop(last);
    drop(parked);
    // stop the gateway (SIGTERM drains the queue) so the files hold still while read
    let mut gw = gw;
    gw.signal(libc::SIGTERM);
    assert_eq!(gw.wait_exit(), Some(0), "the gateway stops cleanly");

    // every hello-ok has its auth.ok on disk
    let ids = tally.ok_ids.lock().unwrap().clone();
    let events = events_in(&logs, false);
    let authed: std::collections::HashSet<&str> = events
        .iter()
        .filter(|v| v["event"] == "auth.ok")
        .filter_map(|v| v["connId"].as_str())
        .collect();
    let missing: Vec<&String> = ids
        .iter()
        .filter(|i| !authed.contains(i.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} hello-ok logins have no auth.ok: {missing:?}",
        missing.len(),
        ids.len()
    );
    let lines = assert_gapless(&events);
    let out = FullDisk {
        hello_ok: ids.len(),
        refused_login: tally.refused_login.load(Ordering::Relaxed),
        refused_upgrade: tally.refused_upgrade.load(Ordering::Relaxed),
        write_errors,
        lines,
        files: audit_files(&logs).len(),
        wall: started.elapsed(),
    };
    assert!(
        out.refused_login >= 4,
        "the parked logins were refused: {out:?}"
    );
    assert!(out.write_errors > 0, "the disk never filled: {out:?}");
    drop(gw);
    drop(fs);
    eprintln!("full disk: filler took {filled} bytes; {out:?}");
    Some(out)
}

/// `openclaw_gateway_audit_write_errors` (0 when absent).
fn write_errors(gw: &Gw) -> u64 {
    let (_, body) = common::http_get(gw.port, "/metrics");
    body.lines()
        .find(|l| l.starts_with("openclaw_gateway_audit_write_errors"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}
