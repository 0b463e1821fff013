//! `openclaw tunnel status|restart`. (`tunnel run` lives in `gateway_cmd`, next to the
//! gateway it shares the runtime with.) Status comes from the gateway's
//! `gateway.tunnels.status`; when no gateway answers, from the status file that
//! `openclaw tunnel run` keeps in the state dir.

use serde_json::{json, Value};

use super::{block_on, call_once, fail, human_duration, num_or_dash, print_json, target};
use crate::cli::Global;
use crate::client::ClientError;
use crate::target::TargetArgs;

/// `openclaw tunnel status`.
pub fn status(global: &Global, args: &TargetArgs, as_json: bool) -> i32 {
    let t = match target("tunnel status", args, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        let (rows, source) = match call_once(
            &t,
            args,
            &["operator.read"],
            "gateway.tunnels.status",
            json!({}),
        )
        .await
        {
            Ok((_, v)) => (v["tunnels"].clone(), format!("gateway {}", t.url)),
            // No gateway answers on this machine: `openclaw tunnel run` keeps a state file.
            Err(e @ ClientError::Unreachable(_)) if t.local => {
                let path = t.state_dir.join("tunnels").join("status.json");
                match std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|s| serde_json::from_str::<Value>(&s).ok())
                {
                    Some(doc) => (
                        doc["tunnels"].clone(),
                        format!(
                            "{} (openclaw tunnel run, pid {})",
                            path.display(),
                            doc["pid"]
                        ),
                    ),
                    None => return fail("tunnel status", &e),
                }
            }
            Err(e) => return fail("tunnel status", &e),
        };
        if as_json {
            print_json(&json!({"source": source, "tunnels": rows}));
            return 0;
        }
        print_rows(&rows, &source);
        0
    })
}

/// Prints the tunnel table and per-tunnel details.
pub fn print_rows(rows: &Value, source: &str) {
    let rows = rows.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        crate::out!("no tunnels configured (add a `tunnels: [...]` section to the config)");
        return;
    }
    crate::out!(
        "{:<14} {:<9} {:>8} {:>9} {:>9} {:>11}  FORWARD",
        "TUNNEL",
        "STATE",
        "PID",
        "UPTIME",
        "RESTARTS",
        "NEXT RETRY"
    );
    for r in &rows {
        let opt_ms = |v: &Value| v.as_u64().map(human_duration).unwrap_or_else(|| "-".into());
        crate::out!(
            "{:<14} {:<9} {:>8} {:>9} {:>9} {:>11}  {}",
            r["name"].as_str().unwrap_or("?"),
            r["state"].as_str().unwrap_or("?"),
            num_or_dash(&r["pid"]),
            opt_ms(&r["uptimeMs"]),
            r["restarts"],
            opt_ms(&r["nextRetryInMs"]),
            r["forward"].as_str().unwrap_or("")
        );
        if r["fromSshConfig"] == true {
            crate::out!("  from ~/.ssh/config: the Host block's target and LocalForward");
            for o in r["overrides"].as_array().into_iter().flatten() {
                crate::out!("  we override {}", o.as_str().unwrap_or(""));
            }
        }
        if let Some(p) = r["configProblem"].as_str() {
            crate::out!("  configuration problem: {p}");
        } else if let Some(e) = r["lastExit"].as_str() {
            crate::out!("  last exit: {e}");
        }
        for l in r["stderr"]
            .as_array()
            .into_iter()
            .flatten()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            crate::out!("  ssh: {}", l.as_str().unwrap_or(""));
        }
    }
    crate::out!("(from {source})");
}

/// `openclaw tunnel restart NAME`.
pub fn restart(global: &Global, args: &TargetArgs, name: &str) -> i32 {
    let t = match target("tunnel restart", args, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        match call_once(
            &t,
            args,
            &["operator.admin"],
            "gateway.tunnels.restart",
            json!({"name": name}),
        )
        .await
        {
            Ok(_) => {
                crate::out!("tunnel {name}: restarting");
                0
            }
            Err(e) => fail("tunnel restart", &e),
        }
    })
}

/// `openclaw tunnel import [--ssh-config PATH]`: a `tunnels:` entry (`{name, sshHost}`) per
/// Host alias whose resolved settings (`ssh -G`) have a `LocalForward`.
pub fn import(ssh_config: Option<std::path::PathBuf>) -> i32 {
    use openclaw_actors::config::ssh_config::{host_aliases, parse_ssh_g};
    let path = ssh_config.unwrap_or_else(|| {
        let home = std::env::var("HOME").unwrap_or_default();
        std::path::Path::new(&home).join(".ssh/config")
    });
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "openclaw tunnel import: cannot read {}: {e} (pass --ssh-config PATH)",
                path.display()
            );
            return 2;
        }
    };
    let ssh = openclaw_actors::tunnel::ssh_program();
    let mut entries = Vec::new();
    for host in host_aliases(&text) {
        let out = std::process::Command::new(&ssh)
            .arg("-F")
            .arg(&path)
            .args(["-G", "--", &host])
            .stdin(std::process::Stdio::null())
            .output();
        let Ok(out) = out else { continue };
        let g = parse_ssh_g(&String::from_utf8_lossy(&out.stdout));
        if let Some((local, rhost, rport)) = g.local_forwards.first() {
            let name: String = host
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            entries.push(serde_json::json!({"name": name, "sshHost": host}));
            eprintln!(
                "{host}: 127.0.0.1:{local} -> {rhost}:{rport} via {}",
                g.hostname
            );
        }
    }
    if entries.is_empty() {
        eprintln!(
            "openclaw tunnel import: no Host block in {} has a LocalForward",
            path.display()
        );
        return 1;
    }
    crate::out!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({"tunnels": entries})).unwrap_or_default()
    );
    0
}
