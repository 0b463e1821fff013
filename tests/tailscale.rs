//! Tailscale serve/funnel and identity auth against a fake `tailscale` program
//! (tests/fixtures/fake-tailscale, REMOTE-ACCESS-REFERENCE §2.5) first on the gateway's PATH:
//! the exact argv sequence, the claim on the managed port, SIGTERM on shutdown, a dead claim
//! restarted, the start-up refusals and failures, whois (bare IP, cached), identity auth with
//! allowedUsers, and the header rules on the managed and the ordinary listener. Only the
//! outside program is fake; the gateway is the real binary.

mod common;

use common::sshd::free_port;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::node::{NodeAuth, NodeKey};
use common::{patience, run_to_exit, temp_dir, Client, Gw, Opts, TOKEN};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A directory holding `tailscale` (the fake) and the log it writes.
struct Fake {
    dir: PathBuf,
    log: PathBuf,
}

impl Fake {
    fn new() -> Fake {
        let dir = temp_dir("fake-ts");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-tailscale");
        std::fs::copy(&src, dir.join("tailscale")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("tailscale"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let log = dir.join("calls.log");
        Fake { dir, log }
    }

    /// Gateway options: the fake first on PATH, its log, and `extra` env.
    fn opts(&self, config: &str, args: &[&str], extra: &[(&str, &str)]) -> Opts {
        let path = format!(
            "{}:{}",
            self.dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut env = vec![
            ("PATH".to_string(), path),
            ("FAKE_TS_LOG".to_string(), self.log.display().to_string()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Opts {
            config: Some(config.into()),
            env,
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// The argv lines (timestamps and the fake's own notes dropped).
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest.to_string()))
            .filter(|l| l.starts_with('['))
            .collect()
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for(&self, what: &str) {
        let deadline = Instant::now() + patience();
        while !self.text().contains(what) {
            assert!(
                Instant::now() < deadline,
                "{what:?} never logged:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The managed port: the last argument of the claim.
    fn managed_port(&self) -> u16 {
        self.calls()
            .iter()
            .find(|l| l.contains("[--bg=false]"))
            .and_then(|l| l.rsplit('[').next())
            .and_then(|p| p.trim_end_matches(']').parse().ok())
            .expect("no claim in the log")
    }
}

/// Waits for an audit event named `name` matching `pred`.
fn ev(gw: &Gw, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
    gw.wait_audit(name, |v| v["event"] == name && pred(v))
}

const SERVE: &str = r#"{ gateway: { tailscale: { mode: "serve" } } }"#;

/// The headers Tailscale Serve adds for a tailnet client.
fn ts_headers(xff: &str, login: Option<&str>) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("x-forwarded-for", xff.to_string()),
        ("x-forwarded-proto", "https".to_string()),
        ("x-forwarded-host", "gw.tail1234.ts.net".to_string()),
    ];
    if let Some(l) = login {
        h.push(("tailscale-user-login", l.to_string()));
        h.push(("tailscale-user-name", "Some Name".to_string()));
    }
    h
}

/// Opens a WebSocket with headers; `Err(status)` when the upgrade is refused.
async fn ws(port: u16, headers: &[(&'static str, String)]) -> Result<Client, u16> {
    let mut req = format!("ws://127.0.0.1:{port}")
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    match tokio::time::timeout(patience(), tokio_tungstenite::connect_async(req))
        .await
        .unwrap()
    {
        Ok((s, _)) => Ok(Client::from_ws(s)),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

/// A device-less operator connect with `auth`.
async fn connect_plain(c: &mut Client, auth: Value) -> Value {
    let params = json!({"minProtocol": 4, "maxProtocol": 4,
        "client": {"id": "gateway-client", "version": "t", "platform": "linux", "mode": "backend"},
        "role": "operator", "scopes": ["operator.read"], "auth": auth});
    c.connect_with(params).await.1
}

#[test]
fn serve_runs_the_real_argv_sequence_adopts_an_old_route_and_terms_the_claim_on_stop() {
    let fake = Fake::new();
    let port = free_port();
    let old_route = format!(
        r#"{{"TCP":{{"443":{{"HTTPS":true}}}},"Web":{{"gw.tail1234.ts.net:443":{{"Handlers":{{"/":{{"Proxy":"http://127.0.0.1:{port}"}}}}}}}}}}"#
    );
    let p = port.to_string();
    let mut gw = Gw::start(fake.opts(
        SERVE,
        &["--port", &p],
        &[
            ("FAKE_TS_STARTING", "2"),
            ("FAKE_TS_SERVE_STATUS", &old_route),
        ],
    ));
    let managed = fake.managed_port();
    assert_ne!(
        managed, port,
        "the claim targets the managed listener, not the gateway port"
    );
    let want = [
        "[version]".to_string(),
        "[status] [--json]".into(),
        "[status] [--json]".into(),
        "[status] [--json]".into(),
        "[serve] [status] [--json]".into(),
        "[serve] [--yes] [--https=443] [--set-path=/] [off]".into(),
        format!("[serve] [--yes] [--bg=false] [{managed}]"),
        "[status] [--json]".into(),
    ];
    assert_eq!(fake.calls(), want);
    let (code, st, _) = gw.cli(&["status", "--json"]);
    assert_eq!(code, 0);
    let st: Value = serde_json::from_str(&st).unwrap();
    let ts = &st["status"]["tailscale"];
    assert_eq!(
        (ts["mode"].as_str(), ts["state"].as_str()),
        (Some("serve"), Some("up")),
        "{ts}"
    );
    assert_eq!(ts["url"], "https://gw.tail1234.ts.net/");
    assert_eq!(ts["managedPort"], managed);
    let (_, human, _) = gw.cli(&["status"]);
    assert!(
        human.contains("Tailscale  serve https://gw.tail1234.ts.net/ · up"),
        "{human}"
    );
    // The start-up line (printed after the listening lines, read once the gateway stops).
    let audit = ev(&gw, "tailscale.claim_ready", |_| true);
    assert_eq!(audit["url"], "https://gw.tail1234.ts.net/");
    ev(&gw, "tailscale.route_adopted", |_| true);
    // SIGTERM: the claim gets SIGTERM, nothing resets the route.
    gw.signal(libc::SIGTERM);
    assert_eq!(gw.wait_exit(), Some(0));
    fake.wait_for("claim 1 got SIGTERM");
    let calls = fake.calls();
    assert_eq!(calls.len(), want.len(), "no reset/off on exit: {calls:?}");
}

#[test]
fn the_start_up_line_names_the_tailnet_url() {
    let fake = Fake::new();
    let gw = Gw::start(fake.opts(SERVE, &[], &[]));
    let lines = gw.stdout_lines.join("\n");
    assert!(
        lines.contains("tailscale serve: https://gw.tail1234.ts.net/ (wss://gw.tail1234.ts.net)"),
        "{lines}"
    );
}

#[test]
fn a_dead_claim_is_restarted_with_backoff_and_audited() {
    let fake = Fake::new();
    let gw = Gw::start(fake.opts(SERVE, &[], &[("FAKE_TS_DIE_AFTER", "1")]));
    fake.wait_for("claim 1 dying");
    let exited = ev(&gw, "tailscale.claim_exited", |_| true);
    assert_eq!(exited["status"], "exit 1");
    let restarted = ev(&gw, "tailscale.claim_restarted", |_| true);
    assert_eq!(restarted["restarts"], 1);
    fake.wait_for("claim 2 pid");
    let claims = fake
        .calls()
        .iter()
        .filter(|l| l.contains("[--bg=false]"))
        .count();
    assert_eq!(claims, 2);
    let (_, st, _) = gw.cli(&["status", "--json"]);
    let st: Value = serde_json::from_str(&st).unwrap();
    assert_eq!(
        (
            st["status"]["tailscale"]["state"].as_str(),
            st["status"]["tailscale"]["restarts"].as_u64()
        ),
        (Some("up"), Some(1))
    );
    let (code, logs, _) = gw.cli(&["logs", "--filter", "tailscale"]);
    assert_eq!(code, 0);
    assert!(
        logs.contains("tailscale.claim_exited") && logs.contains("tailscale.claim_restarted"),
        "{logs}"
    );
}

#[test]
fn start_up_refusals_and_failures_say_what_to_do() {
    let fake = Fake::new();
    type Case<'a> = (String, Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            r#"{ gateway: { tailscale: { mode: "funnel" } } }"#.into(),
            vec![],
            vec![],
            "tailscale funnel requires gateway auth mode=password",
        ),
        (
            SERVE.into(),
            vec!["--bind", "lan"],
            vec![],
            "requires gateway bind=loopback",
        ),
        (
            r#"{ gateway: { auth: { mode: "none" }, tailscale: { mode: "serve" } } }"#.into(),
            vec![],
            vec![],
            "gateway.auth.mode=none cannot be used with gateway.tailscale.mode=serve",
        ),
        (
            SERVE.into(),
            vec![],
            vec![("FAKE_TS_DENY", "1")],
            "sudo tailscale set --operator=$USER",
        ),
        (
            SERVE.into(),
            vec![],
            vec![("FAKE_TS_CONFLICT", "1")],
            "HTTPS port 443 is already owned",
        ),
        (
            SERVE.into(),
            vec![],
            vec![
                ("FAKE_TS_STARTING", "100"),
                ("OPENCLAW_TAILSCALE_READY_TIMEOUT_MS", "2500"),
            ],
            "the local Tailscale daemon is still Starting",
        ),
    ];
    for (config, args, env, want) in cases {
        let _ = std::fs::remove_file(&fake.log);
        let _ = std::fs::remove_dir_all(fake.log.with_extension("log.d"));
        let (code, out, err) = run_to_exit(fake.opts(&config, &args, &env));
        assert_eq!(code, 2, "{want}: {out}{err}");
        assert!(err.contains(want), "{want:?} not in: {err}");
        assert!(!out.contains("listening on"), "nothing served: {out}");
        assert!(!err.contains(TOKEN));
    }
    // No tailscale on PATH at all.
    let (code, _, err) = run_to_exit(Opts {
        config: Some(SERVE.into()),
        env: vec![("PATH".into(), "/nonexistent".into())],
        ..Default::default()
    });
    assert_eq!(code, 2);
    assert!(
        err.contains("the `tailscale` program was not found on PATH"),
        "{err}"
    );
    // The failing claims left nothing running.
    assert!(
        !fake.text().contains("pid"),
        "no claim started: {}",
        fake.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_auth_on_the_managed_listener() {
    let fake = Fake::new();
    let gw = Gw::start(fake.opts(
        r#"{ gateway: { tailscale: { mode: "serve" }, auth: { identityScopes: { "alice@example.com": ["operator.write"] } } } }"#,
        &[],
        &[],
    ));
    let managed = fake.managed_port();
    let alice = ts_headers("100.64.0.7", Some("alice@example.com"));

    // No credential, no device: a device identity is required.
    let mut c = ws(managed, &alice).await.unwrap();
    let res = connect_plain(&mut c, json!({})).await;
    assert_eq!(res["error"]["message"], "device identity required", "{res}");
    // A new device needs pairing (it is remote: remoteIp is the tailnet address).
    let key = NodeKey::new();
    let (_, res) = key
        .handshake_operator(
            ws(managed, &alice).await.unwrap(),
            NodeAuth::None,
            &["operator.read"],
        )
        .await;
    assert_eq!(res["error"]["details"]["code"], "PAIRING_REQUIRED", "{res}");
    let rid = res["error"]["details"]["requestId"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut admin, _) = Client::authed(&gw.url(), TOKEN).await;
    let list = admin.call("device.pair.list", json!({})).await;
    assert_eq!(list["payload"]["pending"][0]["remoteIp"], "100.64.0.7");
    assert_eq!(
        admin
            .call("device.pair.approve", json!({"requestId": rid}))
            .await["ok"],
        true
    );
    // Approved: hello-ok with method tailscale and the login's identity scopes.
    let (_, res) = key
        .handshake_operator(
            ws(managed, &alice).await.unwrap(),
            NodeAuth::None,
            &["operator.read"],
        )
        .await;
    assert_eq!(res["ok"], true, "{res}");
    assert_eq!(res["payload"]["auth"]["method"], "tailscale");
    assert_eq!(
        res["payload"]["auth"]["scopes"],
        json!(["operator.read", "operator.write"])
    );
    // One whois for alice's IP, with a bare IP, however many connections.
    let whois: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|l| l.starts_with("[whois]"))
        .collect();
    assert_eq!(whois, ["[whois] [--json] [100.64.0.7]"], "cached per IP");

    // A login that whois does not confirm, or an IP whois does not know: token auth applies.
    let mallory = ts_headers("100.64.0.7", Some("mallory@example.com"));
    let (_, res) = key
        .handshake_operator(
            ws(managed, &mallory).await.unwrap(),
            NodeAuth::None,
            &["operator.read"],
        )
        .await;
    assert_eq!(
        res["error"]["details"]["code"], "AUTH_TOKEN_MISSING",
        "{res}"
    );
    let unknown = ts_headers("100.64.0.99", Some("alice@example.com"));
    let (_, res) = key
        .handshake_operator(
            ws(managed, &unknown).await.unwrap(),
            NodeAuth::None,
            &["operator.read"],
        )
        .await;
    assert_eq!(
        res["error"]["details"]["code"], "AUTH_TOKEN_MISSING",
        "{res}"
    );
    // All headers and the shared token, no device: in, as a remote device-less client.
    let mut c = ws(managed, &ts_headers("100.64.0.7", None)).await.unwrap();
    let res = connect_plain(&mut c, json!({"token": TOKEN})).await;
    assert_eq!(
        (
            res["ok"].as_bool(),
            res["payload"]["auth"]["scopes"].clone()
        ),
        (Some(true), json!([])),
        "{res}"
    );

    // Header rules: a Funnel request in serve mode, a missing X-Forwarded-Host, a loopback
    // client; and Tailscale/forwarding headers on the ordinary port.
    let mut funnel = alice.clone();
    funnel.push(("tailscale-funnel-request", "?1".into()));
    assert_eq!(ws(managed, &funnel).await.err(), Some(403));
    let no_host: Vec<_> = alice
        .iter()
        .filter(|(k, _)| *k != "x-forwarded-host")
        .cloned()
        .collect();
    assert_eq!(ws(managed, &no_host).await.err(), Some(403));
    assert_eq!(
        ws(managed, &[]).await.err(),
        Some(403),
        "a bare local client on the managed port"
    );
    assert_eq!(
        ws(
            gw.port,
            &[("tailscale-user-login", "alice@example.com".into())]
        )
        .await
        .err(),
        Some(403)
    );
    assert_eq!(ws(gw.port, &alice).await.err(), Some(403));
    let (code, body) = common::http_get(managed, "/healthz");
    assert_eq!(code, 200, "{body}");
    // Audit: the whois, the tailscale login, the refusals.
    let w = ev(&gw, "tailscale.whois", |v| v["ok"] == true);
    assert_eq!(
        (w["ip"].as_str(), w["login"].as_str()),
        (Some("100.64.0.7"), Some("alice@example.com"))
    );
    ev(&gw, "auth.ok", |v| {
        v["method"] == "tailscale" && v["user"] == "alice@example.com"
    });
    ev(&gw, "conn.denied", |v| {
        v["reason"] == "proxy_attribution_required"
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_users_refuse_other_verified_logins_and_audit_them() {
    let fake = Fake::new();
    let gw = Gw::start(fake.opts(
        r#"{ gateway: { tailscale: { mode: "serve", auth: { enabled: true, allowedUsers: ["Bob@Example.com"] } } } }"#,
        &[],
        &[],
    ));
    let managed = fake.managed_port();
    let key = NodeKey::new();
    let alice = ts_headers("100.64.0.7", Some("alice@example.com"));
    let (_, res) = key
        .handshake_operator(
            ws(managed, &alice).await.unwrap(),
            NodeAuth::None,
            &["operator.read"],
        )
        .await;
    assert_eq!(
        res["error"]["details"]["code"], "AUTH_TAILSCALE_USER_NOT_ALLOWED",
        "{res}"
    );
    assert!(res["error"]["message"]
        .as_str()
        .unwrap()
        .contains("alice@example.com"));
    let ev = ev(&gw, "auth.fail", |v| {
        v["reason"] == "tailscale_user_not_allowed"
    });
    assert_eq!(ev["user"], "alice@example.com");
    // Bob (case-insensitive match) gets to pairing, as any remote device.
    let bob = ts_headers("100.64.0.8", Some("bob@example.com"));
    let (_, res) = key
        .handshake_operator(
            ws(managed, &bob).await.unwrap(),
            NodeAuth::None,
            &["operator.read"],
        )
        .await;
    assert_eq!(res["error"]["details"]["code"], "PAIRING_REQUIRED", "{res}");
    let (code, logs, _) = gw.cli(&["logs", "--filter", "tailscale"]);
    assert!(
        code == 0 && logs.contains("tailscale_user_not_allowed"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn funnel_takes_the_password_only_and_accepts_funnel_requests() {
    let fake = Fake::new();
    let gw = Gw::start(fake.opts(
        r#"{ gateway: { auth: { mode: "password", password: "correct-horse-battery-staple-42" }, tailscale: { mode: "funnel" } } }"#,
        &[],
        &[],
    ));
    let managed = fake.managed_port();
    assert!(
        fake.calls()
            .contains(&format!("[funnel] [--yes] [--bg=false] [{managed}]")),
        "{:?}",
        fake.calls()
    );
    let mut h = ts_headers("203.0.113.5", Some("alice@example.com"));
    h.push(("tailscale-funnel-request", "?1".into()));
    let mut c = ws(managed, &h).await.unwrap();
    let res = connect_plain(
        &mut c,
        json!({"password": "correct-horse-battery-staple-42"}),
    )
    .await;
    assert_eq!(res["ok"], true, "{res}");
    let mut c = ws(managed, &h).await.unwrap();
    let res = connect_plain(&mut c, json!({"password": "wrong-password-000000000000"})).await;
    assert_eq!(
        res["error"]["details"]["code"], "AUTH_PASSWORD_MISMATCH",
        "{res}"
    );
    // No identity auth in funnel mode: the login header alone gets nobody in, and no whois runs.
    let mut c = ws(managed, &h).await.unwrap();
    let res = connect_plain(&mut c, json!({})).await;
    assert_eq!(res["ok"], false, "{res}");
    assert!(!fake.text().contains("[whois]"));
    drop(gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allowlist_applies_to_the_tailnet_client_address() {
    let fake = Fake::new();
    let _gw = Gw::start(fake.opts(
        r#"{ gateway: { tailscale: { mode: "serve", allowedIPs: ["100.64.0.8/32"] } } }"#,
        &[],
        &[],
    ));
    let managed = fake.managed_port();
    let alice = ts_headers("100.64.0.7", Some("alice@example.com"));
    assert_eq!(
        ws(managed, &alice).await.err(),
        Some(403),
        "100.64.0.7 is not allowed"
    );
    let bob = ts_headers("100.64.0.8", Some("bob@example.com"));
    let mut c = ws(managed, &bob).await.expect("100.64.0.8 is allowed");
    let res = connect_plain(&mut c, json!({"token": TOKEN})).await;
    assert_eq!(res["ok"], true, "{res}");
}
