//! Tunnels against a real sshd on loopback, with one of our gateways as the far end and
//! another running the tunnels. Without sshd/ssh each test prints `SKIPPED: sshd: ...` and
//! returns, or fails when `OPENCLAW_TEST_REQUIRE` lists `sshd` (CI sets it).

mod common;

use std::time::{Duration, Instant};

use common::sshd::{self, free_port, pids_mentioning, Sshd};
use common::{kill, patience, require, Client, Gw, Opts, TOKEN};
use serde_json::{json, Value};

/// A tunnel entry for `sshd` forwarding `local` to `far_port`, with fast test timings.
fn tunnel(name: &str, s: &Sshd, local: u16, far_port: u16, extra: Value) -> Value {
    let mut t = json!({
        "name": name, "sshTarget": s.target(), "localPort": local, "remotePort": far_port,
        "identityFile": s.client_key, "knownHostsFile": s.known_hosts,
        "healthCheck": {"kind": "gateway", "intervalMs": 200, "timeoutMs": 600, "failures": 2},
        "backoff": {"initialMs": 50, "maxMs": 2000, "resetAfterMs": 300},
    });
    for (k, v) in extra.as_object().unwrap() {
        t[k] = v.clone();
    }
    t
}

fn gateway_with(tunnels: Vec<Value>) -> Gw {
    let cfg = json!({"tunnels": tunnels}).to_string();
    Gw::start(Opts {
        config: Some(cfg),
        ..Default::default()
    })
}

