//! Table tests of doctor's pure parts: parsers and verdicts.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::host::*;
use super::net::*;
use super::report::*;
use super::tunnels::*;
use serde_json::json;
use serde_json::Value;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

// /proc/net/tcp as the kernel prints it (little-endian words).
const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4965 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0
   2: 0100007F:4965 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0000000000000000 20 4 30 10 -1
   3: 0A00000A:49F0 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4444 1 0000000000000000 100 0 0 10 0
garbage line
";

const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:4965 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5151 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:49F1 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5252 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:49F2 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5353 1 0000000000000000 100 0 0 10 0
";

#[cfg(target_endian = "little")]
#[test]
fn proc_net_listen_sockets() {
    let v4 = parse_proc_net_tcp(TCP);
    assert_eq!(
        v4,
        vec![
            Listen {
                addr: ip("127.0.0.1"),
                port: 18789
            },
            Listen {
                addr: ip("0.0.0.0"),
                port: 22
            },
            Listen {
                addr: ip("10.0.0.10"),
                port: 18928
            },
        ],
        "ESTABLISHED (01) and garbage lines are skipped"
    );
    let v6 = parse_proc_net_tcp(TCP6);
    assert_eq!(
        v6,
        vec![
            Listen {
                addr: ip("::1"),
                port: 18789
            },
            Listen {
                addr: ip("::"),
                port: 18929
            },
            // ::ffff:127.0.0.1 comes back as IPv4
            Listen {
                addr: ip("127.0.0.1"),
                port: 18930
            },
        ]
    );
    let all: Vec<Listen> = v4.into_iter().chain(v6).collect();
    assert_eq!(addrs_on(&all, 18789), vec![ip("127.0.0.1"), ip("::1")]);
    assert!(addrs_on(&all, 1).is_empty());
}

#[test]
fn listening_verdicts() {
    let c = listening(18789, &[], false);
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.contains("nothing listens on port 18789"));
    assert!(c.fix.unwrap().contains("openclaw gateway"));

    let c = listening(18789, &[ip("127.0.0.1"), ip("::1")], false);
    assert_eq!(c.status, Status::Ok);
    assert_eq!(c.detail, "port 18789 on 127.0.0.1, [::1] (loopback only)");

    let c = listening(18789, &[ip("127.0.0.1"), ip("0.0.0.0")], false);
    assert_eq!(c.status, Status::Warn);
    assert!(
        c.detail
            .contains("0.0.0.0 (all interfaces) is reachable beyond loopback without TLS"),
        "{}",
        c.detail
    );
    assert!(c.fix.unwrap().contains("gateway.tls.enabled"));
    let c = listening(1, &[ip("0.0.0.0")], false);
    assert_eq!(
        c.detail,
        "port 1 on 0.0.0.0 (all interfaces): reachable beyond loopback without TLS"
    );

    let c = listening(18789, &[ip("100.64.0.7")], true);
    assert_eq!(c.status, Status::Ok);
    assert!(c.detail.ends_with("(TLS on)"));
}

#[test]
fn cdp_verdicts() {
    let l = |a: &str, port| Listen { addr: ip(a), port };
    let c = cdp(18800, 18899, &[l("0.0.0.0", 18789), l("127.0.0.1", 18900)]);
    assert_eq!(
        (c.status, c.detail.as_str()),
        (Status::Ok, "nothing listens on 18800–18899")
    );
    let c = cdp(18800, 18899, &[l("127.0.0.1", 18800), l("::1", 18800)]);
    assert_eq!(c.status, Status::Ok);
    assert!(c.detail.contains("18800 on 127.0.0.1") && c.detail.contains("loopback only"));
    let c = cdp(18800, 18899, &[l("127.0.0.1", 18800), l("::", 18850)]);
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.detail.contains("18850 on [::] (all interfaces)"),
        "{}",
        c.detail
    );
    assert!(
        !c.detail.contains("18800 on"),
        "loopback ones are not blamed: {}",
        c.detail
    );
    assert!(c
        .fix
        .unwrap()
        .contains("--remote-debugging-address=127.0.0.1"));
}

