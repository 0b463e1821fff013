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
