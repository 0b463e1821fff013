//! Doctor's pure tunnel check: which status rows are broken, the `ssh -v` command that
//! retraces one, the lines of its output that matter, and a fix for each ssh error.

use std::collections::BTreeMap;

use serde_json::Value;

use super::report::{Check, Status};

/// Whether a tunnel row is broken (`failed` or `backoff`): then doctor runs `ssh -v`.
pub fn tunnel_broken(row: &Value) -> bool {
    matches!(row["state"].as_str(), Some("failed" | "backoff"))
}

/// The ssh target a status row names (`… via user@host`), for rows with no local config.
pub fn target_from_forward(forward: &str) -> Option<String> {
    forward
        .rsplit_once(" via ")
        .map(|(_, t)| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The `ssh -v` arguments (after the program) that retrace a tunnel's connection without a
/// forward: our `BatchMode=yes` and `ConnectTimeout=5` come first (ssh keeps the first value
/// of an option), then the tunnel's own options, key, known_hosts and port.
pub fn ssh_probe_argv(
    target: &str,
    port: Option<u16>,
    identity: Option<&str>,
    known_hosts: Option<&str>,
    options: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut a: Vec<String> = ["-v", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]
        .map(String::from)
        .to_vec();
    for (k, v) in options {
        if !matches!(
            k.as_str(),
            "BatchMode" | "ConnectTimeout" | "ExitOnForwardFailure"
        ) {
            a.extend(["-o".into(), format!("{k}={v}")]);
        }
    }
    if let Some(k) = known_hosts {
        a.extend(["-o".into(), format!("UserKnownHostsFile={k}")]);
    }
    if let Some(i) = identity {
        a.extend([
            "-i".into(),
            i.to_string(),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
        ]);
    }
    if let Some(p) = port {
        a.extend(["-p".into(), p.to_string()]);
    }
    a.extend(["--".into(), target.to_string(), "true".into()]);
    a
}

/// What in `ssh -v` output says where a connection failed.
const SSH_MARKERS: &[&str] = &[
    "Connecting to",
    "connect to address",
    "Connection refused",
    "Connection timed out",
    "No route to host",
    "Network is unreachable",
    "Could not resolve hostname",
    "Host key verification failed",
    "REMOTE HOST IDENTIFICATION HAS CHANGED",
    "No matching host key",
    "Server host key",
    "Authentications that can continue",
    "Offering public key",
    "Server accepts key",
    "no such identity",
    "Permission denied",
    "Authenticated to",
    "Connection closed",
    "Connection reset",
    "kex_exchange_identification",
    "Bad owner or permissions",
];

/// At most `max` lines of `ssh -v` stderr that matter (connect, host key, authentication,
/// the final error), in their order. When more match, the first `Connecting to` line and
/// the last ones are kept: where it went, and how it ended.
pub fn relevant_ssh_lines(stderr: &str, max: usize) -> Vec<String> {
    let mut hits: Vec<String> = Vec::new();
    for l in stderr.lines().map(str::trim_end) {
        if !l.is_empty()
            && SSH_MARKERS.iter().any(|m| l.contains(m))
            && hits.last().map(String::as_str) != Some(l)
        {
            hits.push(l.to_string());
        }
    }
    if hits.len() <= max || max == 0 {
        hits.truncate(max);
        return hits;
    }
    let first = hits.iter().position(|l| l.contains("Connecting to"));
    let mut out = Vec::new();
    let mut tail_room = max;
    if let Some(i) = first {
        out.push(hits[i].clone());
        tail_room -= 1;
    }
    // the tail, without repeating the `Connecting to` line
    let tail_start = (hits.len() - tail_room).max(first.map_or(0, |i| i + 1));
    out.extend(hits[tail_start..].iter().cloned());
    out
}

/// A one-line fix for an ssh error text.
pub fn ssh_hint(err: &str) -> &'static str {
    let e = err.to_ascii_lowercase();
    if e.contains("connection refused") {
        "nothing accepts ssh at that host and port: start sshd there, or fix the port in sshTarget (user@host:port)"
    } else if e.contains("host key verification failed") || e.contains("identification has changed")
    {
        "the host key is unknown or changed: verify it, then add it to knownHostsFile (ssh-keyscan -p PORT HOST)"
    } else if e.contains("permission denied") {
        "the key was refused: check identityFile and the host's ~/.ssh/authorized_keys (ssh-copy-id)"
    } else if e.contains("could not resolve") {
        "the host name does not resolve: fix sshTarget"
    } else if e.contains("timed out") || e.contains("no route") || e.contains("unreachable") {
        "the host does not answer: check the network and firewalls on the way to it"
    } else if e.contains("forwarding failed") || e.contains("address already in use") {
        "the forwarded port is taken: free it or choose another localPort/remotePort"
    } else {
        "fix the ssh error shown"
    }
}

/// Check 4: every tunnel row; `ssh_v` holds the relevant `ssh -v` lines of each broken
/// tunnel (by name) when they could be taken.
pub fn tunnels(rows: &[Value], ssh_v: &BTreeMap<String, Vec<String>>) -> Check {
    if rows.is_empty() {
        return Check::ok("tunnels", "none configured");
    }
    let mut worst = Status::Ok;
    let mut parts = Vec::new();
    let mut fixes = Vec::new();
    let mut lines = Vec::new();
    for r in rows {
        let name = r["name"].as_str().unwrap_or("?");
        let state = r["state"].as_str().unwrap_or("?");
        let restarts = r["restarts"].as_u64().unwrap_or(0);
        let err = r["configProblem"]
            .as_str()
            .or(r["lastExit"].as_str())
            .map(str::to_string)
            .or_else(|| {
                r["stderr"]
                    .as_array()
                    .and_then(|a| a.last())
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
        let (status, text) = match state {
            "up" => (
                Status::Ok,
                format!("{name} up ({})", r["forward"].as_str().unwrap_or("")),
            ),
            "failed" | "backoff" => {
                let e = err.clone().unwrap_or_else(|| "no error recorded".into());
                fixes.push(format!(
                    "{}; then: openclaw tunnel restart {name}",
                    ssh_hint(&e)
                ));
                (
                    Status::Fail,
                    format!("{name} {state} after {restarts} restart(s): {e}"),
                )
            }
            other => {
                fixes.push(format!(
                    "wait a few seconds and run openclaw doctor again, or: openclaw tunnel restart {name}"
                ));
                let e = err
                    .map(|e| format!(" (last exit: {e})"))
                    .unwrap_or_default();
                (Status::Warn, format!("{name} {other}{e}"))
            }
        };
        worst = worst.max(status);
        parts.push(text);
        for l in ssh_v.get(name).into_iter().flatten() {
            lines.push(format!("ssh -v {name}: {l}"));
        }
    }
    let detail = parts.join("; ");
    let fix = fixes.join(" | ");
    match worst {
        Status::Ok => Check::ok("tunnels", detail),
        Status::Warn => Check::warn("tunnels", detail, fix),
        Status::Fail => Check::fail("tunnels", detail, fix),
    }
    .with_lines(lines)
}