#[test]
fn file_mode_verdicts() {
    let c = file_modes(&[
        ("runtime token", "/s/gateway.token".into(), None),
        ("config file", "/s/openclaw.json".into(), None),
    ]);
    assert_eq!(c.status, Status::Ok);
    let c = file_modes(&[
        ("runtime token", "/s/gateway.token".into(), Some(0o600)),
        ("config file", "/s/openclaw.json".into(), None),
    ]);
    assert_eq!(
        (c.status, c.detail.as_str()),
        (Status::Ok, "runtime token /s/gateway.token is 0600")
    );
    let c = file_modes(&[
        ("runtime token", "/s/gateway.token".into(), Some(0o644)),
        ("config file", "/s/openclaw.json".into(), Some(0o640)),
    ]);
    assert_eq!(c.status, Status::Warn);
    assert!(
        c.detail.contains("/s/gateway.token is 0644")
            && c.detail.contains("/s/openclaw.json is 0640")
    );
    assert_eq!(
        c.fix.as_deref(),
        Some("chmod 600 /s/gateway.token /s/openclaw.json")
    );
    // execute for others is still access
    let c = file_modes(&[("config file", "/c".into(), Some(0o601))]);
    assert_eq!(c.fix.as_deref(), Some("chmod 600 /c"));
}

