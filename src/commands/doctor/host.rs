//! Doctor's pure checks of this host's files and services: file modes (token, config),
//! Tailscale, TLS expiry, the audit log's disk space (`df -P`), and the gateway's answer.

use serde_json::Value;

use super::report::{Check, Status};

/// Check 3: `(what, path, mode)` of the runtime token file and the config file (`None` when
/// the file does not exist); warns when group or other have any access.
pub fn file_modes(files: &[(&str, String, Option<u32>)]) -> Check {
    let present: Vec<&(&str, String, Option<u32>)> =
        files.iter().filter(|(_, _, m)| m.is_some()).collect();
    if present.is_empty() {
        return Check::ok(
            "token file",
            "no runtime token file and no config file here",
        );
    }
    let show = |(what, path, m): &&(&str, String, Option<u32>)| {
        format!("{what} {path} is {:04o}", m.unwrap_or(0) & 0o7777)
    };
    let weak: Vec<&&(&str, String, Option<u32>)> = present
        .iter()
        .filter(|(_, _, m)| m.is_some_and(|m| m & 0o077 != 0))
        .collect();
    if weak.is_empty() {
        let list: Vec<String> = present.iter().map(show).collect();
        return Check::ok("token file", list.join("; "));
    }
    let list: Vec<String> = weak.iter().map(|w| show(w)).collect();
    let paths: Vec<&str> = weak.iter().map(|(_, p, _)| p.as_str()).collect();
    Check::warn(
        "token file",
        format!("{} (group/other can read it)", list.join("; ")),
        format!("chmod 600 {}", paths.join(" ")),
    )
}

// === tailscale ===

/// Whether the Tailscale check applies: the config's or the running gateway's mode.
pub fn tailscale_mode(config_mode: Option<&str>, status_mode: Option<&str>) -> Option<String> {
    [status_mode, config_mode]
        .into_iter()
        .flatten()
        .find(|m| matches!(*m, "serve" | "funnel"))
        .map(str::to_string)
}

/// `BackendState` of `tailscale status --json`.
pub fn backend_state(status: &Value) -> Option<String> {
    status["BackendState"].as_str().map(str::to_string)
}

/// The routes of `tailscale serve status --json`: `https://host/path -> target` for each web
/// handler, `tcp :port -> target` for each TCP forward.
pub fn serve_routes(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (host, cfg) in v["Web"].as_object().into_iter().flatten() {
        let funnel = v["AllowFunnel"][host.as_str()] == true;
        let shown = host.strip_suffix(":443").unwrap_or(host);
        for (path, h) in cfg["Handlers"].as_object().into_iter().flatten() {
            let to = h["Proxy"]
                .as_str()
                .or(h["Path"].as_str())
                .or(h["Text"].as_str().map(|_| "(text)"))
                .unwrap_or("?");
            let f = if funnel { " (funnel)" } else { "" };
            out.push(format!("https://{shown}{path} -> {to}{f}"));
        }
    }
    for (port, cfg) in v["TCP"].as_object().into_iter().flatten() {
        if let Some(to) = cfg["TCPForward"].as_str() {
            out.push(format!("tcp :{port} -> {to}"));
        }
    }
    out
}

/// How to install Tailscale.
pub const TAILSCALE_INSTALL: &str =
    "install Tailscale (https://tailscale.com/download; Linux: curl -fsSL https://tailscale.com/install.sh | sh), then: tailscale up";

/// Check 5 once `tailscale` was found: its backend state, the serve routes, and what the
/// gateway says about its claim (`status.tailscale`, when reachable).
pub fn tailscale(
    mode: &str,
    backend: Result<String, String>,
    routes: Result<Vec<String>, String>,
    gateway: Option<&Value>,
) -> Check {
    let mut worst = Status::Ok;
    let mut fix = None;
    let mut parts = vec![format!("mode {mode}")];
    match &backend {
        Ok(s) if s == "Running" => parts.push("BackendState Running".into()),
        Ok(s) => {
            worst = Status::Warn;
            parts.push(format!("BackendState {s} (not Running)"));
            fix = Some(
                "bring Tailscale up: sudo tailscale up (then check: tailscale status)".to_string(),
            );
        }
        Err(e) => {
            worst = Status::Warn;
            parts.push(format!("tailscale status failed: {e}"));
            fix = Some(
                "start tailscaled (sudo systemctl start tailscaled), then: tailscale up"
                    .to_string(),
            );
        }
    }
    match &routes {
        Ok(r) if r.is_empty() => parts.push("no serve route".into()),
        Ok(r) => parts.push(format!("serve route(s): {}", r.join(", "))),
        Err(e) => parts.push(format!("serve status unreadable: {e}")),
    }
    if let Some(g) = gateway.filter(|g| g["mode"].as_str().is_some_and(|m| m != "off")) {
        let state = g["state"].as_str().unwrap_or("?");
        let mut s = format!("gateway claim {state}");
        if let Some(e) = g["lastError"].as_str() {
            s.push_str(&format!(" (last error: {e})"));
        }
        parts.push(s);
        if state != "up" && worst == Status::Ok {
            worst = Status::Warn;
            fix = Some("see the claim's last error above and the gateway log (openclaw logs --filter tailscale)".into());
        }
    }
    let detail = parts.join(" · ");
    match worst {
        Status::Ok => Check::ok("tailscale", detail),
        _ => Check::warn("tailscale", detail, fix.unwrap_or_default()),
    }
}

