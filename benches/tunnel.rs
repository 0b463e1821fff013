//! Tunnel recovery benchmark: our Tunnel actor (default settings) next to Debian's
//! `autossh -M 0` with the seed's `ServerAliveInterval 60` / `ServerAliveCountMax 3`, against
//! the same throwaway sshd and far gateway, in the same run.
//!
//! Measures, for each: the time from `kill -9` of the ssh process until the forward carries
//! a gateway handshake again (N kills, each after the tunnel has been up 5.5 s, i.e. past
//! our default `resetAfterMs`), and the time from freezing the far side (SIGSTOP of the
//! sshd processes serving the tunnel) until the tunnel is torn down and restarted.
//!
//! Run: `cargo bench --bench tunnel` (`KILLS=20`, `AUTOSSH_FREEZE_CAP_S=240`, and `ONLY=ours`
//! or `ONLY=autossh`). Ours takes about 2.5 minutes. autossh takes far longer: after its
//! first five immediate restarts its own backoff grows quadratically, so a kill it does not
//! recover within 60 s ends its series, and its freeze detection rides on ServerAlive.
//! Needs /usr/sbin/sshd, ssh and autossh (`.ci/run` installs them).

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::sshd::{descendants, free_port, Sshd};
use common::{kill, Client, Gw, Opts, TOKEN};
use futures_util::StreamExt;
use serde_json::{json, Value};

const STABLE: Duration = Duration::from_millis(5_500);

/// Does the forward on `port` carry a gateway handshake (connect.challenge) right now?
async fn forward_works(port: u16) -> bool {
    let url = format!("ws://127.0.0.1:{port}/");
    let attempt = async {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.ok()?;
        let m = ws.next().await?.ok()?;
        Some(m.to_text().ok()?.contains("connect.challenge"))
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(300), attempt).await,
        Ok(Some(true))
    )
}