#[test]
fn ssh_targets_and_argv() {
    assert_eq!(
        target_from_forward("127.0.0.1:18789 -> 127.0.0.1:18789 via me@gw.example").as_deref(),
        Some("me@gw.example")
    );
    assert_eq!(target_from_forward("nonsense"), None);
    let opts: BTreeMap<String, String> = [
        ("BatchMode", "yes"),
        ("ConnectTimeout", "10"),
        ("ExitOnForwardFailure", "yes"),
        ("StrictHostKeyChecking", "yes"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .into_iter()
    .collect();
    assert_eq!(
        ssh_probe_argv(
            "nobody@127.0.0.1",
            Some(2222),
            Some("/k/id"),
            Some("/k/kh"),
            &opts
        ),
        [
            "-v",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "UserKnownHostsFile=/k/kh",
            "-i",
            "/k/id",
            "-o",
            "IdentitiesOnly=yes",
            "-p",
            "2222",
            "--",
            "nobody@127.0.0.1",
            "true",
        ]
    );
    assert_eq!(
        ssh_probe_argv("alias", None, None, None, &BTreeMap::new()),
        [
            "-v",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            "--",
            "alias",
            "true"
        ]
    );
}

#[test]
fn ssh_verbose_lines_are_filtered_and_bounded() {
    let out = "OpenSSH_9.2p1 Debian-2, OpenSSL 3.0.11 19 Sep 2023
debug1: Reading configuration data /etc/ssh/ssh_config
debug1: Connecting to 127.0.0.1 [127.0.0.1] port 1.
debug1: connect to address 127.0.0.1 port 1: Connection refused
ssh: connect to host 127.0.0.1 port 1: Connection refused
";
    assert_eq!(
        relevant_ssh_lines(out, 8),
        [
            "debug1: Connecting to 127.0.0.1 [127.0.0.1] port 1.",
            "debug1: connect to address 127.0.0.1 port 1: Connection refused",
            "ssh: connect to host 127.0.0.1 port 1: Connection refused",
        ]
    );
    // many auth lines: the Connecting line and the last seven (how it ended)
    let mut long = String::from("debug1: Connecting to h [10.0.0.1] port 22.\n");
    for i in 0..20 {
        long.push_str(&format!("debug1: Offering public key: key{i}\n"));
        long.push_str("debug1: Authentications that can continue: publickey\n");
    }
    long.push_str("nobody@h: Permission denied (publickey).\n");
    let got = relevant_ssh_lines(&long, 8);
    assert_eq!(got.len(), 8);
    assert!(got[0].contains("Connecting to h"));
    assert_eq!(got[7], "nobody@h: Permission denied (publickey).");
    assert!(got[1..].iter().all(|l| !l.contains("Connecting to")));
    assert!(relevant_ssh_lines("debug1: nothing interesting\n", 8).is_empty());
}

#[test]
fn ssh_hints() {
    assert!(
        ssh_hint("exit 255: ssh: connect to host 127.0.0.1 port 1: Connection refused")
            .contains("start sshd")
    );
    assert!(ssh_hint("nobody@h: Permission denied (publickey).").contains("authorized_keys"));
    assert!(ssh_hint("Host key verification failed.").contains("knownHostsFile"));
    assert!(ssh_hint("ssh: Could not resolve hostname nope").contains("does not resolve"));
    assert!(
        ssh_hint("ssh: connect to host h port 22: Connection timed out")
            .contains("does not answer")
    );
    assert_eq!(ssh_hint("odd"), "fix the ssh error shown");
}

#[test]
fn tunnel_verdicts() {
    assert_eq!(tunnels(&[], &BTreeMap::new()).status, Status::Ok);
    let up = json!({"name": "a", "state": "up", "forward": "127.0.0.1:1 -> 127.0.0.1:2 via me@h", "restarts": 0});
    let c = tunnels(std::slice::from_ref(&up), &BTreeMap::new());
    assert_eq!(c.status, Status::Ok);
    assert!(c.detail.starts_with("a up (127.0.0.1:1"));
    let failed = json!({
        "name": "t", "state": "failed", "restarts": 1,
        "lastExit": "exit 255: ssh: connect to host 127.0.0.1 port 9: Connection refused",
        "configProblem": "exit 255: ssh: connect to host 127.0.0.1 port 9: Connection refused",
        "forward": "127.0.0.1:1 -> 127.0.0.1:18789 via nobody@127.0.0.1",
    });
    let mut v = BTreeMap::new();
    v.insert(
        "t".to_string(),
        vec!["debug1: Connecting to 127.0.0.1 [127.0.0.1] port 9.".to_string()],
    );
    let c = tunnels(&[up.clone(), failed.clone()], &v);
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.contains("t failed after 1 restart(s): exit 255: ssh: connect to host 127.0.0.1 port 9: Connection refused"), "{}", c.detail);
    assert!(c
        .fix
        .as_deref()
        .unwrap()
        .contains("openclaw tunnel restart t"));
    assert_eq!(
        c.lines,
        ["ssh -v t: debug1: Connecting to 127.0.0.1 [127.0.0.1] port 9."]
    );
    assert!(tunnel_broken(&failed) && !tunnel_broken(&up));
    let starting = json!({"name": "s", "state": "starting", "restarts": 0});
    let c = tunnels(std::slice::from_ref(&starting), &BTreeMap::new());
    assert_eq!(c.status, Status::Warn);
    assert!(!tunnel_broken(&starting));
    // only stderr known
    let backoff = json!({"name": "b", "state": "backoff", "restarts": 3, "stderr": ["x", "Permission denied (publickey)."]});
    let c = tunnels(&[backoff], &BTreeMap::new());
    assert!(
        c.detail.ends_with("Permission denied (publickey)."),
        "{}",
        c.detail
    );
    assert!(c.fix.unwrap().contains("authorized_keys"));
}

#[test]
fn tailscale_pieces() {
    assert_eq!(
        tailscale_mode(Some("serve"), None).as_deref(),
        Some("serve")
    );
    assert_eq!(
        tailscale_mode(Some("off"), Some("funnel")).as_deref(),
        Some("funnel")
    );
    assert_eq!(tailscale_mode(None, Some("off")), None);
    assert_eq!(
        backend_state(&json!({"BackendState": "Running"})).as_deref(),
        Some("Running")
    );
    let serve = json!({
        "TCP": {"443": {"HTTPS": true}, "2222": {"TCPForward": "127.0.0.1:22"}},
        "Web": {"gw.tail1234.ts.net:443": {"Handlers": {"/": {"Proxy": "http://127.0.0.1:46455"}}}},
        "AllowFunnel": {"gw.tail1234.ts.net:443": true}
    });
    assert_eq!(
        serve_routes(&serve),
        [
            "https://gw.tail1234.ts.net/ -> http://127.0.0.1:46455 (funnel)",
            "tcp :2222 -> 127.0.0.1:22"
        ]
    );
    assert!(serve_routes(&json!({})).is_empty());
    let c = tailscale(
        "serve",
        Ok("Running".into()),
        Ok(vec!["r".into()]),
        Some(&json!({"mode": "serve", "state": "up"})),
    );
    assert_eq!(c.status, Status::Ok);
    assert!(
        c.detail.contains("BackendState Running")
            && c.detail.contains("serve route(s): r")
            && c.detail.contains("claim up")
    );
    let c = tailscale("serve", Ok("NeedsLogin".into()), Ok(vec![]), None);
    assert_eq!(c.status, Status::Warn);
    assert!(c.detail.contains("NeedsLogin") && c.detail.contains("no serve route"));
    assert!(c.fix.unwrap().contains("tailscale up"));
    let c = tailscale(
        "funnel",
        Ok("Running".into()),
        Err("Access denied".into()),
        Some(&json!({"mode": "funnel", "state": "failed", "lastError": "Access denied"})),
    );
    assert_eq!(c.status, Status::Warn);
    assert!(c.detail.contains("last error: Access denied"));
}

#[test]
fn firewall_rules() {
    let ipt = "-P INPUT ACCEPT\n-A INPUT -p tcp -m tcp --dport 18789 -j ACCEPT\n-A INPUT -p tcp --dport 187890 -j DROP\n-A INPUT -p tcp --dport 118789 -j DROP\n-A INPUT -p tcp --sport 1878 -j DROP\n";
    assert_eq!(
        rules_mentioning(ipt, 18789),
        ["-A INPUT -p tcp -m tcp --dport 18789 -j ACCEPT"]
    );
    let nft = "table inet filter {\n\tchain input {\n\t\ttcp dport { 22, 18789 } accept\n\t}\n}\n";
    assert_eq!(
        rules_mentioning(nft, 18789),
        ["tcp dport { 22, 18789 } accept"]
    );
    assert_eq!(
        rules_mentioning("18789/tcp ALLOW Anywhere\n", 18789).len(),
        1
    );
    assert!(rules_mentioning("ip saddr 10.18.78.9\n", 18789).is_empty());

    let c = firewall(
        18789,
        &[
            ("iptables", Err("not installed".into())),
            ("ufw", Err("exit 1".into())),
        ],
    );
    assert_eq!(c.status, Status::Ok);
    assert!(c.detail.starts_with(
        "skipped: no firewall listing readable (iptables: not installed; ufw: exit 1)"
    ));
    let c = firewall(18789, &[("nft", Ok("table inet filter {}\n".into()))]);
    assert_eq!(
        (c.status, c.detail.as_str()),
        (Status::Ok, "no nft rules mention port 18789")
    );
    let c = firewall(
        18789,
        &[
            ("iptables", Ok(String::new())),
            ("nft", Err("Operation not permitted".into())),
            ("ufw", Err("not installed".into())),
        ],
    );
    assert_eq!(
        c.detail,
        "no iptables rules mention port 18789; not readable: nft: Operation not permitted"
    );
    let many: String = (0..7)
        .map(|i| format!("-A INPUT -s 10.0.0.{i} -p tcp --dport 18789 -j ACCEPT\n"))
        .collect();
    let c = firewall(18789, &[("iptables", Ok(many))]);
    assert_eq!(c.status, Status::Warn);
    assert!(c.detail.starts_with("7 rule(s) mention port 18789"));
    assert_eq!(c.lines.len(), 5);
    assert!(c.lines[0].starts_with("iptables: -A INPUT -s 10.0.0.0"));
}

#[test]
fn tls_expiry() {
    let now = 1_800_000_000_000;
    let c = tls(Some(now + 90 * DAY_MS), now, "/c.pem");
    assert_eq!(c.status, Status::Ok);
    assert!(c.detail.contains("(90 days left)"), "{}", c.detail);
    let c = tls(Some(now + 13 * DAY_MS + HOUR_MS), now, "/c.pem");
    assert_eq!(c.status, Status::Warn);
    assert!(c.detail.contains("13 day(s) left") && c.detail.contains("/c.pem"));
    let c = tls(Some(now + 14 * DAY_MS), now, "/c.pem");
    assert_eq!(c.status, Status::Ok);
    let c = tls(Some(now - 2 * DAY_MS), now, "/c.pem");
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.contains("expired on") && c.detail.contains("2 day(s) ago"));
    assert!(c.fix.unwrap().contains("renew /c.pem"));
    assert_eq!(tls(None, now, "/c.pem").status, Status::Warn);
}