async fn rows(c: &mut Client) -> Vec<Value> {
    let r = c.call("gateway.tunnels.status", json!({})).await;
    r["payload"]["tunnels"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Polls the tunnel status until `pred` holds for tunnel `name`.
async fn wait_row(c: &mut Client, name: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + patience();
    loop {
        let rs = rows(c).await;
        if let Some(r) = rs.iter().find(|r| r["name"] == name) {
            if pred(r) {
                return r.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "tunnel {name}: waited for {what}; status {rs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A far gateway, an sshd, and a gateway running tunnel "t1" to the far one.
struct OneTunnel {
    far: Gw,
    s: Sshd,
    gw: Gw,
    c: Client,
}

async fn one_tunnel() -> OneTunnel {
    let far = Gw::start(Opts::default());
    let s = Sshd::start();
    let gw = gateway_with(vec![tunnel("t1", &s, free_port(), far.port, json!({}))]);
    let (c, _) = Client::authed(&gw.url(), TOKEN).await;
    OneTunnel { far, s, gw, c }
}

fn up(r: &Value) -> bool {
    r["state"] == "up"
}

#[tokio::test]
async fn tunnel_comes_up_and_openclaw_status_works_through_it() {
    let Some(()) = require("sshd", sshd::availability()) else {
        return;
    };
    let far = Gw::start(Opts::default());
    let s = Sshd::start();
    let local = free_port();
    let gw = gateway_with(vec![tunnel("t1", &s, local, far.port, json!({}))]);
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    let row = wait_row(&mut c, "t1", "up", up).await;
    assert!(row["pid"].as_u64().is_some());
    assert_eq!(row["restarts"], 0);
    // the seed's command through the tunnel reaches the far gateway
    let home = common::temp_dir("tun-cli");
    let url = format!("ws://127.0.0.1:{local}");
    let (code, out, err) = common::run_bounded(common::client_command(
        &home,
        &[],
        &["status", "--gateway", &url, "--token", TOKEN, "--json"],
    ));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["status"]["pid"],
        far.child.id(),
        "answered by the far gateway"
    );
    // and the tunnel shows up in `status` and `openclaw tunnel status`
    let st = c.call("status", json!({})).await;
    assert_eq!(st["payload"]["tunnels"][0]["state"], "up");
    let (code, out, _) = gw.cli(&["tunnel", "status"]);
    assert_eq!(code, 0);
    assert!(out.contains("t1") && out.contains(" up "), "{out}");
    gw.wait_audit("tunnel up", |v| {
        v["event"] == "tunnel.state" && v["to"] == "up"
    });
}

#[tokio::test]
async fn twenty_kill_9s_give_twenty_recoveries_and_no_orphans() {
    let Some(()) = require("sshd", sshd::availability()) else {
        return;
    };
    let OneTunnel {
        far: _far,
        s,
        mut gw,
        mut c,
    } = one_tunnel().await;
    let mut row = wait_row(&mut c, "t1", "up", up).await;
    for i in 1..=20u64 {
        let pid = row["pid"].as_u64().unwrap() as u32;
        assert_eq!(kill(pid, libc::SIGKILL), 0);
        row = wait_row(&mut c, "t1", "up again with a new ssh", |r| {
            up(r) && r["pid"] != pid
        })
        .await;
        assert_eq!(row["restarts"], i, "{row}");
        // The recovery was timed: from the kill to proven up again, under the patience.
        let rec = row["lastRecoveryMs"]
            .as_u64()
            .expect("lastRecoveryMs after a recovery");
        assert!(rec < patience().as_millis() as u64, "{row}");
    }
    let (_, body) = common::http_get(gw.port, "/metrics");
    assert!(
        body.contains("openclaw_tunnel_last_recovery_seconds{tunnel=\"t1\"}"),
        "{body}"
    );
    let marker = s.known_hosts.display().to_string();
    assert_eq!(
        pids_mentioning(&marker).len(),
        1,
        "exactly one ssh for the tunnel"
    );
    drop(c);
    gw.signal(libc::SIGTERM);
    assert_eq!(gw.wait_exit(), Some(0));
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        pids_mentioning(&marker).is_empty(),
        "no ssh left after the gateway stopped"
    );
}

#[tokio::test]
async fn sshd_down_backs_off_and_recovers_when_it_returns() {
    let Some(()) = require("sshd", sshd::availability()) else {
        return;
    };
    let OneTunnel {
        far: _far,
        mut s,
        gw: _gw,
        mut c,
    } = one_tunnel().await;
    wait_row(&mut c, "t1", "up", up).await;
    s.stop();
    // retries fail (connection refused); the delay grows and status says when the next is
    let row = wait_row(&mut c, "t1", "backoff past 200 ms", |r| {
        r["state"] == "backoff"
            && r["restarts"].as_u64() >= Some(3)
            && r["nextRetryInMs"].as_u64().is_some_and(|ms| ms >= 150)
    })
    .await;
    assert!(
        row["lastExit"].as_str().unwrap().contains("exit 255"),
        "{row}"
    );
    s.restart();
    let row = wait_row(&mut c, "t1", "up after sshd returned", up).await;
    assert!(row["restarts"].as_u64().unwrap() >= 3);
}

#[tokio::test]
async fn a_frozen_far_side_is_detected_and_the_tunnel_restarted() {
    let Some(()) = require("sshd", sshd::availability()) else {
        return;
    };
    let OneTunnel {
        far: _far,
        s,
        gw,
        mut c,
    } = one_tunnel().await;
    let row = wait_row(&mut c, "t1", "up", up).await;
    let old = row["pid"].clone();
    let frozen = s.session_pids();
    assert!(
        !frozen.is_empty(),
        "sshd serves the tunnel in a child process"
    );
    for p in &frozen {
        kill(*p, libc::SIGSTOP);
    }
    let row = wait_row(&mut c, "t1", "restarted after the freeze", |r| {
        up(r) && r["pid"] != old
    })
    .await;
    assert!(row["lastExit"].is_string());
    gw.wait_audit("health-check kill", |v| {
        v["event"] == "tunnel.kill"
            && v["reason"]
                .as_str()
                .is_some_and(|r| r.contains("health check failed"))
    });
    for p in frozen {
        kill(p, libc::SIGCONT);
    }
}

#[tokio::test]
async fn bad_configurations_show_a_clear_state_and_the_gateway_carries_on() {
    let Some(()) = require("sshd", sshd::availability()) else {
        return;
    };
    let s = Sshd::start();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = held.local_addr().unwrap().port();
    let wrong_key = s.dir.join("wrong_key");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&wrong_key)
        .status()
        .unwrap();
    let gw = gateway_with(vec![
        tunnel(
            "alias",
            &s,
            free_port(),
            1,
            json!({"sshTarget": "nosuchhost-openclaw-test.invalid"}),
        ),
        tunnel("busy", &s, busy, 1, json!({})),
        tunnel(
            "key",
            &s,
            free_port(),
            1,
            json!({"identityFile": wrong_key}),
        ),
    ]);
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    for (name, want) in [
        ("alias", "Could not resolve hostname"),
        ("busy", "forwarding"),
        ("key", "Permission denied"),
    ] {
        let row = wait_row(&mut c, name, "failed", |r| r["state"] == "failed").await;
        let problem = row["configProblem"].as_str().unwrap_or("");
        assert!(
            problem.contains(want),
            "{name}: {problem:?} should mention {want:?}"
        );
        assert!(
            row["nextRetryInMs"].as_u64().unwrap() > 1000,
            "retried at the capped rate, not given up: {row}"
        );
    }
    assert_eq!(
        c.call("health", json!({})).await["ok"],
        true,
        "the gateway is unaffected"
    );
    let (code, out, _) = gw.cli(&["tunnel", "status"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("configuration problem") && out.contains("Permission denied"),
        "{out}"
    );
    drop(held);
}

#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_panicking_tunnel_actor_kills_its_ssh_and_is_restarted() {
    let Some(()) = require("sshd", sshd::availability()) else {
        return;
    };
    let OneTunnel {
        far: _far,
        s,
        gw,
        mut c,
    } = one_tunnel().await;
    let row = wait_row(&mut c, "t1", "up", up).await;
    let old = row["pid"].as_u64().unwrap() as u32;
    let r = c.call("debug.tunnel.panic", json!({"name": "t1"})).await;
    assert_eq!(r["ok"], true, "{r}");
    wait_row(&mut c, "t1", "up with a new ssh", |r| {
        up(r) && r["pid"] != old
    })
    .await;
    assert!(
        !std::path::Path::new(&format!("/proc/{old}")).exists() || sshd::ppid(old).is_none(),
        "old ssh killed"
    );
    gw.wait_audit("actor restart", |v| v["event"] == "tunnel.actor_restarted");
    assert_eq!(
        pids_mentioning(&s.known_hosts.display().to_string()).len(),
        1
    );
}

#[tokio::test]
async fn tunnel_restart_command_forces_a_new_ssh() {
    let Some(()) = require("sshd", sshd::availability()) else {
        return;
    };
    let OneTunnel {
        far: _far,
        s: _s,
        gw,
        mut c,
    } = one_tunnel().await;
    let old = wait_row(&mut c, "t1", "up", up).await["pid"].clone();
    let (code, out, err) = gw.cli(&["tunnel", "restart", "t1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("restarting"));
    wait_row(&mut c, "t1", "up with a new ssh", |r| {
        up(r) && r["pid"] != old
    })
    .await;
    let (code, _, err) = gw.cli(&["tunnel", "restart", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("no tunnel named"), "{err}");
}

#[tokio::test]
async fn openclaw_tunnel_run_in_the_foreground() {
    let Some(()) = require("sshd", sshd::availability()) else {
        return;
    };
    let far = Gw::start(Opts::default());
    let s = Sshd::start();
    let local = free_port();
    let home = common::temp_dir("tunnel-run");
    std::fs::create_dir_all(home.join(".openclaw")).unwrap();
    let cfg = json!({"tunnels": [tunnel("fg", &s, local, far.port, json!({}))]}).to_string();
    std::fs::write(home.join(".openclaw/openclaw.json"), cfg).unwrap();
    let mut run = common::client_command(&home, &[], &["tunnel", "run"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // no gateway runs here, so `tunnel status` reads the state file `tunnel run` keeps
    let env = [("OPENCLAW_GATEWAY_PORT", "1")];
    let deadline = Instant::now() + patience();
    loop {
        let (code, out, _) = common::run_bounded(common::client_command(
            &home,
            &env,
            &["tunnel", "status", "--json"],
        ));
        if code == 0
            && serde_json::from_str::<Value>(&out).is_ok_and(|v| v["tunnels"][0]["state"] == "up")
        {
            assert!(out.contains("openclaw tunnel run"), "{out}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tunnel run never reported up: {out}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = format!("ws://127.0.0.1:{local}");
    let (code, _, err) = common::run_bounded(common::client_command(
        &home,
        &[],
        &["ping", "--gateway", &url, "--token", TOKEN, "-c", "1"],
    ));
    assert_eq!(code, 0, "{err}");
    kill(run.id(), libc::SIGINT);
    let deadline = Instant::now() + patience();
    let status = loop {
        if let Some(st) = run.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "tunnel run did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(
        pids_mentioning(&s.known_hosts.display().to_string()).is_empty(),
        "no ssh left"
    );
    // unknown names and an empty config are clear errors
    let (code, _, err) = common::run_bounded(common::client_command(
        &home,
        &[],
        &["tunnel", "run", "nope"],
    ));
    assert_eq!(code, 2);
    assert!(err.contains("no tunnel named \"nope\""), "{err}");
}

#[tokio::test]
async fn a_tunnel_to_a_tls_gateway_probes_through_wss_with_its_pin() {
    let Some(()) = require("sshd", sshd::availability()) else {
        return;
    };
    let far = Gw::start(Opts {
        config: Some("{ gateway: { tls: { enabled: true } } }".into()),
        ..Default::default()
    });
    let pem = std::fs::read(far.state_dir().join("gateway/tls/gateway-cert.pem")).unwrap();
    let pin = openclaw_actors::tls::fingerprint::sha256_hex(
        &openclaw_actors::tls::PemCert::first(&pem).unwrap(),
    );
    let s = Sshd::start();
    let good = json!({"tls": true, "tlsFingerprint": format!("sha256:{pin}")});
    let wrong = json!({"tls": true, "tlsFingerprint": "00".repeat(32)});
    let plain = json!({});
    let gw = gateway_with(vec![
        tunnel("pinned", &s, free_port(), far.port, good),
        tunnel("wrongpin", &s, free_port(), far.port, wrong),
        tunnel("plainws", &s, free_port(), far.port, plain),
    ]);
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    wait_row(&mut c, "pinned", "up through wss", up).await;
    // a wrong pin, or plain ws to a TLS gateway, never counts as up
    tokio::time::sleep(Duration::from_secs(2)).await;
    for name in ["wrongpin", "plainws"] {
        let r = wait_row(&mut c, name, "a row", |_| true).await;
        assert_ne!(r["state"], "up", "{name}: {r}");
    }
}

/// Tunnels follow the config file without a gateway restart: an added tunnel starts, a
/// changed one restarts (new ssh), a removed one stops (its ssh is gone), and the others keep
/// their ssh process.
#[tokio::test]
async fn tunnels_follow_a_config_reload_and_only_changed_ones_restart() {
    let Some(()) = require("sshd", sshd::availability()) else {
        return;
    };
    let far = Gw::start(Opts::default());
    let s = Sshd::start();
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let t1 = tunnel("t1", &s, p1, far.port, json!({}));
    let gw = gateway_with(vec![t1.clone()]);
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    let up = |r: &Value| r["state"] == "up";
    let pid1 = wait_row(&mut c, "t1", "up", up).await["pid"].clone();
    let cfg = gw.home.join(".openclaw/openclaw.json");
    let reload = |tunnels: Vec<Value>| {
        std::fs::write(&cfg, json!({"tunnels": tunnels}).to_string()).unwrap();
        gw.signal(libc::SIGHUP);
    };
    // Add t2.
    let t2 = tunnel("t2", &s, p2, far.port, json!({}));
    reload(vec![t1.clone(), t2.clone()]);
    let r2 = wait_row(&mut c, "t2", "t2 up after the reload", up).await;
    assert_eq!(
        wait_row(&mut c, "t1", "t1 untouched", up).await["pid"],
        pid1
    );
    // Change t2 (new local port): restarted with a new ssh; t1 still untouched.
    let t2b = tunnel("t2", &s, p3, far.port, json!({}));
    reload(vec![t1.clone(), t2b]);
    let r2b = wait_row(&mut c, "t2", "t2 restarted on the new port", |r| {
        up(r)
            && r["forward"]
                .as_str()
                .is_some_and(|f| f.contains(&p3.to_string()))
    })
    .await;
    assert_ne!(r2b["pid"], r2["pid"]);
    assert_eq!(
        wait_row(&mut c, "t1", "t1 untouched", up).await["pid"],
        pid1
    );
    // Remove t1: its row goes and its ssh is killed.
    let old_pid = pid1.as_u64().unwrap() as i32;
    reload(vec![tunnel("t2", &s, p3, far.port, json!({}))]);
    let deadline = Instant::now() + patience();
    loop {
        let rs = rows(&mut c).await;
        if !rs.iter().any(|r| r["name"] == "t1") {
            break;
        }
        assert!(Instant::now() < deadline, "t1 still listed: {rs:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + patience();
    while alive(old_pid) {
        assert!(
            Instant::now() < deadline,
            "t1's ssh {old_pid} still running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let ev = gw.wait_audit("reload", |v| {
        v["event"] == "config.reload" && v.to_string().contains("tunnels")
    });
    assert_eq!(ev["restartRequired"], json!([]), "{ev}");
}

/// Whether a process exists (signal 0).
fn alive(pid: i32) -> bool {
    kill(pid as u32, 0) == 0
}

/// `openclaw tunnel status` has an answer in the first second of `openclaw tunnel run`: the
/// status file is written when the tunnels start, not a second later.
#[tokio::test]
async fn tunnel_status_answers_right_after_tunnel_run_starts() {
    let Some(()) = require("sshd", sshd::availability()) else {
        return;
    };
    let far = Gw::start(Opts::default());
    let s = Sshd::start();
    let home = common::temp_dir("tunnel-run-early");
    std::fs::create_dir_all(home.join(".openclaw")).unwrap();
    let cfg =
        json!({"tunnels": [tunnel("early", &s, free_port(), far.port, json!({}))]}).to_string();
    std::fs::write(home.join(".openclaw/openclaw.json"), cfg).unwrap();
    let status_file = home.join(".openclaw/tunnels/status.json");
    let mut run = common::client_command(&home, &[], &["tunnel", "run"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // `tunnel run` prints its tunnels just before the runtime starts.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(run.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("tunnel early:"), "{line}");
    let started = Instant::now();
    let deadline = started + patience();
    while !status_file.exists() {
        assert!(Instant::now() < deadline, "no status file");
        std::thread::sleep(Duration::from_millis(5));
    }
    let first = started.elapsed();
    let env = [("OPENCLAW_GATEWAY_PORT", "1")];
    let (code, out, err) = common::run_bounded(common::client_command(
        &home,
        &env,
        &["tunnel", "status", "--json"],
    ));
    kill(run.id(), libc::SIGINT);
    let _ = run.wait();
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["tunnels"][0]["name"], "early", "{v}");
    // Written when the tunnels start (it used to take the first 1 s status tick).
    assert!(
        first < Duration::from_millis(900),
        "status file written {first:?} after `tunnel run` started"
    );
}

/// A tunnel from an `~/.ssh/config` Host block (`sshHost`): the target and forward come from
/// the block (one forward: ours adds no `-L`), our keepalives override the block's 60 × 3 and
/// `tunnel status` says so, the probe goes through the block's forward, and `openclaw tunnel
/// import` prints the entry.
#[tokio::test]
async fn a_tunnel_from_an_ssh_config_host_block() {
    let Some(()) = require("sshd", sshd::availability()) else {
        return;
    };
    let far = Gw::start(Opts::default());
    let s = Sshd::start();
    let local = free_port();
    let dir = common::temp_dir("ssh-config");
    let cfg = dir.join("ssh_config");
    std::fs::write(
        &cfg,
        format!(
            "Host openclaw-gateway\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  LocalForward {local} 127.0.0.1:{}\n  ServerAliveInterval 60\n  ServerAliveCountMax 3\nHost no-forward\n  HostName 127.0.0.1\n",
            s.port,
            s.user,
            s.client_key.display(),
            s.known_hosts.display(),
            far.port
        ),
    )
    .unwrap();
    // The gateway's ssh reads this file (as it would read ~/.ssh/config).
    let wrapper = dir.join("ssh");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec ssh -F {} \"$@\"\n", cfg.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ssh_env = ("OPENCLAW_SSH".to_string(), wrapper.display().to_string());
    let tunnel = json!({"name": "gw", "sshHost": "openclaw-gateway",
        "healthCheck": {"kind": "gateway", "intervalMs": 200, "timeoutMs": 600, "failures": 2}});
    let gw = Gw::start(Opts {
        config: Some(json!({"tunnels": [tunnel]}).to_string()),
        env: vec![ssh_env.clone()],
        ..Default::default()
    });
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    let r = wait_row(&mut c, "gw", "up through the block's forward", |r| {
        r["state"] == "up"
    })
    .await;
    assert_eq!(r["fromSshConfig"], true, "{r}");
    assert!(
        r["forward"].as_str().unwrap().contains(&local.to_string()),
        "{r}"
    );
    let overrides = r["overrides"].to_string();
    assert!(
        overrides.contains("ServerAliveInterval 60→15"),
        "{overrides}"
    );
    // One forward only: the ssh command line has no -L.
    let pid = r["pid"].as_u64().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    assert!(!args.iter().any(|a| a == "-L"), "{args:?}");
    // The forward works: ping the far gateway through it.
    let url = format!("ws://127.0.0.1:{local}");
    let (code, _, err) = gw.cli(&["ping", "--gateway", &url, "-c", "1"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = gw.cli(&["tunnel", "status"]);
    assert!(code == 0 && out.contains("ServerAliveInterval"), "{out}");
    // `tunnel import` prints the block that has a forward, not the other.
    let (code, out, err) = common::run_bounded(common::client_command(
        &dir,
        &[("OPENCLAW_SSH", "ssh")],
        &["tunnel", "import", "--ssh-config", cfg.to_str().unwrap()],
    ));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        json!({"tunnels": [{"name": "openclaw-gateway", "sshHost": "openclaw-gateway"}]})
    );
}
