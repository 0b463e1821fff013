//! Observability (issue 13): the health probes (codes, bodies, headers, methods), Prometheus
//! `/metrics` (access rules, `promtool check metrics`, and a real Prometheus server scraping
//! the gateway and answering queries about it), and the log filter switched at run time (by
//! `openclaw gateway log-level` and by a config reload).

mod common;

use common::sshd::free_port;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{patience, require, temp_dir, Client, Gw, Opts, TOKEN, WRONG_TOKEN};
use serde_json::{json, Value};

/// A raw HTTP/1.1 request; returns (status, lower-cased head, body).
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(patience())).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        common::http_status(head),
        head.to_ascii_lowercase(),
        body.to_string(),
    )
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
}

const PROXIED: &str = r#"{ gateway: { trustedProxies: ["127.0.0.1"] } }"#;

#[test]
fn probes_answer_like_the_real_gateway() {
    let gw = Gw::start(Opts {
        config: Some(PROXIED.into()),
        ..Default::default()
    });
    let p = gw.port;
    for path in ["/healthz", "/health"] {
        let (code, head, body) = http(p, "GET", path, &[]);
        assert_eq!(
            (code, json_of(&body)),
            (200, json!({"ok": true, "status": "live"})),
            "{path}"
        );
        for h in [
            "cache-control: no-store",
            "x-content-type-options: nosniff",
            "content-type: application/json",
        ] {
            assert!(head.contains(h), "{path}: {h} missing in\n{head}");
        }
    }
    // Local callers get the details; a proxied (remote) caller only the verdict, unless it
    // brings the token.
    for path in ["/readyz", "/ready"] {
        let (code, _, body) = http(p, "GET", path, &[]);
        let v = json_of(&body);
        assert_eq!(
            (code, v["ready"].as_bool(), v["failing"].clone()),
            (200, Some(true), json!([])),
            "{body}"
        );
        assert!(v["uptimeMs"].as_u64().is_some());
        let (code, _, body) = http(p, "GET", path, &[("X-Forwarded-For", "203.0.113.9")]);
        assert_eq!((code, json_of(&body)), (200, json!({"ready": true})));
        let bearer = format!("Bearer {TOKEN}");
        let (_, _, body) = http(
            p,
            "GET",
            path,
            &[
                ("X-Forwarded-For", "203.0.113.9"),
                ("Authorization", &bearer),
            ],
        );
        assert!(json_of(&body)["uptimeMs"].is_u64(), "{body}");
    }
    let (code, _, body) = http(p, "GET", "/startupz", &[]);
    let v = json_of(&body);
    assert_eq!(
        (code, v["ok"].as_bool(), v["status"].as_str()),
        (200, Some(true), Some("started"))
    );
    assert!(v["version"].is_string());
    let (code, _, body) = http(p, "GET", "/startup", &[("X-Forwarded-For", "203.0.113.9")]);
    assert_eq!(
        (code, json_of(&body)),
        (200, json!({"ok": true, "status": "started"}))
    );
    // Probes come before proxy checks: untrusted forwarding headers on /healthz are fine.
    let gw2 = Gw::start(Opts::default());
    let (code, _, _) = http(
        gw2.port,
        "GET",
        "/healthz",
        &[("X-Forwarded-For", "203.0.113.9")],
    );
    assert_eq!(code, 200);
    let (code, _, _) = http(gw2.port, "GET", "/", &[("X-Forwarded-For", "203.0.113.9")]);
    assert_eq!(code, 403, "everything else still needs attribution");
    // Methods and sub-paths.
    for (m, path) in [
        ("POST", "/healthz"),
        ("PUT", "/readyz"),
        ("DELETE", "/startupz"),
    ] {
        let (code, head, body) = http(p, m, path, &[]);
        assert_eq!(code, 405, "{m} {path}");
        assert!(
            head.contains("allow: get, head") && body == "Method Not Allowed",
            "{head}{body}"
        );
    }
    let (code, head, body) = http(p, "HEAD", "/readyz", &[]);
    assert_eq!((code, body.as_str()), (200, ""));
    assert!(head.contains("cache-control: no-store"));
    assert_eq!(http(p, "GET", "/healthz/x", &[]).0, 404);
}