#[test]
fn df_and_audit() {
    let gnu = "Filesystem     1024-blocks      Used Available Capacity Mounted on\n/dev/sda1        102687672  50327840  47100000      52% /\n";
    assert_eq!(parse_df_available(gnu), Some(47_100_000 * 1024));
    let posix = "Filesystem 512-blocks Used Available Capacity Mounted on\ntmpfs 2048 0 2048 0% /mnt/my disk\n";
    assert_eq!(parse_df_available(posix), Some(2048 * 512));
    assert_eq!(
        parse_df_available("df: /nope: No such file or directory\n"),
        None
    );
    assert_eq!(parse_df_available(""), None);

    assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    assert_eq!(human_bytes(100 << 20), "100 MiB");

    let c = audit("/s/logs/audit.jsonl", Ok(true), Ok(10 << 30), Some(0));
    assert_eq!(c.status, Status::Ok);
    assert_eq!(c.detail, "/s/logs/audit.jsonl writable, 10.0 GiB free");
    let c = audit("/a", Ok(true), Ok(500 << 20), None);
    assert_eq!(c.status, Status::Warn);
    let c = audit("/a", Ok(true), Ok(10 << 20), None);
    assert_eq!(c.status, Status::Fail);
    let c = audit(
        "/a",
        Err("Permission denied (os error 13)".into()),
        Ok(10 << 30),
        None,
    );
    assert_eq!(c.status, Status::Fail);
    assert!(c
        .detail
        .contains("cannot open /a for append: Permission denied"));
    let c = audit("/a", Ok(false), Err("df not found".into()), None);
    assert_eq!(c.status, Status::Ok);
    assert!(
        c.detail.contains("not created yet")
            && c.detail.contains("free space unknown (df not found)")
    );
    let c = audit("/a", Ok(true), Ok(10 << 30), Some(3));
    assert_eq!(c.status, Status::Warn);
    assert!(c.detail.contains("3 write error(s)"));
}

