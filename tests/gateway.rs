//! End-to-end tests against the built `openclaw` binary on `127.0.0.1:0`.

mod common;

use common::{connect_params, http_get, run_to_exit, Client, Closed, Gw, Opts, TOKEN};
use serde_json::{json, Value};

fn opts_with_config(cfg: &str) -> Opts {
    Opts {
        config: Some(cfg.to_string()),
        ..Default::default()
    }
}

#[tokio::test]
async fn handshake_hello_ok_has_every_required_field() {
    let gw = Gw::start(Opts::default());
    let mut c = Client::connect(&gw.url()).await;
    let (ch, res) = c
        .connect_with(connect_params(TOKEN, "cli", "cli", &["operator.read"]))
        .await;
    let nonce = ch["payload"]["nonce"].as_str().unwrap();
    assert_eq!(nonce.len(), 36, "uuid nonce: {ch}");
    assert!(ch["payload"]["ts"].as_i64().unwrap() > 1_700_000_000_000);
    assert!(ch.get("seq").is_none());
    assert_eq!(res["ok"], true, "{res}");
    let p = &res["payload"];
    assert_eq!(p["type"], "hello-ok");
    assert_eq!(p["protocol"], 4);
    assert!(p["server"]["version"].is_string() && p["server"]["connId"].is_string());
    let methods: Vec<&str> = p["features"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    for m in [
        "health",
        "status",
        "system-presence",
        "last-heartbeat",
        "logs.tail",
        "config.get",
        "gateway.connections.list",
        "device.pair.list",
        "device.pair.approve",
        "device.pair.reject",
        "device.pair.remove",
    ] {
        assert!(methods.contains(&m), "{m} missing from {methods:?}");
    }
    assert!(p["features"]["events"]
        .as_array()
        .unwrap()
        .contains(&json!("tick")));
    assert!(p["snapshot"]["presence"].is_array());
    assert!(p["snapshot"]["health"].is_object());
    assert!(p["snapshot"]["stateVersion"]["presence"].is_u64());
    assert!(p["snapshot"]["uptimeMs"].is_u64());
    assert_eq!(p["snapshot"]["authMode"], "token");
    assert_eq!(
        p["auth"],
        json!({"method":"token","role":"operator","scopes":["operator.read"]})
    );
    assert_eq!(p["policy"]["maxPayload"], 26_214_400);
    assert_eq!(p["policy"]["maxBufferedBytes"], 52_428_800);
    assert_eq!(p["policy"]["tickIntervalMs"], 30_000);
    // and a request works
    let h = c.call("health", json!({})).await;
    assert_eq!(h["ok"], true);
    assert_eq!(h["payload"]["ok"], true);
}

#[tokio::test]
async fn v3_client_range_gets_protocol_3_and_mismatch_closes_1002() {
    let gw = Gw::start(Opts::default());
    let mut c = Client::connect(&gw.url()).await;
    let mut p = connect_params(TOKEN, "cli", "cli", &[]);
    p["minProtocol"] = json!(3);
    p["maxProtocol"] = json!(3);
    let (_, res) = c.connect_with(p).await;
    assert_eq!(res["payload"]["protocol"], 3, "{res}");

    let mut c = Client::connect(&gw.url()).await;
    let mut p = connect_params(TOKEN, "cli", "cli", &[]);
    p["minProtocol"] = json!(5);
    p["maxProtocol"] = json!(5);
    let (_, res) = c.connect_with(p).await;
    assert_eq!(res["error"]["message"], "protocol mismatch");
    assert_eq!(res["error"]["details"]["code"], "PROTOCOL_MISMATCH");
    assert_eq!(
        c.closed().await,
        Closed::Code(1002, "protocol mismatch".into())
    );
}

#[tokio::test]
async fn wrong_token_is_rejected_closed_1008_and_audited() {
    let gw = Gw::start(Opts::default());
    let mut c = Client::connect(&gw.url()).await;
    let (_, res) = c
        .connect_with(connect_params(
            "WrongToken",
            "cli",
            "cli",
            &["operator.read"],
        ))
        .await;
    assert_eq!(res["ok"], false);
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");
    assert_eq!(res["error"]["details"]["code"], "AUTH_TOKEN_MISMATCH");
    let msg = res["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.starts_with("unauthorized: gateway token mismatch"),
        "{msg}"
    );
    assert_eq!(c.closed().await, Closed::Code(1008, msg));
    let ev = gw.wait_audit("auth.fail", |v| v["event"] == "auth.fail");
    assert_eq!(ev["reason"], "token_mismatch");
    assert_eq!(ev["code"], "AUTH_TOKEN_MISMATCH");
    assert!(ev["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    let raw = std::fs::read_to_string(gw.state_dir().join("logs/audit.jsonl")).unwrap();
    assert!(
        !raw.contains(TOKEN) && !raw.contains("WrongToken"),
        "audit must never hold a secret"
    );
}

#[tokio::test]
async fn missing_credentials_need_device_identity() {
    let gw = Gw::start(Opts::default());
    let mut c = Client::connect(&gw.url()).await;
    let mut p = connect_params(TOKEN, "cli", "cli", &[]);
    p.as_object_mut().unwrap().remove("auth");
    let (_, res) = c.connect_with(p).await;
    assert_eq!(res["error"]["code"], "NOT_PAIRED");
    assert_eq!(res["error"]["details"]["code"], "DEVICE_IDENTITY_REQUIRED");
    assert_eq!(
        c.closed().await,
        Closed::Code(1008, "device identity required".into())
    );
}

#[tokio::test]
async fn oversize_preauth_frame_is_refused_but_large_frames_pass_after_auth() {
    let gw = Gw::start(Opts::default());
    let mut c = Client::connect(&gw.url()).await;
    let _challenge = c.recv().await;
    let big = "x".repeat(70 * 1024);
    c.send(&json!({"type":"req","id":"c1","method":"connect","params":{"pad": big}}))
        .await;
    match c.closed().await {
        Closed::Code(code, _) => assert_eq!(code, 1009),
        Closed::Eof => {} // the guard may cut the socket before the close frame is readable
    }
    gw.wait_audit("oversize close", |v| {
        v["event"] == "conn.close" && v["reason"].as_str().is_some_and(|r| r.contains("oversize"))
    });

    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    let pad = "y".repeat(200 * 1024);
    let res = c.call("health", json!({"pad": pad})).await;
    assert_eq!(res["ok"], true, "a 200 KiB frame is fine after hello-ok");
}

#[tokio::test]
async fn first_frame_rules() {
    let gw = Gw::start(Opts::default());
    // not a request frame: closed 1008 without a res
    let mut c = Client::connect(&gw.url()).await;
    let _ = c.recv().await;
    c.send(&json!({"type":"event","event":"hello"})).await;
    assert_eq!(
        c.closed().await,
        Closed::Code(1008, "invalid request frame".into())
    );
    // a request that is not connect
    let mut c = Client::connect(&gw.url()).await;
    let _ = c.recv().await;
    c.send(&json!({"type":"req","id":"a","method":"health"}))
        .await;
    let res = c.recv_res("a").await;
    let msg = "invalid handshake: first request must be connect";
    assert_eq!(res["error"]["message"], msg);
    assert_eq!(c.closed().await, Closed::Code(1008, msg.into()));
    // bad params
    let mut c = Client::connect(&gw.url()).await;
    let mut p = connect_params(TOKEN, "bogus-client", "cli", &[]);
    p["role"] = json!("operator");
    let (_, res) = c.connect_with(p).await;
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid connect params: at /client/id"),
        "{res}"
    );
    assert!(matches!(c.closed().await, Closed::Code(1008, _)));
    // bad role
    let mut c = Client::connect(&gw.url()).await;
    let mut p = connect_params(TOKEN, "cli", "cli", &[]);
    p["role"] = json!("root");
    let (_, res) = c.connect_with(p).await;
    assert_eq!(res["error"]["message"], "invalid role");
    assert_eq!(c.closed().await, Closed::Code(1008, "invalid role".into()));
}

#[tokio::test]
async fn unknown_method_missing_scope_and_bad_frames_keep_the_socket_open() {
    let gw = Gw::start(Opts::default());
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    let res = c.call("no.such.method", json!({})).await;
    assert_eq!(
        res["error"],
        json!({"code":"INVALID_REQUEST","message":"unknown method: no.such.method"})
    );
    c.send(&json!({"type":"req","method":"health"})).await;
    let bad = c.recv_res("invalid").await;
    assert_eq!(bad["error"]["code"], "INVALID_REQUEST");
    assert!(bad["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("invalid request frame"));
    assert_eq!(c.call("health", json!({})).await["ok"], true, "still open");

    // a probe client keeps no scopes: FORBIDDEN with details
    let mut p = Client::connect(&gw.url()).await;
    let mut params = connect_params(TOKEN, "cli", "probe", &["operator.read"]);
    params["minProtocol"] = json!(3);
    let (_, hello) = p.connect_with(params).await;
    assert_eq!(hello["payload"]["auth"]["scopes"], json!([]));
    let res = p.call("system-presence", json!({})).await;
    assert_eq!(
        res["error"],
        json!({"code":"FORBIDDEN","message":"missing scope: operator.read",
               "details":{"code":"MISSING_SCOPE","missingScope":"operator.read","requiredScopes":["operator.read"]}})
    );
    // read scope cannot list connections (admin)
    let (mut r, _) = {
        let mut c = Client::connect(&gw.url()).await;
        let (_, res) = c
            .connect_with(connect_params(TOKEN, "cli", "cli", &["operator.read"]))
            .await;
        (c, res)
    };
    let res = r.call("gateway.connections.list", json!({})).await;
    assert_eq!(res["error"]["message"], "missing scope: operator.admin");
}

#[tokio::test]
async fn ticks_arrive_with_increasing_seq() {
    let gw = Gw::start(opts_with_config(r#"{ gateway: { tickIntervalMs: 150 } }"#));
    let (mut c, hello) = Client::authed(&gw.url(), TOKEN).await;
    assert_eq!(hello["policy"]["tickIntervalMs"], 150);
    let mut seqs = Vec::new();
    while seqs.len() < 2 {
        let v = c.recv().await;
        if v["event"] == "tick" {
            assert!(v["payload"]["ts"].is_i64());
            seqs.push(v["seq"].as_u64().unwrap());
        }
    }
    assert_eq!(seqs[1], seqs[0] + 1, "per-connection seq increases by one");
    assert_eq!(seqs[0], 1, "seq starts at 1");
}

#[tokio::test]
async fn sigterm_sends_shutdown_closes_1012_and_exits_0() {
    let mut gw = Gw::start(Opts::default());
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    let mut pre = Client::connect(&gw.url()).await; // unauthenticated, mid-handshake
    let _ = pre.recv().await;
    gw.signal(libc::SIGTERM);
    let mut saw_shutdown = false;
    let closed = loop {
        match tokio::time::timeout(common::patience(), c.ws_next())
            .await
            .unwrap()
        {
            Some(v) if v["event"] == "shutdown" => saw_shutdown = true,
            Some(_) => {}
            None => break c.closed_after_stream_end(),
        }
    };
    assert!(saw_shutdown, "a shutdown event precedes the close");
    assert_eq!(closed, Closed::Code(1012, "service restart".into()));
    assert_eq!(
        pre.closed().await,
        Closed::Code(1012, "service restart".into())
    );
    assert_eq!(gw.wait_exit(), Some(0), "stderr: {}", gw.stderr());
    let audit = gw.audit();
    let stop = audit
        .iter()
        .find(|v| v["event"] == "gateway.stop")
        .expect("gateway.stop audited");
    assert_eq!(stop["clean"], true);
    assert!(
        audit
            .iter()
            .any(|v| v["event"] == "conn.close" && v["code"] == 1012),
        "session closes audited before exit"
    );
}

/// Listed clients (not `cli`/`probe`) appear in later clients' `hello-ok` presence and in
/// `system-presence`, in connect order, each entry as the real gateway shapes it; an entry
/// goes when its client does.
#[tokio::test]
async fn listed_clients_in_hello_ok_and_system_presence_until_they_leave() {
    let gw = Gw::start(Opts::default());
    let mut tui = Client::connect(&gw.url()).await;
    let (_, res) = tui
        .connect_with(connect_params(TOKEN, "openclaw-tui", "ui", &[]))
        .await;
    assert_eq!(res["ok"], true, "{res}");
    let mut web = Client::connect(&gw.url()).await;
    let (_, res) = web
        .connect_with(connect_params(TOKEN, "webchat-ui", "webchat", &[]))
        .await;
    assert_eq!(res["ok"], true, "{res}");
    let (mut cli, hello) = Client::authed(&gw.url(), TOKEN).await;
    let list = &hello["snapshot"]["presence"];
    assert_eq!(modes(list), ["gateway", "ui", "webchat"], "{list}");
    let e = &list[1];
    assert_eq!(e["host"], "openclaw-tui");
    assert_eq!(e["ip"], "127.0.0.1");
    assert_eq!(e["reason"], "connect");
    assert_eq!(e["roles"], json!(["operator"]));
    assert!(e["ts"].as_i64().unwrap() > 1_700_000_000_000);
    let listed = cli.call("system-presence", json!({})).await["payload"].clone();
    assert_eq!(&listed, list, "system-presence gives the same list");

    drop(tui);
    let mut left = Value::Null;
    for _ in 0..100 {
        left = cli.call("system-presence", json!({})).await["payload"].clone();
        if !modes(&left).contains(&"ui") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(modes(&left), ["gateway", "webchat"], "{left}");
    drop(web);
}

/// The `mode` of each entry of a presence list, in order.
fn modes(list: &Value) -> Vec<&str> {
    let entries = list.as_array().expect("a presence list");
    entries
        .iter()
        .map(|e| e["mode"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn connections_list_status_presence_config_and_logs() {
    let gw = Gw::start(opts_with_config(
        r#"{ gateway: { auth: { token: "${FROM_ENV}" } } }"#
            .replace("${FROM_ENV}", TOKEN)
            .as_str(),
    ));
    let (mut c, hello) = Client::authed(&gw.url(), TOKEN).await;
    let conn_id = hello["server"]["connId"].as_str().unwrap().to_string();
    let list = c.call("gateway.connections.list", json!({})).await;
    let rows = list["payload"]["connections"].as_array().unwrap();
    let me = rows
        .iter()
        .find(|r| r["connId"] == conn_id.as_str())
        .expect("own connection listed");
    assert_eq!(me["client"]["id"], "cli");
    assert_eq!(me["role"], "operator");
    assert_eq!(me["authMethod"], "token");
    assert!(me["framesIn"].as_u64().unwrap() >= 2);
    assert!(me["peer"].as_str().unwrap().starts_with("127.0.0.1:"));

    let st = c.call("status", json!({})).await["payload"].clone();
    assert_eq!(st["authMode"], "token");
    assert_eq!(st["port"], gw.port);
    assert!(st["connections"]["active"].as_u64().unwrap() >= 1);
    assert!(st["audit"]["written"].as_u64().unwrap() >= 1, "{st}");
    assert_eq!(st["pid"], gw.child.id());

    let cfg = c.call("config.get", json!({})).await["payload"].clone();
    assert_eq!(
        cfg["config"]["gateway"]["auth"]["token"], "********",
        "secrets masked: {cfg}"
    );
    assert!(!cfg.to_string().contains(TOKEN));

    let pres = c.call("system-presence", json!({})).await;
    assert_eq!(pres["payload"][0]["mode"], "gateway");

    let logs = c.call("logs.tail", json!({"limit": 5})).await["payload"].clone();
    assert!(logs["lines"].as_array().unwrap().len() <= 5);
    assert!(logs["cursor"].as_u64().unwrap() > 0);
    assert!(logs["file"].as_str().unwrap().ends_with("gateway.log"));
    let bad = c.call("logs.tail", json!({"limit": 0})).await;
    assert_eq!(bad["error"]["code"], "INVALID_REQUEST");

    let audit = c.call("audit.tail", json!({"limit": 50})).await["payload"].clone();
    assert!(audit["lines"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l.as_str().unwrap().contains("auth.ok")));

    let hb = c.call("last-heartbeat", json!({})).await;
    assert_eq!(hb["ok"], true);
}

#[tokio::test]
async fn requests_may_be_pipelined() {
    let gw = Gw::start(Opts::default());
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    let ids = [
        c.req("logs.tail", json!({})).await,
        c.req("health", json!({})).await,
        c.req("status", json!({})).await,
    ];
    let mut got = std::collections::HashSet::new();
    while got.len() < ids.len() {
        let v = c.recv().await;
        if v["type"] == "res" {
            assert_eq!(v["ok"], true, "{v}");
            got.insert(v["id"].as_str().unwrap().to_string());
        }
    }
}

#[tokio::test]
async fn http_probes_and_root_note() {
    let gw = Gw::start(Opts::default());
    let (s, body) = http_get(gw.port, "/healthz");
    assert_eq!(s, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["ok"], true);
    let (s, body) = http_get(gw.port, "/readyz");
    assert_eq!(s, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["ready"], true);
    let (s, body) = http_get(gw.port, "/");
    assert_eq!(s, 200);
    assert!(
        body.contains("OpenClaw Gateway") && body.contains(&format!("ws://127.0.0.1:{}", gw.port)),
        "{body}"
    );
    assert_eq!(http_get(gw.port, "/nope").0, 404);
    assert!(!body.contains(TOKEN));
}

#[tokio::test]
async fn listens_on_ipv6_loopback_too() {
    let gw = Gw::start(Opts::default());
    let v6 = gw
        .stdout_lines
        .iter()
        .any(|l| l.starts_with("listening on ws://[::1]:"));
    let available = if v6 {
        Ok(())
    } else {
        Err("the gateway did not listen on [::1] (IPv6 loopback unavailable)".to_string())
    };
    let Some(()) = common::require("ipv6", available) else {
        return;
    };
    let (mut c, _) = Client::authed(&format!("ws://[::1]:{}", gw.port), TOKEN).await;
    assert_eq!(c.call("health", json!({})).await["ok"], true);
}

#[tokio::test]
async fn runtime_token_is_generated_private_and_never_printed() {
    let gw = Gw::start(Opts {
        no_token: true,
        ..Default::default()
    });
    let path = gw.state_dir().join("gateway.token");
    let token = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert!(token.len() >= 48);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let banner = gw.stdout_lines.join("\n");
    assert!(
        banner.contains(&path.display().to_string()),
        "tells the user where: {banner}"
    );
    assert!(!banner.contains(&token) && !gw.stderr().contains(&token));
    let (mut c, _) = Client::authed(&gw.url(), &token).await;
    assert_eq!(c.call("health", json!({})).await["ok"], true);
}

#[test]
fn startup_refusals_exit_2_with_the_reason() {
    let cases: Vec<(Opts, &str)> = vec![
        (
            Opts {
                args: vec!["--bind".into(), "everywhere".into()],
                ..Default::default()
            },
            "is not one of loopback, lan, tailnet, custom, auto, or an IP address",
        ),
        (
            opts_with_config(r#"{ gateway: { tls: { enabled: true, minVersion: "1.1" } } }"#),
            "gateway.tls.minVersion",
        ),
        (
            opts_with_config(r#"{ gateway: { rateLimit: { enabled: true, maxRequests: 0 } } }"#),
            "gateway.rateLimit.maxRequests",
        ),
        (
            opts_with_config(r#"{ gateway: { tailscale: { mode: "serve" } } }"#),
            "gateway.tailscale.mode",
        ),
        (
            opts_with_config(r#"{ gateway: { prot: 1 } }"#),
            "unknown config key `gateway.prot`",
        ),
        (
            Opts {
                env: vec![("OPENCLAW_GATEWAY_PORT".into(), "http".into())],
                ..Default::default()
            },
            "OPENCLAW_GATEWAY_PORT",
        ),
    ];
    for (opts, want) in cases {
        let (code, _out, err) = run_to_exit(opts);
        assert_eq!(code, 2, "{want}: {err}");
        assert!(err.contains(want), "stderr should mention {want}: {err}");
        assert!(!err.contains(TOKEN));
    }
}

#[test]
fn busy_port_fails_with_a_clear_message() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let (code, _, err) = run_to_exit(Opts {
        args: vec!["--port".into(), port.to_string()],
        ..Default::default()
    });
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("address already in use"), "{err}");
}

/// A valid config with an `x: [[…]]` array nested `depth` deep under an unknown key.
fn nested_config(depth: usize) -> String {
    format!("{{\n  x: {}{}\n}}\n", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn deeply_nested_config_exits_2_naming_the_file_not_a_stack_overflow() {
    // ~440 bytes used to abort the process ("thread 'main' has overflowed its stack", 134).
    let (code, _, err) = run_to_exit(opts_with_config(&nested_config(200)));
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("overflowed"), "{err}");
    assert!(
        err.contains(".openclaw/openclaw.json: line 2: ") && err.contains("deeper than 32"),
        "{err}"
    );
    // `openclaw config validate` reads the file through the same path.
    let home = common::temp_dir("deep");
    let file = home.join("deep.json5");
    std::fs::write(&file, nested_config(200)).unwrap();
    let path = file.to_str().unwrap();
    let args = ["config", "validate", "--config", path];
    let (code, _, err) = common::run_bounded(common::client_command(&home, &[], &args));
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("overflowed"), "{err}");
    assert!(err.contains(&format!("{path}: line 2: ")), "{err}");
}

#[tokio::test]
async fn deeply_nested_config_written_while_running_is_refused_at_reload() {
    let gw = Gw::start(opts_with_config("{}"));
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    let file = gw.state_dir().join("openclaw.json");
    // 100 deep used to overflow a runtime worker's stack at reload and kill the gateway.
    for (n, depth) in [(1, 100), (2, 10_000)] {
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, nested_config(depth)).unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        let ev = gw.wait_audit("config.reload #{n}", |_| reloads(&gw).len() >= n);
        let ev = reloads(&gw).get(n - 1).cloned().unwrap_or(ev);
        assert_eq!(ev["ok"], false, "{ev}");
        let why = ev["error"].as_str().unwrap_or_default();
        assert!(
            why.contains("line 2: ") && why.contains("deeper than 32"),
            "{ev}"
        );
        assert_eq!(
            c.call("health", json!({})).await["ok"],
            true,
            "depth {depth}"
        );
    }
    let mut gw = gw;
    assert!(gw.child.try_wait().unwrap().is_none(), "{}", gw.stderr());
    assert!(!gw.stderr().contains("overflowed"), "{}", gw.stderr());
    // A new connection is served too.
    let (mut d, _) = Client::authed(&gw.url(), TOKEN).await;
    assert_eq!(d.call("health", json!({})).await["ok"], true);
}

fn reloads(gw: &Gw) -> Vec<Value> {
    gw.audit()
        .into_iter()
        .filter(|v| v["event"] == "config.reload")
        .collect()
}
