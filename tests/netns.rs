//! True non-loopback peers: each test makes its own network namespace joined to this one by
//! a veth pair with addresses from 198.18.0.0/15 (benchmarking space, never routed), runs
//! the gateway inside it, and connects from outside, so the gateway sees a real remote
//! address. Everything is removed afterwards. Where namespaces cannot be made (no
//! CAP_NET_ADMIN), the tests print `SKIPPED: netns: ...` and return (the same rules are
//! covered through the trusted-proxy path in `tests/security.rs`), or fail when
//! `OPENCLAW_TEST_REQUIRE` lists `netns` (CI sets it).

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use common::{
    connect_params, http_status, patience, require, Client, Closed, Gw, Opts, TOKEN, WRONG_TOKEN,
};
use serde_json::json;

static NEXT: AtomicU8 = AtomicU8::new(1);

/// A namespace `oc<pid>n<k>` with `198.18.<k>.2/30` inside and `198.18.<k>.1/30` outside.
struct NetNs {
    name: String,
    host_if: String,
    k: u8,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetNs {
    /// Makes the namespace and its veth pair; `Err` says which `ip` step failed.
    fn create() -> Result<NetNs, String> {
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id() % 100_000;
        let ns = NetNs {
            name: format!("oc{pid}n{k}"),
            host_if: format!("oc{pid}h{k}"),
            k,
        };
        let peer_if = format!("oc{pid}p{k}");
        let outside = format!("{}/30", ns.outside());
        let inside = format!("{}/30", ns.inside());
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", &ns.name],
            vec![
                "link",
                "add",
                &ns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &peer_if,
            ],
            vec!["link", "set", &peer_if, "netns", &ns.name],
            vec!["addr", "add", &outside, "dev", &ns.host_if],
            vec!["link", "set", &ns.host_if, "up"],
            vec!["-n", &ns.name, "addr", "add", &inside, "dev", &peer_if],
            vec!["-n", &ns.name, "link", "set", &peer_if, "up"],
            vec!["-n", &ns.name, "link", "set", "lo", "up"],
        ];
        for s in steps {
            // on failure Drop cleans up what was made
            ip(&s).map_err(|e| format!("cannot build a test network namespace: {e}"))?;
        }
        Ok(ns)
    }

    fn inside(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.k, 2)
    }

    fn outside(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.k, 1)
    }

    fn opts(&self, args: &[&str], config: Option<&str>) -> Opts {
        Opts {
            args: args.iter().map(|s| s.to_string()).collect(),
            config: config.map(str::to_string),
            netns: Some(self.name.clone()),
            ..Default::default()
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]); // takes the veth pair with it
        let _ = ip(&["link", "del", &self.host_if]);
    }
}

/// A raw HTTP/1.1 request to `addr`; returns (status, head).
fn raw(addr: SocketAddr, upgrade: bool) -> (u16, String) {
    let mut s = match TcpStream::connect_timeout(&addr, patience()) {
        Ok(s) => s,
        Err(e) => return (0, e.to_string()),
    };
    s.set_read_timeout(Some(patience())).unwrap();
    let up = if upgrade {
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    } else {
        "Connection: close\r\n"
    };
    write!(s, "GET /healthz HTTP/1.1\r\nHost: {addr}\r\n{up}\r\n").unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    (http_status(&text), text)
}

#[tokio::test]
async fn lan_bind_serves_a_remote_peer_as_remote() {
    let Some(ns) = require("netns", NetNs::create()) else {
        return;
    };
    let gw = Gw::start(ns.opts(&["--bind", "lan"], None));
    assert!(
        gw.stdout_lines
            .iter()
            .any(|l| l.starts_with("listening on ws://0.0.0.0:")),
        "{:?}",
        gw.stdout_lines
    );
    assert!(
        gw.stdout_lines
            .iter()
            .any(|l| l.contains("exposed beyond loopback (bind lan)")),
        "{:?}",
        gw.stdout_lines
    );
    let addr = SocketAddr::from((ns.inside(), gw.port));
    let (status, head) = raw(addr, false);
    assert_eq!(status, 200, "{head}");
    let mut c = Client::connect(&format!("ws://{addr}")).await;
    let (_, res) = c
        .connect_with(connect_params(TOKEN, "cli", "cli", &["operator.admin"]))
        .await;
    assert_eq!(res["ok"], true, "{res}");
    // A device-less client from another machine keeps no scopes (PROTOCOL §2.5).
    assert_eq!(res["payload"]["auth"]["scopes"], json!([]));
    let ev = gw.wait_audit("remote auth.ok", |v| v["event"] == "auth.ok");
    assert!(
        ev["peer"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}:", ns.outside())),
        "{ev}"
    );
}

