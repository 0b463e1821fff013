//! The security layer end to end against the real binary: start-up refusals, the request
//! rate limit (101st request), `maxConnections` (429 + Retry-After), the pre-auth cap, the
//! IP allowlist, forwarded-header trust, trusted-proxy auth, and hot reload (token rotation
//! by SIGHUP with an open connection kept; restart-only changes reported, not applied).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{connect_params, http_status, patience, run_to_exit, Client, Closed, Gw, Opts, TOKEN};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const TOKEN_B: &str = "RotatedToken9876543210zyxwvutsrqponmlkjihgfedcbaZ";

/// One raw HTTP/1.1 request (a WebSocket upgrade when `upgrade`); returns the status line's
/// code and the whole response head. Headers are `name: value` lines.
fn raw(port: u16, headers: &[&str], upgrade: bool) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(patience())).unwrap();
    let mut req = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    if upgrade {
        req.push_str(
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        );
    } else {
        req.push_str("Connection: close\r\n");
    }
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read the head (and, for errors, the short body); a 101 keeps the socket open.
    let deadline = Instant::now() + patience();
    while Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if text.starts_with("HTTP/1.1 101") && text.contains("\r\n\r\n") {
                    break;
                }
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head.lines().find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    });
                    if len.is_some_and(|n| body.len() >= n) {
                        break;
                    }
                }
            }
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    (http_status(&text), text)
}

fn cfg(text: &str) -> Opts {
    Opts {
        config: Some(text.to_string()),
        ..Default::default()
    }
}