#[test]
fn gateway_verdicts() {
    let c = gateway_failed("connection refused on 127.0.0.1:18789 — is the gateway running? start it with: openclaw gateway", true);
    assert_eq!(c.status, Status::Fail);
    assert_eq!(c.detail, "connection refused on 127.0.0.1:18789");
    assert_eq!(
        c.fix.as_deref(),
        Some("is the gateway running? start it with: openclaw gateway")
    );
    let c = gateway_failed("refusing plain ws:// to 192.0.2.1 (not a private address): the token would cross the network unencrypted; use wss:// (gateway.tls on the gateway), or an SSH tunnel", false);
    assert!(
        c.detail.ends_with("would cross the network unencrypted"),
        "{}",
        c.detail
    );
    assert!(c.fix.unwrap().starts_with("use wss://"));
    assert!(gateway_failed("odd", false)
        .fix
        .unwrap()
        .contains("openclaw ping"));
    let c = gateway_failed("odd", true);
    assert_eq!((c.status, c.detail.as_str()), (Status::Fail, "odd"));
    let c = gateway_ok(
        "ws://127.0.0.1:1",
        "env",
        &json!({"version": "0.1.0", "pid": 7, "authMode": "token"}),
    );
    assert_eq!(c.status, Status::Ok);
    assert!(c
        .detail
        .contains("version 0.1.0, pid 7, auth token (credentials from env)"));
}

#[test]
fn report_shapes() {
    let checks = vec![
        Check::ok("listening", "port 1 on 127.0.0.1"),
        Check::warn("token file", "weak", "chmod 600 /t"),
        Check::skip("tls", "TLS is off"),
    ];
    assert_eq!(exit_code(&checks), 0);
    assert_eq!(
        render_text(&checks),
        "OK    listening: port 1 on 127.0.0.1\nWARN  token file: weak\n      fix: chmod 600 /t\nOK    tls: skipped: TLS is off\n"
    );
    let v = report_json(&checks);
    assert_eq!(v["ok"], true);
    assert_eq!(
        v["checks"][1],
        json!({"name": "token file", "status": "warn", "detail": "weak", "fix": "chmod 600 /t"})
    );
    assert_eq!(v["checks"][0]["fix"], Value::Null);

    let failing = vec![
        Check::fail("gateway", "down\nreally", "start it").with_lines(vec!["evidence".into()])
    ];
    assert_eq!(exit_code(&failing), 1);
    assert_eq!(
        render_text(&failing),
        "FAIL  gateway: down really\n      fix: start it\n      evidence\n"
    );
    let v = report_json(&failing);
    assert_eq!(v["ok"], false);
    assert_eq!(v["checks"][0]["status"], "fail");
    assert_eq!(v["checks"][0]["lines"], json!(["evidence"]));
}