/// /readyz and /startupz turn 503 while starting, draining or when the audit log cannot be
/// written (the states are set directly on an in-process gateway; the HTTP path is real).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_starting_draining_and_the_audit_writer() {
    use std::sync::atomic::Ordering;
    let gw = common::inproc::InProc::start(None, &[]).await;
    let port = gw.port();
    let get = |path: &'static str| {
        tokio::task::spawn_blocking(move || {
            let (code, _, body) = http(port, "GET", path, &[]);
            (code, json_of(&body))
        })
    };
    let (code, v) = get("/readyz").await.unwrap();
    assert_eq!((code, v["failing"].clone()), (200, json!([])));
    let reg = &gw.hub().registry;
    reg.started.store(false, Ordering::Relaxed);
    let (code, v) = get("/readyz").await.unwrap();
    assert_eq!((code, v["failing"].clone()), (503, json!(["starting"])));
    assert_eq!(get("/startupz").await.unwrap().1["status"], "starting");
    reg.started.store(true, Ordering::Relaxed);
    let stats = &gw.hub().audit.stats;
    stats.last_error_ms.store(i64::MAX, Ordering::Relaxed);
    let (code, v) = get("/readyz").await.unwrap();
    assert_eq!(
        (code, v["failing"].clone()),
        (503, json!(["audit-log-unwritable"]))
    );
    stats.last_error_ms.store(0, Ordering::Relaxed);
    reg.shutting_down.store(true, Ordering::Relaxed);
    let (code, v) = get("/readyz").await.unwrap();
    assert_eq!((code, v["failing"].clone()), (503, json!(["draining"])));
    let (code, v) = get("/startupz").await.unwrap();
    assert_eq!((code, v["status"].as_str()), (503, Some("draining")));
    assert_eq!(get("/healthz").await.unwrap().0, 200, "still live");
}

#[test]
fn metrics_access_rules() {
    let gw = Gw::start(Opts {
        config: Some(PROXIED.into()),
        ..Default::default()
    });
    let (code, head, body) = http(gw.port, "GET", "/metrics", &[]);
    assert_eq!(code, 200, "loopback reads freely");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        body.contains("# TYPE openclaw_gateway_connections_open gauge"),
        "{body}"
    );
    let (code, head, _) = http(
        gw.port,
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text;version=1.0.0")],
    );
    assert_eq!(code, 200);
    assert!(head.contains("application/openmetrics-text"), "{head}");
    let remote = ("X-Forwarded-For", "203.0.113.9");
    let (code, head, _) = http(gw.port, "GET", "/metrics", &[remote]);
    assert_eq!(code, 401, "a remote caller needs the token");
    assert!(head.contains("www-authenticate: bearer"));
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        http(
            gw.port,
            "GET",
            "/metrics",
            &[remote, ("Authorization", &bearer)]
        )
        .0,
        200
    );
    let wrong = format!("Bearer {WRONG_TOKEN}");
    assert_eq!(
        http(
            gw.port,
            "GET",
            "/metrics",
            &[remote, ("Authorization", &wrong)]
        )
        .0,
        401
    );
    assert_eq!(http(gw.port, "POST", "/metrics", &[]).0, 405);
    let public = Gw::start(Opts {
        config: Some(
            r#"{ gateway: { trustedProxies: ["127.0.0.1"], metrics: { public: true } } }"#.into(),
        ),
        ..Default::default()
    });
    assert_eq!(http(public.port, "GET", "/metrics", &[remote]).0, 200);
    let off = Gw::start(Opts {
        config: Some(r#"{ gateway: { metrics: { enabled: false } } }"#.into()),
        ..Default::default()
    });
    assert_eq!(http(off.port, "GET", "/metrics", &[]).0, 404);
}

fn available(bin: &str) -> Result<(), String> {
    Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("{bin}: {e}"))
        .and_then(|s| {
            if s.success() {
                Ok(())
            } else {
                Err(format!("{bin} --version failed"))
            }
        })
}

