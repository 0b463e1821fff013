//! `openclaw token rotate` end to end against the real binary: the runtime token file is
//! rewritten (0600) and reloaded, a literal token in the config file is replaced in place
//! (every other byte and the mode kept), an environment token is refused with what to change
//! (exit 2, nothing changed); an open connection survives the rotation, a new one needs the
//! new token. Audited as `token.rotated` and `config.reload` listing `gateway.auth.token`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{client_command, connect_params, run_bounded, Client, Gw, Opts, TOKEN};
use serde_json::{json, Value};

/// `openclaw token rotate ARGS` as the gateway's own machine runs it: its HOME and port,
/// no token in the environment (the CLI finds it where the gateway reads it).
fn rotate(gw: &Gw, args: &[&str]) -> (i32, String, String) {
    let port = gw.port.to_string();
    let mut all = vec!["token", "rotate"];
    all.extend_from_slice(args);
    run_bounded(client_command(
        &gw.home,
        &[("OPENCLAW_GATEWAY_PORT", port.as_str())],
        &all,
    ))
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The `connect` answer for `token` on a new connection.
async fn try_token(gw: &Gw, token: &str) -> Value {
    let mut c = Client::connect(&gw.url()).await;
    let (_, res) = c
        .connect_with(connect_params(token, "cli", "cli", &["operator.read"]))
        .await;
    res
}

/// Open connections stay; a new one with the old token is refused, with the new accepted.
async fn assert_rotated(gw: &Gw, open: &mut Client, old: &str, new: &str) {
    let h = open.call("health", json!({})).await;
    assert_eq!(h["ok"], true, "the open connection keeps working: {h}");
    let res = try_token(gw, old).await;
    assert_eq!(res["ok"], false, "{res}");
    assert_eq!(
        res["error"]["details"]["code"], "AUTH_TOKEN_MISMATCH",
        "{res}"
    );
    let res = try_token(gw, new).await;
    assert_eq!(res["ok"], true, "{res}");
}

fn assert_audited(gw: &Gw, source: &str) {
    let ev = gw.wait_audit("token.rotated", |v| v["event"] == "token.rotated");
    assert_eq!(ev["source"], source, "{ev}");
    assert!(
        ev["byConnId"].as_str().is_some_and(|s| !s.is_empty()),
        "{ev}"
    );
    gw.wait_audit("config.reload with gateway.auth.token", |v| {
        v["event"] == "config.reload"
            && v["applied"]
                .as_array()
                .is_some_and(|a| a.iter().any(|k| k == "gateway.auth.token"))
    });
}

#[tokio::test]
async fn runtime_token_file_is_rotated_and_reloaded_while_connections_stay() {
    let gw = Gw::start(Opts {
        no_token: true,
        ..Default::default()
    });
    let file = gw.state_dir().join("gateway.token");
    let old = std::fs::read_to_string(&file).unwrap().trim().to_string();
    let (mut open, _) = Client::authed(&gw.url(), &old).await;

    let (code, out, err) = rotate(&gw, &["--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["source"]["kind"], "runtimeFile", "{v}");
    assert_eq!(v["source"]["path"], file.display().to_string());
    assert_eq!(v["gateway"]["running"], true);
    assert_eq!(v["gateway"]["tokenApplied"], true, "{v}");
    assert_eq!(v["gateway"]["newTokenAccepted"], true, "{v}");
    assert_eq!(v["token"], "********", "never printed without --show");

    let new = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert_ne!(new, old);
    assert_eq!(new.len(), 48);
    assert_eq!(mode(&file), 0o600);
    assert!(!out.contains(&new) && !err.contains(&new) && !out.contains(&old));
    assert_rotated(&gw, &mut open, &old, &new).await;
    assert_audited(&gw, "runtimeFile");

    // The plain-text form names the file and the clients; --show prints the token once.
    let (code, out, err) = rotate(&gw, &["--show"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let newer = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert_eq!(out.matches(&newer).count(), 1, "{out}");
    assert!(out.contains("gateway.auth.token"), "{out}");
    assert!(out.contains("remote CLIs"), "{out}");
    assert_rotated(&gw, &mut open, &new, &newer).await;
}

#[tokio::test]
async fn literal_config_token_is_replaced_in_place_keeping_bytes_and_mode() {
    let old = "OldLiteral0123456789abcdefghijklmnopqrstuvwxyz";
    let config = format!(
        "// the gateway's config\n{{\n  gateway: {{\n    auth: {{ mode: \"token\", token: \"{old}\" }}, // rotated by hand before\n    reload: {{ mode: 'off' }},\n  }},\n}}\n"
    );
    let gw = Gw::start(Opts {
        no_token: true,
        config: Some(config.clone()),
        ..Default::default()
    });
    let cfg = gw.state_dir().join("openclaw.json");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (mut open, _) = Client::authed(&gw.url(), old).await;

    let (code, out, err) = rotate(&gw, &["--json", "--show"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["source"]["kind"], "config", "{v}");
    assert_eq!(v["gateway"]["tokenApplied"], true, "{v}");
    let new = v["token"].as_str().unwrap().to_string();
    assert_eq!(new.len(), 48);

    let after = std::fs::read_to_string(&cfg).unwrap();
    assert_eq!(after, config.replace(old, &new), "only the token changed");
    assert_eq!(mode(&cfg), 0o640, "mode kept");
    assert!(!gw.state_dir().join("gateway.token").exists());
    assert_rotated(&gw, &mut open, old, &new).await;
    assert_audited(&gw, "config");
}

#[test]
fn env_token_is_refused_with_what_to_change_and_nothing_changes() {
    let gw = Gw::start(Opts::default()); // token from OPENCLAW_GATEWAY_TOKEN
    let before: Vec<_> = std::fs::read_dir(gw.state_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let (code, out, err) = gw.cli(&["token", "rotate"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("OPENCLAW_GATEWAY_TOKEN"), "{err}");
    assert!(err.contains("Nothing was changed"), "{err}");
    assert!(!err.contains(TOKEN) && !out.contains(TOKEN));
    let after: Vec<_> = std::fs::read_dir(gw.state_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after);
    assert!(!gw.audit().iter().any(|v| v["event"] == "token.rotated"));

    // `${VAR}` in the file: the variable is named.
    let cfg = json!({"gateway": {"auth": {"token": "${GW_SECRET}"}}}).to_string();
    let gw = Gw::start(Opts {
        no_token: true,
        config: Some(cfg.clone()),
        env: vec![("GW_SECRET".into(), TOKEN.into())],
        ..Default::default()
    });
    let port = gw.port.to_string();
    let env = [
        ("OPENCLAW_GATEWAY_PORT", port.as_str()),
        ("GW_SECRET", TOKEN),
    ];
    let (code, _, err) = run_bounded(client_command(&gw.home, &env, &["token", "rotate"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("GW_SECRET"), "{err}");
    let file = std::fs::read_to_string(gw.state_dir().join("openclaw.json")).unwrap();
    assert_eq!(file, cfg);
}

#[test]
fn a_gateway_started_with_token_flag_is_refused() {
    let gw = Gw::start(Opts {
        no_token: true,
        args: vec!["--token".into(), TOKEN.into()],
        ..Default::default()
    });
    let (code, out, err) = rotate(&gw, &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("Nothing was changed"), "{err}");
    assert!(!gw.state_dir().join("gateway.token").exists());
}

#[test]
fn with_no_gateway_running_the_token_file_is_rotated_for_the_next_start() {
    let home = common::temp_dir("rotate-offline");
    // A free port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let env = [("OPENCLAW_GATEWAY_PORT", port.as_str())];
    let (code, out, err) = run_bounded(client_command(&home, &env, &["token", "rotate"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("next start"), "{out}");
    let file = home.join(".openclaw/gateway.token");
    assert_eq!(mode(&file), 0o600);
    let t = std::fs::read_to_string(&file).unwrap();
    let t = t.trim();
    assert_eq!(t.len(), 48);
    assert!(!out.contains(t));
}
