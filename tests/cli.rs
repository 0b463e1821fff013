//! End-to-end tests of the client commands against gateways started on free ports.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{client_command, patience, Gw, Opts, TOKEN};
use serde_json::Value;

/// Runs `openclaw ARGS` with `HOME=home` and `env`; returns (exit, stdout, stderr).
fn cli(home: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    common::run_bounded(client_command(home, env, args))
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[test]
fn every_command_against_the_local_gateway_with_its_runtime_token() {
    let gw = Gw::start(Opts {
        no_token: true,
        ..Default::default()
    });
    let port = gw.port.to_string();
    let env = [("OPENCLAW_GATEWAY_PORT", port.as_str())];
    let token = std::fs::read_to_string(gw.state_dir().join("gateway.token"))
        .unwrap()
        .trim()
        .to_string();
    let run = |args: &[&str]| cli(&gw.home, &env, args);

    let (code, out, err) = run(&["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("ws://127.0.0.1:{port}")) && out.contains("reachable"),
        "{out}"
    );
    assert!(
        out.contains("gateway.token"),
        "says where the credentials came from: {out}"
    );
    let (code, out, _) = run(&["status", "--json"]);
    assert_eq!(code, 0);
    let v = json(&out);
    assert_eq!(v["reachable"], true);
    assert_eq!(v["status"]["port"], gw.port);
    assert!(v["handshakeMs"].as_f64().unwrap() > 0.0);

    let (code, out, _) = run(&["health", "--json"]);
    assert_eq!((code, json(&out)["ok"].clone()), (0, Value::Bool(true)));
    let (code, out, _) = run(&["health"]);
    assert_eq!(code, 0);
    assert!(out.contains(": ok ("), "{out}");

    let (code, out, _) = run(&["gateway", "call", "status", "--json"]);
    assert_eq!(code, 0);
    assert!(json(&out)["runtimeVersion"].is_string());
    let (code, out, _) = run(&[
        "gateway",
        "call",
        "logs.tail",
        "--params",
        r#"{"limit": 2}"#,
        "--json",
    ]);
    assert_eq!(code, 0);
    assert!(json(&out)["lines"].as_array().unwrap().len() <= 2);
    let (code, _, err) = run(&["gateway", "call", "no.such"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown method: no.such"), "{err}");
    let (code, _, err) = run(&["gateway", "call", "health", "--params", "{not json"]);
    assert_eq!(code, 2);
    assert!(err.contains("--params is not valid JSON"), "{err}");

    let (code, out, _) = run(&["gateway", "connections", "--json"]);
    assert_eq!(code, 0);
    assert!(json(&out)["count"].as_u64().unwrap() >= 1);
    let (code, out, _) = run(&["gateway", "list-connections"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("CONN") && out.contains("cli/cli"), "{out}");

    let (code, out, _) = run(&["ports", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(json(&out)["base"], gw.port);
    let (code, out, _) = run(&["config", "validate", "--json"]);
    assert_eq!((code, json(&out)["valid"].clone()), (0, Value::Bool(true)));
    let (code, out, _) = run(&["logs", "--json", "--limit", "5"]);
    assert_eq!(code, 0);
    assert!(
        out.lines().count() <= 5 && out.lines().all(|l| json(l)["event"].is_string()),
        "{out}"
    );

    for (_, out, err) in [
        run(&["status"]),
        run(&["health", "--json"]),
        run(&["logs"]),
        run(&["config", "validate"]),
    ] {
        assert!(
            !out.contains(&token) && !err.contains(&token),
            "a secret was printed"
        );
    }
}

#[test]
fn unreachable_and_wrong_token_exit_codes() {
    let home = common::temp_dir("cli-none");
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{free}");
    let (code, out, err) = cli(&home, &[], &["status", "--gateway", &url, "--json"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("connection refused") && err.contains("openclaw gateway"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert_eq!(json(&out)["reachable"], false);
    let (code, _, err) = cli(&home, &[], &["ping", "--gateway", &url, "-c", "1"]);
    assert_eq!(code, 1, "{err}");

    let gw = Gw::start(Opts::default());
    let (code, _, err) = cli(
        &home,
        &[],
        &["status", "--gateway", &gw.url(), "--token", "NotTheToken"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("token mismatch"), "{err}");
    assert!(!err.contains(TOKEN));
    let (code, _, err) = cli(&home, &[], &["status", "--gateway", "http://x"]);
    assert_eq!(code, 2);
    assert!(err.contains("ws://host:port"), "{err}");
}

#[test]
fn the_seed_command_lines_verbatim() {
    let gw = Gw::start(Opts::default());
    let port = gw.port.to_string();
    let env = [
        ("OPENCLAW_GATEWAY_TOKEN", TOKEN),
        ("OPENCLAW_GATEWAY_PORT", port.as_str()),
    ];
    let local = format!("ws://localhost:{port}");

    let (code, out, err) = cli(&gw.home, &env, &["status", "--gateway", &local]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("reachable"));

    let (code, out, err) = cli(&gw.home, &env, &["ping", "--gateway", &local, "-c", "3"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("PING {local}: handshake ")),
        "{out}"
    );
    for seq in 1..=3 {
        assert!(out.contains(&format!("seq={seq} time=")), "{out}");
    }
    assert!(
        out.contains("3 requests sent, 3 received, 0% loss")
            && out.contains("rtt min/avg/max/mdev = "),
        "{out}"
    );

    let (code, out, err) = cli(&gw.home, &env, &["gateway", "list-connections"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("CONN") && out.contains("connection(s)"),
        "{out}"
    );

    // a failed login, then `openclaw logs --filter auth` shows it
    let (code, _, _) = cli(
        &gw.home,
        &[],
        &["status", "--gateway", &local, "--token", "BadGuess"],
    );
    assert_eq!(code, 2);
    let deadline = Instant::now() + patience();
    loop {
        let (code, out, err) = cli(&gw.home, &env, &["logs", "--filter", "auth"]);
        assert_eq!(code, 0, "{err}");
        if out.contains("auth.fail") && out.contains("reason=token_mismatch") {
            assert!(
                out.lines()
                    .all(|l| l.contains(" auth.") || l.contains(" device.")),
                "only auth events: {out}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no auth.fail in {out}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // and the same through the gateway (audit.tail)
    let (code, out, err) = cli(
        &gw.home,
        &env,
        &["logs", "--gateway", &local, "--filter", "auth", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().any(|l| json(l)["event"] == "auth.fail"),
        "{out}"
    );
}

#[test]
fn two_gateways_on_different_profiles_each_addressed_with_gateway() {
    let a = Gw::start(Opts::default());
    let b = Gw::start(Opts {
        args: vec!["--profile".into(), "work".into()],
        ..Default::default()
    });
    assert_ne!(a.port, b.port);
    let home = common::temp_dir("cli-two");
    let st = |gw: &Gw| {
        let (code, out, err) = cli(
            &home,
            &[],
            &["status", "--gateway", &gw.url(), "--token", TOKEN, "--json"],
        );
        assert_eq!(code, 0, "{err}");
        json(&out)["status"].clone()
    };
    let (sa, sb) = (st(&a), st(&b));
    assert_eq!(sa["pid"], a.child.id());
    assert_eq!(sb["pid"], b.child.id());
    assert!(
        sb["stateDir"].as_str().unwrap().ends_with(".openclaw-work"),
        "{sb}"
    );
    assert!(
        sa["stateDir"].as_str().unwrap().ends_with(".openclaw"),
        "{sa}"
    );
}

#[test]
fn explicit_gateway_never_borrows_local_credentials() {
    let gw = Gw::start(Opts {
        no_token: true,
        ..Default::default()
    });
    assert!(gw.state_dir().join("gateway.token").exists());
    let port = gw.port.to_string();
    // the local token file is right there, but --gateway must not use it
    let (code, _, err) = cli(
        &gw.home,
        &[("OPENCLAW_GATEWAY_PORT", &port)],
        &["status", "--gateway", &gw.url()],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("pass --token"), "{err}");
    // without --gateway the same machine's gateway is reached with its token file
    let (code, _, err) = cli(&gw.home, &[("OPENCLAW_GATEWAY_PORT", &port)], &["status"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn token_generate_completions_and_help() {
    let home = common::temp_dir("cli-misc");
    let (code, a, _) = cli(&home, &[], &["token", "generate"]);
    let (_, b, _) = cli(&home, &[], &["token", "generate", "--length", "64"]);
    assert_eq!(code, 0);
    let (a, b) = (a.trim(), b.trim());
    assert_eq!((a.len(), b.len()), (48, 64));
    assert!(a.chars().all(|c| c.is_ascii_alphanumeric()) && a.chars().any(|c| c.is_ascii_digit()));
    assert_ne!(a, &b[..48]);
    assert_eq!(
        cli(&home, &[], &["token", "generate", "--length", "8"]).0,
        2
    );
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, _) = cli(&home, &[], &["completions", shell]);
        assert_eq!(code, 0);
        assert!(out.contains("openclaw") && out.len() > 500, "{shell}");
    }
    for cmd in [
        vec!["status", "--help"],
        vec!["ping", "--help"],
        vec!["logs", "--help"],
        vec!["gateway", "call", "--help"],
    ] {
        let (code, out, _) = cli(&home, &[], &cmd);
        assert_eq!(code, 0);
        assert!(out.contains("Examples:"), "{cmd:?}: {out}");
    }
    let (code, out, _) = cli(&home, &[], &["ports", "--port", "18789"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("18791")
            && out.contains("18793")
            && out.contains("18800–18899")
            && out.contains("never share"),
        "{out}"
    );
    let (code, _, err) = cli(
        &home,
        &[],
        &[
            "config",
            "validate",
            "--config",
            "/nonexistent/openclaw.json",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/openclaw.json"), "{err}");
}

#[test]
fn remote_mode_config_supplies_url_and_token() {
    let gw = Gw::start(Opts::default());
    let home = common::temp_dir("cli-remote");
    std::fs::create_dir_all(home.join(".openclaw")).unwrap();
    let cfg = format!(
        r#"{{ gateway: {{ mode: "remote", remote: {{ url: "{}", token: "{TOKEN}" }} }} }}"#,
        gw.url()
    );
    std::fs::write(home.join(".openclaw/openclaw.json"), cfg).unwrap();
    let (code, out, err) = cli(&home, &[], &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["source"], "config gateway.remote.url");
    assert_eq!(v["status"]["pid"], gw.child.id());
    // remote mode without a url says what to set
    std::fs::write(
        home.join(".openclaw/openclaw.json"),
        r#"{ gateway: { mode: "remote" } }"#,
    )
    .unwrap();
    let (code, _, err) = cli(&home, &[], &["status"]);
    assert_eq!(code, 2);
    assert!(err.contains("gateway.remote.url"), "{err}");
}

/// Spawns `openclaw ARGS` in the background with stdout piped.
fn spawn_cli(home: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Child {
    client_command(home, env, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn interrupt_and_collect(mut child: std::process::Child) -> (i32, String) {
    assert_eq!(common::kill(child.id(), libc::SIGINT), 0);
    let deadline = Instant::now() + patience();
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
    )
}

#[test]
fn ping_prints_its_summary_on_ctrl_c() {
    let gw = Gw::start(Opts::default());
    let home = common::temp_dir("cli-ping");
    let child = spawn_cli(
        &home,
        &[("OPENCLAW_GATEWAY_TOKEN", TOKEN)],
        &["ping", "--gateway", &gw.url(), "-i", "0.05"],
    );
    std::thread::sleep(Duration::from_millis(600));
    let (code, out) = interrupt_and_collect(child);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("seq=1 time=") && out.contains("ping statistics") && out.contains("0% loss"),
        "{out}"
    );
}

#[test]
fn logs_follow_prints_new_events_until_ctrl_c() {
    let gw = Gw::start(Opts::default());
    let port = gw.port.to_string();
    let env = [
        ("OPENCLAW_GATEWAY_TOKEN", TOKEN),
        ("OPENCLAW_GATEWAY_PORT", port.as_str()),
    ];
    let child = spawn_cli(
        &gw.home,
        &env,
        &["logs", "--follow", "--filter", "auth", "--limit", "1"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let (code, _, _) = cli(
        &gw.home,
        &[],
        &[
            "status",
            "--gateway",
            &gw.url(),
            "--token",
            "LateWrongToken",
        ],
    );
    assert_eq!(code, 2);
    std::thread::sleep(Duration::from_millis(1200));
    let (code, out) = interrupt_and_collect(child);
    assert_eq!(code, 0);
    assert!(
        out.contains("auth.fail") && out.contains("token_mismatch"),
        "followed the new failure: {out}"
    );
}