/// `promtool check metrics` accepts the exposition, and the series move as they should.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_the_exposition_and_series_count_what_happened() {
    let Some(()) = require("prometheus", available("promtool")) else {
        return;
    };
    let gw = Gw::start(Opts::default());
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    assert_eq!(c.call("health", json!({})).await["ok"], true);
    assert_eq!(c.call("no.such.method", json!({})).await["ok"], false);
    let mut bad = Client::connect(&gw.url()).await;
    let (_, res) = bad
        .connect_with(common::connect_params(
            WRONG_TOKEN,
            "cli",
            "cli",
            &["operator.read"],
        ))
        .await;
    assert_eq!(res["ok"], false);
    // The refused connection is closed by the gateway right after its error answer; scrape
    // once it is gone (bounded), so the gauge is not read mid-close.
    let deadline = std::time::Instant::now() + patience();
    let body = loop {
        let (code, _, body) = http(gw.port, "GET", "/metrics", &[]);
        assert_eq!(code, 200);
        if body.contains("openclaw_gateway_connections_open 1")
            || std::time::Instant::now() > deadline
        {
            break body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "openclaw_gateway_connections_open 1",
        "openclaw_gateway_rpc_requests_total{method=\"health\"} 1",
        "openclaw_gateway_rpc_requests_total{method=\"unknown\"} 1",
        "openclaw_gateway_rpc_errors_total{method=\"unknown\"} 1",
        "openclaw_gateway_rpc_handler_seconds_count{method=\"health\"} 1",
        "openclaw_gateway_auth_failures_total{reason=\"token_mismatch\"} 1",
        "openclaw_gateway_handshakes_total{result=\"failed\"} 1",
        "openclaw_process_open_fds",
    ] {
        assert!(body.contains(want), "{want} missing from:\n{body}");
    }
}