#[tokio::test]
async fn allowlist_refuses_a_real_remote_peer() {
    let Some(ns) = require("netns", NetNs::create()) else {
        return;
    };
    let gw = Gw::start(ns.opts(
        &["--bind", "lan"],
        Some(r#"{ gateway: { allowedIPs: ["198.19.0.0/16"] } }"#),
    ));
    let addr = SocketAddr::from((ns.inside(), gw.port));
    let (status, head) = raw(addr, true);
    assert_eq!(status, 403, "{head}");
    assert!(
        head.contains(&format!("{} is not in gateway.allowedIPs", ns.outside())),
        "{head}"
    );
    let ev = gw.wait_audit("allowlist denial", |v| {
        v["event"] == "conn.denied" && v["reason"] == "allowlist"
    });
    assert_eq!(ev["client"], ns.outside().to_string());
    // The same peer inside the list gets through (a second gateway, same namespace).
    let allow = format!(
        r#"{{ gateway: {{ allowedIPs: ["{}/32"] }} }}"#,
        ns.outside()
    );
    let gw2 = Gw::start(ns.opts(&["--bind", "lan"], Some(&allow)));
    let (status, head) = raw(SocketAddr::from((ns.inside(), gw2.port)), true);
    assert_eq!(status, 101, "{head}");
}

#[tokio::test]
async fn an_exposed_gateway_limits_connections_and_locks_out_by_default() {
    let Some(ns) = require("netns", NetNs::create()) else {
        return;
    };
    let gw = Gw::start(ns.opts(&["--bind", "lan"], None));
    let addr = SocketAddr::from((ns.inside(), gw.port));
    let url = format!("ws://{addr}");
    // Lockout: 10 wrong tokens from a non-loopback peer, then AUTH_RATE_LIMITED.
    for i in 0..10 {
        let mut c = Client::connect(&url).await;
        let (_, res) = c
            .connect_with(connect_params(WRONG_TOKEN, "cli", "cli", &[]))
            .await;
        assert_eq!(
            res["error"]["details"]["code"], "AUTH_TOKEN_MISMATCH",
            "attempt {i}: {res}"
        );
    }
    let mut c = Client::connect(&url).await;
    let (_, res) = c
        .connect_with(connect_params(TOKEN, "cli", "cli", &[]))
        .await;
    assert_eq!(
        res["error"]["details"]["code"], "AUTH_RATE_LIMITED",
        "{res}"
    );
    assert!(res["error"]["retryAfterMs"].as_u64().unwrap() > 0);
    assert!(matches!(c.closed().await, Closed::Code(1008, _)));
    gw.wait_audit("auth.lockout", |v| v["event"] == "auth.lockout");
    // maxConnections (default 10 when exposed): the 11th open socket gets 429.
    let mut held = Vec::new();
    let deadline = Instant::now() + patience();
    while held.len() < 10 && Instant::now() < deadline {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").unwrap();
        let mut buf = [0u8; 256];
        s.set_read_timeout(Some(patience())).unwrap();
        let n = s.read(&mut buf).unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).into_owned();
        if head.starts_with("HTTP/1.1 101") {
            held.push(s);
        } else {
            // Sockets from the lockout loop may still be closing; try again shortly.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(held.len(), 10);
    let (status, head) = raw(addr, true);
    assert_eq!(status, 429, "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
}

#[tokio::test]
async fn tailnet_bind_uses_the_tailscale_address_and_loopback_only() {
    let Some(ns) = require("netns", NetNs::create()) else {
        return;
    };
    // A stand-in for tailscale0: a 100.64.0.0/10 address on the namespace's interface.
    let ts = format!("100.100.{}.1/32", ns.k);
    let dev = ns.host_if.replace('h', "p");
    ip(&["-n", &ns.name, "addr", "add", &ts, "dev", &dev]).unwrap();
    let gw = Gw::start(ns.opts(&["--bind", "tailnet"], None));
    let lines = gw.stdout_lines.join("\n");
    assert!(
        lines.contains(&format!("listening on ws://100.100.{}.1:{}", ns.k, gw.port)),
        "{lines}"
    );
    assert!(
        lines.contains(&format!("listening on ws://127.0.0.1:{}", gw.port)),
        "{lines}"
    );
    // Not on the LAN-side address.
    let (status, why) = raw(SocketAddr::from((ns.inside(), gw.port)), false);
    assert_eq!(status, 0, "reachable on the veth address: {why}");

    // Without a tailnet address: loopback only, with a warning.
    let ns2 = NetNs::create().expect("a second namespace after the first was made");
    let gw2 = Gw::start(ns2.opts(&["--bind", "tailnet"], None));
    let deadline = Instant::now() + patience();
    while !gw2.stderr().contains("no Tailscale address") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        gw2.stderr().contains("no Tailscale address"),
        "{}",
        gw2.stderr()
    );
    assert!(
        gw2.stdout_lines.iter().all(|l| !l.contains("ws://100.")),
        "{:?}",
        gw2.stdout_lines
    );
    assert!(gw2
        .stdout_lines
        .iter()
        .all(|l| !l.contains("exposed beyond loopback")));
}

#[tokio::test]
async fn custom_bind_keeps_a_loopback_listener() {
    let Some(ns) = require("netns", NetNs::create()) else {
        return;
    };
    let inside = ns.inside().to_string();
    let gw = Gw::start(ns.opts(&["--bind", &inside], None));
    let lines = gw.stdout_lines.join("\n");
    assert!(
        lines.contains(&format!("listening on ws://{inside}:{}", gw.port)),
        "{lines}"
    );
    assert!(
        lines.contains(&format!("listening on ws://127.0.0.1:{}", gw.port)),
        "{lines}"
    );
    let (status, head) = raw(SocketAddr::from((ns.inside(), gw.port)), false);
    assert_eq!(status, 200, "{head}");
}

/// The skip-or-fail decision behind `common::require` (lives here, not in `tests/common`,
/// so it runs once rather than in every test binary).
#[test]
fn require_setting_decides_skip_or_fail() {
    use common::is_required;
    let table: &[(&str, Option<&str>, Result<bool, ()>)] = &[
        ("netns", None, Ok(false)),
        ("netns", Some(""), Ok(false)),
        ("netns", Some("sshd"), Ok(false)),
        ("netns", Some("netns"), Ok(true)),
        ("netns", Some("sshd,netns"), Ok(true)),
        ("netns", Some(" sshd , netns "), Ok(true)),
        ("sshd", Some("sshd,netns"), Ok(true)),
        ("sshd", Some("netns,"), Ok(false)),
        ("sshd", Some("all"), Ok(true)),
        ("ipv6", Some("all"), Ok(true)),
        ("sshd", Some("SSHD"), Err(())),
        ("sshd", Some("sshd,netsn"), Err(())),
        ("netns", Some("ssh"), Err(())),
    ];
    for (what, setting, want) in table {
        let got = is_required(what, *setting);
        assert_eq!(
            got.clone().map_err(|_| ()),
            *want,
            "{what} with {setting:?}: {got:?}"
        );
    }
}

/// `openclaw ARGS` run inside `ns` against the gateway's loopback listener there.
fn cli_in(ns: &NetNs, gw: &Gw, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name, common::bin()])
        .args(args)
        .env_clear()
        .env("HOME", &gw.home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OPENCLAW_GATEWAY_TOKEN", TOKEN)
        .env("OPENCLAW_GATEWAY_PORT", gw.port.to_string());
    common::run_bounded(cmd)
}

/// Opens up to `n` idle TCP connections to `addr`; returns them and how many were refused
/// at once with the cap's answer (read back with a short timeout).
fn flood(addr: SocketAddr, n: usize) -> (Vec<TcpStream>, usize, String) {
    let mut held = Vec::new();
    let mut refused = 0;
    let mut sample = String::new();
    for _ in 0..n {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, patience()) else {
            continue;
        };
        s.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        let mut b = [0u8; 512];
        match s.read(&mut b) {
            Ok(k) if k > 0 => {
                refused += 1;
                sample = String::from_utf8_lossy(&b[..k]).into_owned();
            }
            Ok(_) => refused += 1,  // closed at once
            Err(_) => held.push(s), // nothing to read: accepted and waiting for a request
        }
    }
    (held, refused, sample)
}

