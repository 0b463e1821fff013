//! `openclaw doctor` end to end with the real binary: a healthy gateway, a dead one, a broken
//! tunnel (a fake ssh always; the real ssh when installed), a runtime token file readable by
//! others, and `gateway.tailscale.mode: "serve"` with no `tailscale` on PATH.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::sshd::{self, free_port};
use common::{client_command, patience, require, run_bounded, temp_dir, Gw, Opts, TOKEN};
use serde_json::{json, Value};

/// The check lines (`OK|WARN|FAIL  name: …`) of a text report.
fn check_lines(out: &str) -> Vec<&str> {
    out.lines().filter(|l| !l.starts_with(' ')).collect()
}

/// The line of check `name`.
fn line<'a>(out: &'a str, name: &str) -> &'a str {
    check_lines(out)
        .into_iter()
        .find(|l| {
            l.split_once("  ")
                .is_some_and(|(_, r)| r.trim_start().starts_with(&format!("{name}:")))
        })
        .unwrap_or_else(|| panic!("no `{name}` check in:\n{out}"))
}

/// The indented lines (fix, evidence) under check `name`.
fn under<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    let head = line(out, name);
    out.lines()
        .skip_while(|l| *l != head)
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .collect()
}

/// Exit code for a report whose only failures may be CDP ports some *other* program on this
/// machine exposes (a real finding, but not this gateway's): 0, or 1 with a note.
fn expected_code(out: &str) -> i32 {
    let fails: Vec<&str> = check_lines(out)
        .into_iter()
        .filter(|l| l.starts_with("FAIL"))
        .collect();
    assert!(
        fails.iter().all(|l| l.starts_with("FAIL  cdp:")),
        "unexpected FAIL:\n{out}"
    );
    if fails.is_empty() {
        0
    } else {
        eprintln!("note: another program on this machine exposes a CDP port: {fails:?}");
        1
    }
}

/// `openclaw doctor ARGS` as a client on `gw`'s machine without the token in the environment
/// (credentials from the runtime token file, as a local user would have them).
fn doctor_as_local_user(gw: &Gw, args: &[&str]) -> (i32, String, String) {
    let port = gw.port.to_string();
    let mut a = vec!["doctor"];
    a.extend_from_slice(args);
    run_bounded(client_command(
        &gw.home,
        &[("OPENCLAW_GATEWAY_PORT", port.as_str())],
        &a,
    ))
}

#[test]
fn healthy_gateway_is_all_ok_and_listens_on_loopback() {
    let gw = Gw::start(Opts::default());
    let (code, out, err) = gw.cli(&["doctor"]);
    assert_eq!(code, expected_code(&out), "stdout:\n{out}\nstderr:\n{err}");
    for l in check_lines(&out) {
        assert!(
            l.starts_with("OK    ") || l.starts_with("WARN  ") || l.starts_with("FAIL  cdp:"),
            "{l}\n{out}"
        );
    }
    let listening = line(&out, "listening");
    assert!(listening.starts_with("OK    listening:"), "{out}");
    assert!(
        listening.contains(&format!("port {} on 127.0.0.1", gw.port)),
        "{out}"
    );
    let gateway = line(&out, "gateway");
    assert!(gateway.starts_with("OK    gateway:"), "{out}");
    assert!(
        gateway.contains(&gw.url()) && gateway.contains("answers"),
        "{out}"
    );
    assert!(line(&out, "tunnels").contains("none configured"), "{out}");
    assert!(line(&out, "tailscale").contains("skipped"), "{out}");
    assert!(
        line(&out, "audit").contains("audit.jsonl writable"),
        "{out}"
    );

    // --json: the same checks, machine-readable
    let (code, out, _) = gw.cli(&["doctor", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "config",
            "listening",
            "gateway",
            "token file",
            "tunnels",
            "tailscale",
            "firewall",
            "tls",
            "audit",
            "cdp"
        ]
    );
    for c in v["checks"].as_array().unwrap() {
        assert!(
            ["ok", "warn", "fail"].contains(&c["status"].as_str().unwrap()),
            "{c}"
        );
        assert!(c["detail"].is_string(), "{c}");
        assert_eq!(c["fix"].is_null(), c["status"] == "ok", "{c}");
    }
    assert_eq!(v["ok"], code == 0, "{v:#}");
    assert_eq!(v["checks"][1]["status"], "ok");
}