// === tls ===

/// Check 7: expiry of the served certificate (`not_after_ms`, epoch ms) at `now_ms`.
pub fn tls(not_after_ms: Option<i64>, now_ms: i64, cert_path: &str) -> Check {
    const DAY_MS: i64 = 86_400_000;
    let Some(end) = not_after_ms else {
        return Check::warn(
            "tls",
            format!("TLS on, but the expiry of {cert_path} is unknown"),
            format!("check the certificate: openssl x509 -noout -enddate -in {cert_path}"),
        );
    };
    let date = openclaw_actors::tls::date(end.div_euclid(1000));
    let renew = format!("renew {cert_path} (with gateway.tls.autoGenerate, delete the pair and restart); the gateway reloads a changed certificate by itself");
    if end <= now_ms {
        let ago = (now_ms - end) / DAY_MS;
        return Check::fail(
            "tls",
            format!("certificate {cert_path} expired on {date} ({ago} day(s) ago)"),
            renew,
        );
    }
    let left = (end - now_ms) / DAY_MS;
    if left < 14 {
        Check::warn(
            "tls",
            format!("certificate {cert_path} expires on {date}: {left} day(s) left"),
            renew,
        )
    } else {
        Check::ok(
            "tls",
            format!("certificate valid until {date} ({left} days left)"),
        )
    }
}

// === audit ===

/// Bytes available to unprivileged users from `df -P` output (the `N-blocks` header gives the
/// unit), for the last data line.
pub fn parse_df_available(out: &str) -> Option<u64> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next()?;
    let unit: u64 = header
        .split_whitespace()
        .find_map(|w| w.strip_suffix("-blocks"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1024);
    let data = lines.next_back()?;
    let f: Vec<&str> = data.split_whitespace().collect();
    // Filesystem, blocks, used, available, capacity, mount point (may hold spaces)
    let avail: u64 = f.get(3)?.parse().ok()?;
    Some(avail.saturating_mul(unit))
}

/// `12.3 GiB`, `512 MiB`, `900 KiB`.
pub fn human_bytes(b: u64) -> String {
    const K: f64 = 1024.0;
    let f = b as f64;
    if f >= K * K * K {
        format!("{:.1} GiB", f / (K * K * K))
    } else if f >= K * K {
        format!("{:.0} MiB", f / (K * K))
    } else {
        format!("{:.0} KiB", f / K)
    }
}

/// Warn below this much free space on the audit log's filesystem.
pub const AUDIT_WARN_FREE: u64 = 1 << 30;
/// Fail below this much.
pub const AUDIT_FAIL_FREE: u64 = 64 << 20;

/// Check 8: the audit log opens for append (`Ok(false)`: not created yet), the free space on
/// its filesystem, and the gateway's write-error counter (when reachable).
pub fn audit(
    path: &str,
    writable: Result<bool, String>,
    free: Result<u64, String>,
    write_errors: Option<u64>,
) -> Check {
    if let Err(e) = &writable {
        return Check::fail(
            "audit",
            format!("cannot open {path} for append: {e}"),
            format!("make {path} and its directory writable by the gateway's user (chown it; chmod 600)"),
        );
    }
    let mut detail = match writable {
        Ok(true) => format!("{path} writable"),
        _ => format!("{path} not created yet (the gateway creates it)"),
    };
    match &free {
        Ok(b) => detail.push_str(&format!(", {} free", human_bytes(*b))),
        Err(e) => detail.push_str(&format!(", free space unknown ({e})")),
    }
    if let Some(n) = write_errors.filter(|n| *n > 0) {
        detail.push_str(&format!(", {n} write error(s) since start"));
    }
    let free_up = "free space on that filesystem (or move the state dir: OPENCLAW_STATE_DIR)";
    match free {
        Ok(b) if b < AUDIT_FAIL_FREE => Check::fail("audit", detail, free_up),
        Ok(b) if b < AUDIT_WARN_FREE => Check::warn("audit", detail, free_up),
        _ if write_errors.is_some_and(|n| n > 0) => Check::warn(
            "audit",
            detail,
            "see the gateway's log for the write errors (disk full or permissions)",
        ),
        _ => Check::ok("audit", detail),
    }
}

// === gateway ===

/// Check 2, failing: the client's one-line error is `what — fix` (or `what; use …`); `local`
/// says whether the target is on this machine (for the default fix).
pub fn gateway_failed(message: &str, local: bool) -> Check {
    if let Some((what, fix)) = message.split_once(" — ") {
        return Check::fail("gateway", what, fix);
    }
    if let Some((what, fix)) = message.split_once("; use ") {
        return Check::fail("gateway", what, format!("use {fix}"));
    }
    let fix = match local {
        true => "is the gateway running? start it with: openclaw gateway",
        false => {
            "check the URL, and that the gateway (or its tunnel) is up: openclaw ping --gateway URL"
        }
    };
    Check::fail("gateway", message, fix)
}

/// Check 2, answering: what `status` said.
pub fn gateway_ok(url: &str, creds: &str, st: &Value) -> Check {
    Check::ok(
        "gateway",
        format!(
            "{url} answers: version {}, pid {}, auth {} (credentials from {creds})",
            st["version"].as_str().unwrap_or("?"),
            st["pid"],
            st["authMode"].as_str().unwrap_or("?"),
        ),
    )
}