async fn wait_forward(port: u16, cap: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < cap {
        if forward_works(port).await {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

fn stats(mut v: Vec<f64>) -> String {
    if v.is_empty() {
        return "n/a".into();
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    format!(
        "median {:.3} s, p95 {:.3} s, max {:.3} s (n={})",
        pct(0.5),
        pct(0.95),
        v[v.len() - 1],
        v.len()
    )
}

async fn tunnel_pid(c: &mut Client) -> Option<u32> {
    let r = c.call("gateway.tunnels.status", json!({})).await;
    let row = &r["payload"]["tunnels"][0];
    (row["state"] == "up")
        .then(|| row["pid"].as_u64().map(|p| p as u32))
        .flatten()
}

async fn ours(s: &Sshd, far: u16, kills: usize) -> (Vec<f64>, Option<f64>) {
    let local = free_port();
    let t = json!({"name": "bench", "sshTarget": s.target(), "localPort": local, "remotePort": far,
                   "identityFile": s.client_key, "knownHostsFile": s.known_hosts});
    let gw = Gw::start(Opts {
        config: Some(json!({"tunnels": [t]}).to_string()),
        ..Default::default()
    });
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    wait_forward(local, Duration::from_secs(30))
        .await
        .expect("our tunnel never came up");
    let mut rec = Vec::new();
    for i in 0..kills {
        tokio::time::sleep(STABLE).await;
        let pid = loop {
            if let Some(p) = tunnel_pid(&mut c).await {
                break p;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        kill(pid, libc::SIGKILL);
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_millis(5)).await;
        match wait_forward(local, Duration::from_secs(60)).await {
            Some(_) => rec.push(t0.elapsed().as_secs_f64()),
            None => eprintln!("ours: kill {i}: no recovery within 60 s"),
        }
        eprintln!(
            "ours: kill {} -> {:.3} s",
            i + 1,
            rec.last().copied().unwrap_or(f64::NAN)
        );
    }
    tokio::time::sleep(STABLE).await;
    let old = tunnel_pid(&mut c).await;
    let frozen = s.session_pids();
    for p in &frozen {
        kill(*p, libc::SIGSTOP);
    }
    let t0 = Instant::now();
    let mut detect = None;
    while t0.elapsed() < Duration::from_secs(120) {
        let r = c.call("gateway.tunnels.status", json!({})).await;
        let row: &Value = &r["payload"]["tunnels"][0];
        if row["pid"].as_u64().map(|p| p as u32) != old {
            detect = Some(t0.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for p in frozen {
        kill(p, libc::SIGCONT);
        kill(p, libc::SIGKILL);
    }
    (rec, detect)
}

fn spawn_autossh(s: &Sshd, local: u16, far: u16) -> Child {
    Command::new("autossh")
        .env("AUTOSSH_GATETIME", "0")
        .args(["-M", "0", "-N"])
        .args([
            "-o",
            "ServerAliveInterval=60",
            "-o",
            "ServerAliveCountMax=3",
            "-o",
            "ExitOnForwardFailure=yes",
        ])
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", s.known_hosts.display()))
        .arg("-i")
        .arg(&s.client_key)
        .args([
            "-p",
            &s.port.to_string(),
            "-L",
            &format!("127.0.0.1:{local}:127.0.0.1:{far}"),
        ])
        .arg(format!("{}@127.0.0.1", s.user))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("autossh (apt-get install autossh)")
}

async fn autossh(
    s: &Sshd,
    far: u16,
    kills: usize,
    freeze_cap: Duration,
) -> (Vec<f64>, Option<f64>) {
    let local = free_port();
    let mut a = spawn_autossh(s, local, far);
    wait_forward(local, Duration::from_secs(30))
        .await
        .expect("autossh tunnel never came up");
    let ssh_child = |a: &Child| descendants(a.id()).first().copied();
    let mut rec = Vec::new();
    for i in 0..kills {
        tokio::time::sleep(STABLE).await;
        let Some(pid) = ssh_child(&a) else { break };
        kill(pid, libc::SIGKILL);
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_millis(5)).await;
        match wait_forward(local, Duration::from_secs(60)).await {
            Some(_) => rec.push(t0.elapsed().as_secs_f64()),
            None => eprintln!("autossh: kill {i}: no recovery within 60 s"),
        }
        eprintln!(
            "autossh: kill {} -> {:.3} s",
            i + 1,
            rec.last().copied().unwrap_or(f64::NAN)
        );
    }
    // Freeze a working tunnel: wait for autossh's backoff to bring ssh back first.
    wait_forward(local, Duration::from_secs(900)).await;
    tokio::time::sleep(STABLE).await;
    let old = ssh_child(&a);
    let frozen: Vec<u32> = s.session_pids();
    for p in &frozen {
        kill(*p, libc::SIGSTOP);
    }
    let t0 = Instant::now();
    let mut detect = None;
    while t0.elapsed() < freeze_cap {
        let gone = old.is_none_or(|p| {
            !std::path::Path::new(&format!("/proc/{p}")).exists()
                || common::sshd::ppid(p) != Some(a.id())
        });
        if gone {
            detect = Some(t0.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for p in frozen {
        kill(p, libc::SIGCONT);
        kill(p, libc::SIGKILL);
    }
    let _ = a.kill();
    let _ = a.wait();
    (rec, detect)
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` / listing: nothing to run
    }
    if !common::sshd::available() {
        eprintln!("needs /usr/sbin/sshd and ssh");
        std::process::exit(1);
    }
    let kills: usize = std::env::var("KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let cap = Duration::from_secs(
        std::env::var("AUTOSSH_FREEZE_CAP_S")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(240),
    );
    let only = std::env::var("ONLY").unwrap_or_default();
    let far = Gw::start(Opts::default());
    let f = |d: Option<f64>| {
        d.map(|x| format!("{x:.1} s"))
            .unwrap_or_else(|| format!("not within {} s", cap.as_secs()))
    };
    println!("| | recovery after kill -9 of ssh (until the forward carries a handshake) | frozen far side: time until ssh is replaced |");
    println!("|---|---|---|");
    if only != "autossh" {
        let s1 = Sshd::start();
        let (rec, freeze) = ours(&s1, far.port, kills).await;
        println!(
            "| ours (defaults: gateway probe every 5 s, 2.5 s timeout, 2 failures) | {} | {} |",
            stats(rec),
            f(freeze)
        );
    }
    if only != "ours" {
        let s2 = Sshd::start();
        let (rec, freeze) = autossh(&s2, far.port, kills, cap).await;
        println!("| autossh -M 0, ServerAliveInterval 60, ServerAliveCountMax 3, AUTOSSH_GATETIME=0 | {} | {} |", stats(rec), f(freeze));
    }
}