#[test]
fn dead_gateway_fails_listening_and_gateway() {
    let mut gw = Gw::start(Opts::default());
    gw.signal(libc::SIGTERM);
    assert_eq!(gw.wait_exit(), Some(0));
    let (code, out, err) = gw.cli(&["doctor"]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    let listening = line(&out, "listening");
    assert!(
        listening.starts_with(&format!(
            "FAIL  listening: nothing listens on port {}",
            gw.port
        )),
        "{out}"
    );
    assert!(
        under(&out, "listening")[0].starts_with("      fix: start the gateway"),
        "{out}"
    );
    let gateway = line(&out, "gateway");
    assert!(
        gateway.starts_with("FAIL  gateway: connection refused"),
        "{out}"
    );
    assert!(
        under(&out, "gateway")[0].contains("openclaw gateway"),
        "{out}"
    );
    // the audit log stays where the gateway left it
    assert!(
        line(&out, "audit").contains("audit.jsonl writable"),
        "{out}"
    );

    let (code, out, _) = gw.cli(&["doctor", "--json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    let by_name = |n: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_name("listening")["status"], "fail");
    assert_eq!(by_name("gateway")["status"], "fail");
    assert!(by_name("gateway")["fix"]
        .as_str()
        .unwrap()
        .contains("openclaw gateway"));
}

/// A fake `ssh` that logs its argv to `$FAKE_SSH_LOG` and fails as OpenSSH does when nothing
/// listens on the port (with `-v`, OpenSSH's debug lines first).
fn fake_ssh(dir: &Path) -> PathBuf {
    let p = dir.join("ssh");
    std::fs::write(
        &p,
        r#"#!/bin/sh
echo "$*" >> "$FAKE_SSH_LOG"
port=22
prev=
for a in "$@"; do
  [ "$prev" = "-p" ] && port=$a
  prev=$a
done
case " $* " in
  *" -v "*)
    echo "OpenSSH_9.2p1 fake" >&2
    echo "debug1: Reading configuration data /etc/ssh/ssh_config" >&2
    echo "debug1: Connecting to 127.0.0.1 [127.0.0.1] port $port." >&2
    echo "debug1: connect to address 127.0.0.1 port $port: Connection refused" >&2
    ;;
esac
echo "ssh: connect to host 127.0.0.1 port $port: Connection refused" >&2
exit 255
"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A gateway running tunnel `t` to `nobody@127.0.0.1:<closed port>`; waits until the tunnel
/// has failed. Returns the gateway and the closed port.
fn gateway_with_broken_tunnel(env: Vec<(String, String)>) -> (Gw, u16) {
    let closed = free_port();
    let cfg = json!({"tunnels": [{
        "name": "t",
        "sshTarget": format!("nobody@127.0.0.1:{closed}"),
        "localPort": free_port(),
        "remotePort": 18789,
        "backoff": {"initialMs": 200, "maxMs": 2000},
    }]});
    let gw = Gw::start(Opts {
        config: Some(cfg.to_string()),
        env,
        ..Default::default()
    });
    let deadline = Instant::now() + patience();
    loop {
        let (_, out, _) = gw.cli(&["tunnel", "status", "--json"]);
        let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        let state = v["tunnels"][0]["state"].as_str().unwrap_or("").to_string();
        if state == "failed" || state == "backoff" {
            break;
        }
        assert!(Instant::now() < deadline, "tunnel never failed: {out}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (gw, closed)
}

#[test]
fn broken_tunnel_fails_with_the_ssh_error_and_ssh_v_lines() {
    let dir = temp_dir("doctor-ssh");
    let ssh = fake_ssh(&dir);
    let gw_log = dir.join("gateway-ssh.log");
    let doctor_log = dir.join("doctor-ssh.log");
    let (gw, closed) = gateway_with_broken_tunnel(vec![
        ("OPENCLAW_SSH".into(), ssh.display().to_string()),
        ("FAKE_SSH_LOG".into(), gw_log.display().to_string()),
    ]);
    let port = gw.port.to_string();
    let (code, out, err) = run_bounded(client_command(
        &gw.home,
        &[
            ("OPENCLAW_GATEWAY_TOKEN", TOKEN),
            ("OPENCLAW_GATEWAY_PORT", &port),
            ("OPENCLAW_DOCTOR_SSH", &ssh.display().to_string()),
            ("FAKE_SSH_LOG", &doctor_log.display().to_string()),
        ],
        &["doctor"],
    ));
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    let tunnels = line(&out, "tunnels");
    assert!(tunnels.starts_with("FAIL  tunnels: t "), "{out}");
    let refused = format!("connect to host 127.0.0.1 port {closed}: Connection refused");
    assert!(tunnels.contains(&refused), "{out}");
    let below = under(&out, "tunnels");
    assert!(
        below[0].starts_with("      fix: nothing accepts ssh"),
        "{out}"
    );
    assert!(below[0].contains("openclaw tunnel restart t"), "{out}");
    assert!(
        below.contains(
            &format!("      ssh -v t: debug1: Connecting to 127.0.0.1 [127.0.0.1] port {closed}.")
                .as_str()
        ),
        "{out}"
    );
    assert!(
        !below
            .iter()
            .any(|l| l.contains("Reading configuration data")),
        "only the relevant debug1 lines: {out}"
    );
    // doctor's own ssh: verbose, batch, bounded, no forward, the tunnel's port and target
    let argv = std::fs::read_to_string(&doctor_log).unwrap();
    let argv = argv.lines().next().unwrap();
    assert!(
        argv.starts_with("-v -o BatchMode=yes -o ConnectTimeout=5 "),
        "{argv}"
    );
    assert!(
        argv.ends_with(&format!("-p {closed} -- nobody@127.0.0.1 true")),
        "{argv}"
    );
    assert!(!argv.contains("-L") && !argv.contains("-N"), "{argv}");
    // everything else is fine: only the tunnel fails
    for l in check_lines(&out) {
        assert!(
            !l.starts_with("FAIL")
                || l.starts_with("FAIL  tunnels:")
                || l.starts_with("FAIL  cdp:"),
            "{out}"
        );
    }
}

#[test]
fn broken_tunnel_with_the_real_ssh() {
    let Some(()) = require("sshd", sshd::availability()) else {
        return;
    };
    let (gw, closed) = gateway_with_broken_tunnel(Vec::new());
    let (code, out, err) = gw.cli(&["doctor"]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    let tunnels = line(&out, "tunnels");
    assert!(tunnels.starts_with("FAIL  tunnels: t "), "{out}");
    assert!(tunnels.contains("Connection refused"), "{out}");
    let below = under(&out, "tunnels");
    assert!(
        below
            .iter()
            .any(|l| l.contains("ssh -v t: debug1: Connecting to 127.0.0.1")
                && l.contains(&format!("port {closed}"))),
        "{out}"
    );
    assert!(below.len() <= 1 + 8, "at most 8 ssh -v lines: {out}");
}

#[test]
fn token_file_readable_by_others_warns_with_chmod() {
    let gw = Gw::start(Opts {
        no_token: true,
        ..Default::default()
    });
    let token = gw.state_dir().join("gateway.token");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, out, err) = doctor_as_local_user(&gw, &[]);
    assert_eq!(code, expected_code(&out), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        line(&out, "gateway").starts_with("OK    gateway:"),
        "the runtime token still works: {out}"
    );
    let t = line(&out, "token file");
    assert!(t.starts_with("WARN  token file:"), "{out}");
    assert!(t.contains(&format!("{} is 0644", token.display())), "{out}");
    assert_eq!(
        under(&out, "token file")[0],
        format!("      fix: chmod 600 {}", token.display()),
        "{out}"
    );
    // fixed as told: OK
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_, out, _) = doctor_as_local_user(&gw, &[]);
    assert!(
        line(&out, "token file").starts_with("OK    token file:"),
        "{out}"
    );
}

#[test]
fn tailscale_configured_but_not_installed_fails_with_the_install_hint() {
    // The gateway refuses to start in serve mode without tailscale, so: config only, no
    // gateway, and a PATH without any `tailscale`.
    let home = temp_dir("doctor-ts");
    let dir = home.join(".openclaw");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("openclaw.json"),
        r#"{ gateway: { tailscale: { mode: "serve" } } }"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("openclaw.json"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    let path: Vec<&str> = path
        .split(':')
        .filter(|d| !Path::new(d).join("tailscale").exists())
        .collect();
    let port = free_port().to_string();
    let mut cmd = client_command(&home, &[("OPENCLAW_GATEWAY_PORT", &port)], &["doctor"]);
    cmd.env("PATH", path.join(":"));
    let (code, out, err) = run_bounded(cmd);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    let ts = line(&out, "tailscale");
    assert!(
        ts.starts_with(
            "FAIL  tailscale: gateway.tailscale.mode is serve but `tailscale` is not on PATH"
        ),
        "{out}"
    );
    let fix = under(&out, "tailscale")[0];
    assert!(
        fix.starts_with("      fix: install Tailscale") && fix.contains("tailscale.com/download"),
        "{out}"
    );
    assert!(line(&out, "config").starts_with("OK    config:"), "{out}");
    assert!(
        line(&out, "token file").starts_with("OK    token file:"),
        "{out}"
    );
}

#[test]
fn firewall_rules_for_the_port_are_listed_and_unreadable_tools_skipped() {
    let home = temp_dir("doctor-fw");
    let bin = temp_dir("doctor-fw-bin");
    let port = free_port();
    let tool = |name: &str, body: &str| {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    tool(
        "iptables",
        &format!(
            "echo '-P INPUT DROP'\necho '-A INPUT -p tcp -m tcp --dport {port} -j ACCEPT'\necho '-A INPUT -p tcp -m tcp --dport {port}0 -j ACCEPT'"
        ),
    );
    tool(
        "nft",
        "echo 'Operation not permitted (you must be root)' >&2; exit 1",
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let p = port.to_string();
    let mut cmd = client_command(&home, &[("OPENCLAW_GATEWAY_PORT", &p)], &["doctor"]);
    cmd.env("PATH", path);
    let (code, out, err) = run_bounded(cmd);
    assert_eq!(code, 1, "no gateway: stdout:\n{out}\nstderr:\n{err}");
    let fw = line(&out, "firewall");
    assert!(
        fw.starts_with(&format!("WARN  firewall: 1 rule(s) mention port {port}")),
        "{out}"
    );
    assert!(
        fw.contains("not readable: nft: Operation not permitted"),
        "{out}"
    );
    let below = under(&out, "firewall");
    assert!(below[0].starts_with("      fix: "), "{out}");
    assert_eq!(
        below[1],
        format!("      iptables: -A INPUT -p tcp -m tcp --dport {port} -j ACCEPT"),
        "{out}"
    );
    assert_eq!(below.len(), 2, "{out}");
}