/// A real Prometheus server scrapes the gateway; its query API returns the connection gauge
/// and, after a failed login, the auth-failure counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_gateway() {
    let Some(()) = require("prometheus", available("prometheus")) else {
        return;
    };
    let gw = Gw::start(Opts::default());
    let (_keep, _) = Client::authed(&gw.url(), TOKEN).await;
    let mut bad = Client::connect(&gw.url()).await;
    let (_, res) = bad
        .connect_with(common::connect_params(
            WRONG_TOKEN,
            "cli",
            "cli",
            &["operator.read"],
        ))
        .await;
    assert_eq!(res["ok"], false);
    let dir = temp_dir("prometheus");
    let web = free_port();
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: openclaw\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            gw.port
        ),
    )
    .unwrap();
    let mut prom = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("prometheus.log")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let query = |q: &str| -> Option<f64> {
        let path = format!(
            "/api/v1/query?query={}",
            q.replace('"', "%22")
                .replace('{', "%7B")
                .replace('}', "%7D")
                .replace('=', "%3D")
        );
        let mut s = TcpStream::connect(("127.0.0.1", web)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut raw = String::new();
        let _ = s.read_to_string(&mut raw);
        let body = raw.split_once("\r\n\r\n")?.1;
        let v: Value = serde_json::from_str(body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut open, mut failures) = (None, None);
    while Instant::now() < deadline && (open.is_none() || failures.is_none()) {
        open = query("openclaw_gateway_connections_open");
        failures = query(r#"openclaw_gateway_auth_failures_total{reason="token_mismatch"}"#);
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = prom.kill();
    let _ = prom.wait();
    let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    assert_eq!(
        open,
        Some(1.0),
        "connection gauge via Prometheus; log tail:\n{}",
        &log[log.len().saturating_sub(2000)..]
    );
    assert_eq!(failures, Some(1.0), "auth-failure counter via Prometheus");
}

fn gateway_log(gw: &Gw) -> String {
    std::fs::read_to_string(gw.home.join(".openclaw/logs/gateway.log")).unwrap_or_default()
}

/// The conn id of a fresh authenticated connection (kept open).
async fn connect(gw: &Gw) -> (Client, String) {
    let (c, hello) = Client::authed(&gw.url(), TOKEN).await;
    let id = hello["server"]["connId"].as_str().unwrap().to_string();
    (c, id)
}

/// Waits for `pred(log)` (bounded).
fn wait_log(gw: &Gw, what: &str, pred: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + patience();
    while !pred(&gateway_log(gw)) {
        assert!(Instant::now() < deadline, "{what}:\n{}", gateway_log(gw));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_filter_switches_at_run_time_and_back() {
    // RUST_LOG unset (the harness sets it), so logging.level is ours to switch.
    let gw = Gw::start(Opts {
        env: vec![("RUST_LOG".into(), String::new())],
        ..Default::default()
    });
    let opened = |log: &str, id: &str| {
        log.lines()
            .any(|l| l.contains("connection open") && l.contains(id))
    };
    // At info, a connection's debug line is not logged.
    let (_a, first) = connect(&gw).await;
    let (code, out, err) = tokio::task::block_in_place(|| gw.cli(&["gateway", "log-level"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("log filter: info,hyper=warn,ractor=warn"),
        "{out}"
    );
    // Debug on: the next connection's debug line appears.
    let (code, out, err) =
        tokio::task::block_in_place(|| gw.cli(&["gateway", "log-level", "debug"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("log filter: debug (was info"), "{out}");
    let (_b, second) = connect(&gw).await;
    wait_log(&gw, "debug line after the switch", |l| opened(l, &second));
    assert!(
        !opened(&gateway_log(&gw), &first),
        "no debug line before the switch"
    );
    // Back to info: gone again.
    let (code, _, err) = tokio::task::block_in_place(|| gw.cli(&["gateway", "log-level", "info"]));
    assert_eq!(code, 0, "{err}");
    let (_c, third) = connect(&gw).await;
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !opened(&gateway_log(&gw), &third),
        "no debug line after reverting"
    );
    // A bad filter is refused and changes nothing.
    let (code, _, err) =
        tokio::task::block_in_place(|| gw.cli(&["gateway", "log-level", "info,[[["]));
    assert_ne!(code, 0);
    assert!(err.contains("not a valid log filter"), "{err}");
    let ev = gw.wait_audit("gateway.log_level", |v| {
        v["event"] == "gateway.log_level" && v["filter"] == "debug"
    });
    assert_eq!(ev["previous"], "info,hyper=warn,ractor=warn");
    // logging.level through a config reload (SIGHUP) applies live too.
    let cfg = gw.home.join(".openclaw/openclaw.json");
    std::fs::write(&cfg, r#"{ logging: { level: "debug" } }"#).unwrap();
    gw.signal(libc::SIGHUP);
    gw.wait_audit("config.reload", |v| {
        v["event"] == "config.reload" && v.to_string().contains("logging.level")
    });
    let (_d, fourth) = connect(&gw).await;
    wait_log(&gw, "debug line after the reload", |l| opened(l, &fourth));
}

/// `openclaw trace <connId>` streams every actor message about that connection at trace
/// level while the gateway logs at info, and nothing about another connection; audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_shows_one_connections_messages_and_none_of_another() {
    let gw = Gw::start(Opts {
        env: vec![("RUST_LOG".into(), String::new())],
        ..Default::default()
    });
    let (mut a, ha) = Client::authed(&gw.url(), TOKEN).await;
    let (mut b, hb) = Client::authed(&gw.url(), TOKEN).await;
    let (ida, idb) = (
        ha["server"]["connId"].as_str().unwrap().to_string(),
        hb["server"]["connId"].as_str().unwrap().to_string(),
    );
    let port = gw.port.to_string();
    let home = gw.home.clone();
    let id = ida.clone();
    let tracer = std::thread::spawn(move || {
        common::run_bounded(common::client_command(
            &home,
            &[
                ("OPENCLAW_GATEWAY_TOKEN", TOKEN),
                ("OPENCLAW_GATEWAY_PORT", &port),
            ],
            &["trace", &id, "--for", "3"],
        ))
    });
    // Both connections talk while the trace runs.
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        assert_eq!(a.call("health", json!({})).await["ok"], true);
        assert_eq!(b.call("health", json!({})).await["ok"], true);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, out, err) = tokio::task::block_in_place(|| tracer.join().unwrap());
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().any(|l| l.contains(&format!("conn={ida}"))
            && l.contains("actor=session")
            && l.contains("msg=Inbound")),
        "no session message of the traced connection:\n{out}"
    );
    assert!(
        !out.contains(&idb),
        "the other connection leaked into the trace:\n{out}"
    );
    assert!(err.contains(&ida), "{err}");
    // The rest of the gateway stayed at info: no trace line of the other connection anywhere.
    let log =
        std::fs::read_to_string(gw.home.join(".openclaw/logs/gateway.log")).unwrap_or_default();
    assert!(
        !log.lines()
            .any(|l| l.contains(&idb) && l.contains("Inbound")),
        "the untraced connection was logged at trace level"
    );
    let ev = gw.wait_audit("trace.started", |v| v["event"] == "trace.started");
    assert_eq!(ev["connIds"], json!([ida]));
}
