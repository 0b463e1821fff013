//! Optional (`PEER=1`): the real OpenClaw gateway (Node), started with
//! /work/shared/peer/start-peer.sh in its own `PEER_DIR=/tmp/peer-bench` so it does not
//! disturb other sessions using /tmp/peer.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::sys;

const PEER_ROOT: &str = "/tmp/peer";
const PEER_APP: &str = "/tmp/peer/app/node_modules/openclaw/openclaw.mjs";
const PEER_DIR: &str = "/tmp/peer-bench";
const START_SCRIPT: &str = "/work/shared/peer/start-peer.sh";

/// A running peer gateway.
pub struct Peer {
    /// The node launcher pid (from `$PEER_DIR/gw.pid`).
    pub pid: u32,
    /// Its children at start (the launcher spawns worker processes).
    pub children: Vec<u32>,
    /// `ws://127.0.0.1:PORT`.
    pub url: String,
    /// start-peer.sh's own spawn -> listening time.
    pub listen_ms: Option<f64>,
    /// start-peer.sh's spawn -> "[gateway] ready" log line.
    pub ready_ms: Option<f64>,
}

/// Whether the peer measurement was asked for and is installed.
pub fn enabled() -> bool {
    std::env::var("PEER").as_deref() == Ok("1") && Path::new(PEER_APP).exists()
}

fn prepare_dir() -> std::io::Result<()> {
    std::fs::create_dir_all(PEER_DIR)?;
    for name in ["app", "node24"] {
        let link = Path::new(PEER_DIR).join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new(PEER_ROOT).join(name), &link)?;
        }
    }
    Ok(())
}

fn field(out: &str, key: &str) -> Option<String> {
    out.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .map(str::to_string)
}

/// Runs start-peer.sh on a free port with `token` and waits until it reports ready.
pub fn start(token: &str) -> Result<Peer, String> {
    prepare_dir().map_err(|e| format!("{PEER_DIR}: {e}"))?;
    let port = sys::free_port().map_err(|e| e.to_string())?;
    let mut cmd = Command::new("bash");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OPENCLAW_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .arg(START_SCRIPT)
        .env("PEER_DIR", PEER_DIR)
        .env("PORT", port.to_string())
        .env("TOKEN", token)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("start-peer.sh: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let pid = field(&text, "pid=").and_then(|p| p.parse().ok());
    let Some(pid) = pid.filter(|_| out.status.success()) else {
        return Err(format!(
            "start-peer.sh failed: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    };
    let ms = |k: &str| field(&text, k).and_then(|v| v.parse().ok());
    let (listen_ms, ready_ms) = (ms("listen_ms="), ms("ready_ms="));
    let url = format!("ws://127.0.0.1:{port}");
    Ok(Peer {
        pid,
        children: sys::children(pid),
        url,
        listen_ms,
        ready_ms,
    })
}

impl Peer {
    /// RSS of the launcher plus its children, KiB.
    pub fn rss_kib(&self) -> u64 {
        let kids = sys::children(self.pid);
        std::iter::once(self.pid)
            .chain(kids)
            .filter_map(sys::rss_kib)
            .sum()
    }

    /// SIGTERM to the launcher (it stops its children); stragglers get SIGTERM too.
    pub fn stop(&self) -> String {
        let kids: Vec<u32> = self
            .children
            .iter()
            .copied()
            .chain(sys::children(self.pid))
            .collect();
        sys::sigterm(self.pid);
        let clean = sys::wait_gone(self.pid, Duration::from_secs(10));
        for k in kids.into_iter().filter(|&k| sys::alive(k)) {
            sys::sigterm(k);
            sys::wait_gone(k, Duration::from_secs(5));
        }
        if clean {
            "exited after SIGTERM".into()
        } else {
            "still running 10 s after SIGTERM".into()
        }
    }
}