/// Defect 3: under a soft limit of 256 open files, 600 idle connections from a remote peer
/// take at most the remote share of the cap (budget 192 minus the loopback reserve of 32);
/// the rest get the 503 answer, the gateway never runs out of descriptors, and loopback
/// health checks and an authenticated admin client still get in.
#[tokio::test]
async fn idle_flood_cannot_exhaust_descriptors() {
    let Some(ns) = require("netns", NetNs::create()) else {
        return;
    };
    let mut opts = ns.opts(
        &["--bind", "lan"],
        Some(r#"{ gateway: { connections: { perAddress: 100000 } } }"#),
    );
    opts.nofile = Some((256, 256));
    let gw = Gw::start(opts);
    let addr = SocketAddr::from((ns.inside(), gw.port));
    let (held, refused, sample) = flood(addr, 600);
    eprintln!(
        "idle flood: {} held, {refused} refused at accept ({:?})",
        held.len(),
        sample.lines().next()
    );
    assert_eq!(held.len(), 160, "remote share: 192 - 32 reserve");
    assert_eq!(refused, 440);
    assert!(sample.starts_with("HTTP/1.1 503"), "{sample}");
    assert!(sample.contains("gateway.connections.max"), "{sample}");
    // Loopback still gets in: /healthz and an authenticated admin round trip.
    let (code, out, err) = cli_in(&ns, &gw, &["health", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    for _ in 0..20 {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.name, "curl", "-s", "-m", "5"])
            .arg(format!("http://127.0.0.1:{}/healthz", gw.port))
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("\"ok\":true"),
            "{out:?}"
        );
    }
    let metrics = Command::new("ip")
        .args(["netns", "exec", &ns.name, "curl", "-s", "-m", "5"])
        .arg(format!("http://127.0.0.1:{}/metrics", gw.port))
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    for want in [
        "openclaw_gateway_refused_total{reason=\"connection_cap\"} 440",
        "openclaw_gateway_sockets_max 192",
    ] {
        assert!(metrics.contains(want), "{want} not in /metrics:\n{metrics}");
    }
    let log = gw.stderr();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(
        log.contains("open-file limit"),
        "the limit is logged: {log}"
    );
    assert!(
        log.contains("connections refused at accept"),
        "refusals are logged: {log}"
    );
    // Closing the flood frees the slots.
    drop(held);
    let deadline = Instant::now() + patience();
    loop {
        let (again, _, _) = flood(addr, 10);
        if again.len() == 10 {
            break;
        }
        assert!(Instant::now() < deadline, "slots not released");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Defect 3: the per-address cap applies at accept, before any request: the 6th
/// connection from one remote address gets 429 naming `gateway.connections.perAddress`.
#[test]
fn per_address_cap_applies_before_the_upgrade() {
    let Some(ns) = require("netns", NetNs::create()) else {
        return;
    };
    let gw = Gw::start(ns.opts(
        &["--bind", "lan"],
        Some(r#"{ gateway: { connections: { perAddress: 5 } } }"#),
    ));
    let addr = SocketAddr::from((ns.inside(), gw.port));
    let (held, refused, sample) = flood(addr, 8);
    assert_eq!((held.len(), refused), (5, 3), "{sample}");
    assert!(sample.starts_with("HTTP/1.1 429"), "{sample}");
    assert!(
        sample.contains(&format!(
            "too many connections from {} (limit 5, gateway.connections.perAddress)",
            ns.outside()
        )),
        "{sample}"
    );
    drop(held);
    let (code, out, err) = cli_in(&ns, &gw, &["health", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
}