#[test]
fn start_up_refusals_name_the_rule_and_bind_nothing() {
    let weak = "weaktoken1";
    let cases: Vec<(Opts, &str)> = vec![
        (
            Opts {
                args: vec![
                    "--bind".into(),
                    "lan".into(),
                    "--auth".into(),
                    "none".into(),
                ],
                ..Default::default()
            },
            "refusing to bind gateway to 0.0.0.0:",
        ),
        (
            Opts {
                args: vec!["--bind".into(), "lan".into()],
                no_token: true,
                ..Default::default()
            },
            "without auth (set gateway.auth.token or OPENCLAW_GATEWAY_TOKEN",
        ),
        (
            Opts {
                args: vec!["--bind".into(), "198.18.0.1".into()],
                env: vec![("OPENCLAW_GATEWAY_TOKEN".into(), weak.into())],
                ..Default::default()
            },
            "tokenValidation.minLength requires at least 32 characters",
        ),
        (
            cfg(r#"{ gateway: { allowedIPs: ["10.0.0.0/8", "10.0.0.300"] } }"#),
            "`gateway.allowedIPs[1]`: \"10.0.0.300\" is not an IP address or CIDR",
        ),
        (
            cfg(
                r#"{ gateway: { auth: { mode: "trusted-proxy", trustedProxy: { userHeader: "x-user" } } } }"#,
            ),
            "`gateway.trustedProxies`",
        ),
        (
            Opts {
                args: vec!["--port".into(), "18789".into()],
                ..cfg(
                    r#"{ tunnels: [ { name: "cdp", direction: "remote", sshTarget: "me@h", localPort: 18800, remotePort: 9222 } ] }"#,
                )
            },
            "CDP range 18800-18899",
        ),
        (
            Opts {
                env: vec![(
                    "OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP".into(),
                    "lots".into(),
                )],
                ..Default::default()
            },
            "OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP=\"lots\"",
        ),
    ];
    for (opts, want) in cases {
        let (code, out, err) = run_to_exit(opts);
        assert_eq!(code, 2, "{want}: stdout {out} stderr {err}");
        assert!(err.contains(want), "{err:?} should contain {want:?}");
        assert!(!out.contains("listening on"), "nothing may be bound: {out}");
        assert!(!err.contains(weak), "the secret leaked: {err}");
    }
}

#[tokio::test]
async fn the_101st_request_in_a_window_is_limited_and_the_socket_stays_open() {
    let gw = Gw::start(cfg(
        r#"{ gateway: { rateLimit: { maxRequests: 100, windowMs: 60000, maxConnections: 10, exemptLoopback: false } } }"#,
    ));
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    for i in 0..100 {
        let r = c.call("health", json!({})).await;
        assert_eq!(r["ok"], true, "request {}: {r}", i + 1);
    }
    let r = c.call("health", json!({})).await;
    assert_eq!(r["ok"], false, "{r}");
    let e = &r["error"];
    assert_eq!(e["code"], "UNAVAILABLE");
    assert_eq!(e["message"], "rate limited");
    assert_eq!(e["retryable"], true);
    let retry = e["retryAfterMs"].as_u64().unwrap();
    assert!((1..=600).contains(&retry), "retryAfterMs {retry}");
    // Still connected: after the hint one token is back.
    tokio::time::sleep(Duration::from_millis(retry + 50)).await;
    assert_eq!(c.call("health", json!({})).await["ok"], true);
    let hit = gw.wait_audit("ratelimit.hit", |v| v["event"] == "ratelimit.hit");
    assert_eq!(hit["key"], "127.0.0.1");
    assert_eq!(hit["method"], "health");
    // HTTP requests share the bucket: it is empty again, so /healthz gets 429.
    let (status, head) = raw(gw.port, &[], false);
    assert_eq!(status, 429, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    let status = c.call("status", json!({})).await;
    assert!(
        status["ok"] == false
            || status["payload"]["security"]["limiter"]["denied"].as_u64() >= Some(1)
    );
}

#[tokio::test]
async fn max_connections_plus_one_gets_429_with_retry_after() {
    let gw = Gw::start(cfg(
        r#"{ gateway: { rateLimit: { maxRequests: 1000, windowMs: 60000, maxConnections: 3 } } }"#,
    ));
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(Client::authed(&gw.url(), TOKEN).await.0);
    }
    let (status, head) = raw(gw.port, &[], true);
    assert_eq!(status, 429, "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("retry-after: "), "{head}");
    assert!(head.contains("maxConnections = 3"), "{head}");
    let ev = gw.wait_audit("conn.denied max_connections", |v| {
        v["event"] == "conn.denied" && v["reason"] == "max_connections"
    });
    assert_eq!(ev["status"], 429);
    // Closing one frees a slot.
    let mut c = open.pop().unwrap();
    c.ws.close(None).await.unwrap();
    let deadline = Instant::now() + patience();
    loop {
        let (status, _) = raw(gw.port, &[], true);
        if status == 101 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slot never freed (last status {status})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_preauth_cap_holds_and_authentication_frees_the_slot() {
    let gw = Gw::start(Opts {
        env: vec![("OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP".into(), "4".into())],
        ..Default::default()
    });
    let mut waiting = Vec::new();
    for _ in 0..4 {
        let mut c = Client::connect(&gw.url()).await;
        assert_eq!(c.recv().await["event"], "connect.challenge");
        waiting.push(c);
    }
    let (status, head) = raw(gw.port, &[], true);
    assert_eq!(status, 429, "{head}");
    assert!(
        head.contains("OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP"),
        "{head}"
    );
    // One of them authenticates: it no longer counts.
    let params = connect_params(TOKEN, "cli", "cli", &["operator.read"]);
    waiting[0]
        .send(&json!({"type":"req","id":"c1","method":"connect","params":params}))
        .await;
    let res = waiting[0].recv_res("c1").await;
    assert_eq!(res["ok"], true, "{res}");
    let (status, _) = raw(gw.port, &[], true);
    assert_eq!(status, 101);
    gw.wait_audit("preauth refusal", |v| {
        v["event"] == "conn.denied" && v["reason"] == "preauth_cap"
    });
}

#[tokio::test]
async fn allowlist_denies_before_the_upgrade_and_audits() {
    // Loopback is not exempt here, so 127.0.0.1 is outside the list.
    let gw = Gw::start(cfg(
        r#"{ gateway: { allowedIPs: ["198.18.0.0/15"], allowLoopback: false, trustedProxies: ["127.0.0.1"] } }"#,
    ));
    let (status, head) = raw(gw.port, &[], true);
    assert_eq!(status, 403, "{head}");
    assert!(
        head.contains("127.0.0.1 is not in gateway.allowedIPs"),
        "{head}"
    );
    let (status, _) = raw(gw.port, &[], false);
    assert_eq!(status, 403, "plain HTTP is refused too");
    let ev = gw.wait_audit("allowlist denial", |v| {
        v["event"] == "conn.denied" && v["reason"] == "allowlist"
    });
    assert_eq!(ev["client"], "127.0.0.1");
    assert_eq!(ev["status"], 403);
    // Through the trusted proxy the forwarded client is what is checked.
    let (status, head) = raw(gw.port, &["X-Forwarded-For: 198.18.3.4"], true);
    assert_eq!(status, 101, "{head}");
    let (status, head) = raw(gw.port, &["X-Forwarded-For: 203.0.113.5"], true);
    assert_eq!(status, 403, "{head}");
    assert!(head.contains("203.0.113.5"), "{head}");
}

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_peer_are_refused_not_trusted() {
    let gw = Gw::start(Opts::default());
    for h in [
        "X-Forwarded-For: 203.0.113.9",
        "Forwarded: for=203.0.113.9",
        "X-Real-IP: 203.0.113.9",
        "X-Forwarded-Proto: https",
    ] {
        let (status, head) = raw(gw.port, &[h], true);
        assert_eq!(status, 403, "{h}: {head}");
        assert!(head.contains("proxy_attribution_required"), "{head}");
    }
    gw.wait_audit("proxy attribution", |v| {
        v["event"] == "conn.denied" && v["reason"] == "proxy_attribution_required"
    });
    // Without such headers loopback works as always.
    let (status, _) = raw(gw.port, &[], true);
    assert_eq!(status, 101);
}

async fn connect_with_headers(
    url: &str,
    headers: &[(&'static str, &str)],
    params: Value,
) -> (Client, Value) {
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    let (ws, _) = tokio::time::timeout(patience(), tokio_tungstenite::connect_async(req))
        .await
        .unwrap()
        .unwrap();
    let mut c = Client::from_ws(ws);
    let (_, res) = c.connect_with(params).await;
    (c, res)
}

#[tokio::test]
async fn trusted_proxy_mode_takes_the_user_from_the_proxy() {
    let gw = Gw::start(Opts {
        config: Some(
            r#"{ gateway: { auth: { mode: "trusted-proxy", trustedProxy: { userHeader: "x-forwarded-user", allowUsers: ["alice"], allowLoopback: true } },
                 trustedProxies: ["127.0.0.1"] } }"#
                .into(),
        ),
        no_token: true,
        ..Default::default()
    });
    let params = connect_params("", "cli", "cli", &["operator.read", "operator.admin"]);
    let (mut c, res) = connect_with_headers(
        &gw.url(),
        &[
            ("x-forwarded-for", "198.18.0.20"),
            ("x-forwarded-user", "alice"),
        ],
        params.clone(),
    )
    .await;
    assert_eq!(res["ok"], true, "{res}");
    assert_eq!(res["payload"]["auth"]["method"], "trusted-proxy");
    // identityScopes default: read only, whatever the client asks for.
    assert_eq!(res["payload"]["auth"]["scopes"], json!(["operator.read"]));
    assert_eq!(c.call("health", json!({})).await["ok"], true);
    let ok = gw.wait_audit("auth.ok via proxy", |v| {
        v["event"] == "auth.ok" && v["user"] == "alice"
    });
    assert_eq!(ok["client"], "198.18.0.20");

    for headers in [
        vec![
            ("x-forwarded-for", "198.18.0.21"),
            ("x-forwarded-user", "mallory"),
        ],
        vec![("x-forwarded-for", "198.18.0.22")],
    ] {
        let (mut c, res) = connect_with_headers(&gw.url(), &headers, params.clone()).await;
        assert_eq!(res["ok"], false, "{headers:?}: {res}");
        assert_eq!(res["error"]["details"]["code"], "AUTH_TRUSTED_PROXY");
        assert!(matches!(c.closed().await, Closed::Code(1008, _)));
    }
    // Direct connections have no proxy to vouch for them.
    let (_, res) = connect_with_headers(&gw.url(), &[], params).await;
    assert_eq!(
        res["error"]["details"]["authReason"], "trusted_proxy_not_proxied",
        "{res}"
    );
}

fn write_config(gw: &Gw, text: &str) {
    let p = gw.state_dir().join("openclaw.json");
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, p).unwrap();
}

fn reloads(gw: &Gw) -> Vec<Value> {
    gw.audit()
        .into_iter()
        .filter(|v| v["event"] == "config.reload")
        .collect()
}

fn wait_reloads(gw: &Gw, n: usize) -> Value {
    let deadline = Instant::now() + patience();
    loop {
        let r = reloads(gw);
        if r.len() >= n {
            return r[n - 1].clone();
        }
        assert!(Instant::now() < deadline, "no reload #{n}; have {r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn token_rotation_by_sighup_keeps_open_connections() {
    let config = |t: &str| {
        format!(r#"{{ gateway: {{ reload: {{ mode: "off" }}, auth: {{ token: "{t}" }} }} }}"#)
    };
    let gw = Gw::start(Opts {
        config: Some(config(TOKEN)),
        no_token: true,
        ..Default::default()
    });
    let (mut old, _) = Client::authed(&gw.url(), TOKEN).await;
    write_config(&gw, &config(TOKEN_B));
    gw.signal(libc::SIGHUP);
    let ev = wait_reloads(&gw, 1);
    assert_eq!(ev["trigger"], "SIGHUP");
    assert_eq!(ev["ok"], true);
    assert_eq!(ev["applied"], json!(["gateway.auth.token"]));
    assert_eq!(ev["restartRequired"], json!([]));
    let text = std::fs::read_to_string(gw.state_dir().join("logs/audit.jsonl")).unwrap();
    assert!(
        !text.contains(TOKEN_B) && !text.contains(TOKEN),
        "a secret reached the audit log"
    );

    // The open connection keeps working.
    assert_eq!(old.call("health", json!({})).await["ok"], true);
    // New connections need the new token.
    let mut c = Client::connect(&gw.url()).await;
    let (_, res) = c
        .connect_with(connect_params(TOKEN, "cli", "cli", &["operator.read"]))
        .await;
    assert_eq!(
        res["error"]["details"]["code"], "AUTH_TOKEN_MISMATCH",
        "{res}"
    );
    let (mut new, _) = Client::authed(&gw.url(), TOKEN_B).await;
    assert_eq!(new.call("health", json!({})).await["ok"], true);
    assert_eq!(old.call("health", json!({})).await["ok"], true);
}

#[tokio::test]
async fn file_changes_reload_live_settings_and_report_restart_only_ones() {
    let gw = Gw::start(Opts {
        config: Some(r#"{ gateway: { auth: { token: "TestToken0123456789abcdefghijklmnopqrstuvwxyzAB" } } }"#.into()),
        no_token: true,
        ..Default::default()
    });
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    // An allowlist that excludes loopback, plus a timeout change (needs a restart).
    write_config(
        &gw,
        r#"{ gateway: { handshakeTimeoutMs: 5000, allowedIPs: ["198.18.0.0/15"], allowLoopback: false,
             auth: { token: "TestToken0123456789abcdefghijklmnopqrstuvwxyzAB" } } }"#,
    );
    let ev = wait_reloads(&gw, 1);
    assert_eq!(ev["trigger"], "file");
    assert_eq!(ev["applied"], json!(["gateway.allowedIPs"]));
    assert_eq!(ev["restartRequired"], json!(["gateway.handshakeTimeoutMs"]));
    // Applied: new connections from loopback are refused.
    let (status, _) = raw(gw.port, &[], true);
    assert_eq!(status, 403);
    // An invalid file changes nothing and says why.
    write_config(&gw, r#"{ gateway: { allowedIPs: ["not-an-ip"] } }"#);
    let ev = wait_reloads(&gw, 2);
    assert_eq!(ev["ok"], false);
    assert!(
        ev["error"]
            .as_str()
            .unwrap()
            .contains("gateway.allowedIPs[0]"),
        "{ev}"
    );
    let (status, _) = raw(gw.port, &[], true);
    assert_eq!(status, 403, "the previous (valid) settings stay");
    // The open connection was never dropped.
    let st = c.call("status", json!({})).await;
    assert_eq!(st["payload"]["security"]["reload"]["failed"], 1, "{st}");
    assert_eq!(
        st["payload"]["security"]["allowlist"],
        json!(["198.18.0.0/15"])
    );
}
