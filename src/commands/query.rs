//! `status`, `health`, `gateway call`, `gateway connections`.

use serde_json::{json, Value};

use super::{block_on, call_once, connect, fail, human_duration, num_or_dash, print_json, target};
use crate::cli::Global;
use crate::target::TargetArgs;

/// `openclaw status`.
pub fn status(global: &Global, args: &TargetArgs, as_json: bool) -> i32 {
    let t = match target("status", args, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        let mut c = match connect(&t, args, &["operator.read"]).await {
            Ok(c) => c,
            Err(e) => {
                if as_json {
                    print_json(
                        &json!({"url": t.url, "source": t.source, "reachable": false, "error": e.message()}),
                    );
                }
                return fail("status", &e);
            }
        };
        let st = match c.call("status", json!({})).await {
            Ok(v) => v,
            Err(e) => return fail("status", &e),
        };
        let hs = c.handshake.as_secs_f64() * 1000.0;
        c.close().await;
        if as_json {
            print_json(
                &json!({"url": t.url, "source": t.source, "reachable": true, "handshakeMs": hs, "status": st}),
            );
        } else {
            print_status(&t.url, &t.source, hs, &st, &t.creds_source);
        }
        0
    })
}

fn print_status(url: &str, source: &str, hs_ms: f64, st: &Value, creds: &str) {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let list = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let port = n(&st["port"]);
    crate::out!("Gateway    {url} ({source}) · reachable · handshake {hs_ms:.2} ms");
    crate::out!(
        "Version    {} · uptime {} · pid {}",
        st["version"].as_str().unwrap_or("?"),
        human_duration(n(&st["uptimeMs"])),
        n(&st["pid"])
    );
    crate::out!("Listeners  {}", list(&st["listeners"]));
    crate::out!(
        "Auth       {} (this client: credentials from {creds})",
        st["authMode"].as_str().unwrap_or("?")
    );
    crate::out!(
        "Clients    {} connected · {} since start · logins ok {} / failed {} · sessions crashed {}",
        n(&st["connections"]["active"]),
        n(&st["connections"]["total"]),
        n(&st["auth"]["ok"]),
        n(&st["auth"]["failed"]),
        n(&st["sessionsCrashed"])
    );
    super::nodes::print_status(&st["nodes"]);
    let ts = &st["tailscale"];
    if let Some(mode) = ts["mode"].as_str().filter(|m| *m != "off") {
        let err = ts["lastError"]
            .as_str()
            .map(|e| format!(" · last error: {e}"))
            .unwrap_or_default();
        crate::out!(
            "Tailscale  {mode} {} · {} · claim pid {} · restarts {} · managed port {}{err}",
            ts["url"].as_str().unwrap_or("(no tailnet name)"),
            ts["state"].as_str().unwrap_or("?"),
            num_or_dash(&ts["claimPid"]),
            n(&ts["restarts"]),
            n(&ts["managedPort"])
        );
    }
    crate::out!(
        "Audit      {} events written · {}",
        n(&st["audit"]["written"]),
        st["audit"]["file"].as_str().unwrap_or("")
    );
    for t in st["tunnels"].as_array().into_iter().flatten() {
        crate::out!(
            "Tunnel     {} {} · pid {} · restarts {} · {}",
            t["name"].as_str().unwrap_or("?"),
            t["state"].as_str().unwrap_or("?"),
            num_or_dash(&t["pid"]),
            t["restarts"],
            t["forward"].as_str().unwrap_or("")
        );
    }
    if port > 0 {
        let p = super::admin::derived_ports(port as u16);
        crate::out!(
            "Ports      base {} · browser control {} · canvas {} · CDP {}–{}",
            p.base,
            p.browser_control,
            p.canvas,
            p.cdp_first,
            p.cdp_last
        );
    }
}

/// `openclaw health`.
pub fn health(global: &Global, args: &TargetArgs, as_json: bool) -> i32 {
    let t = match target("health", args, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        let started = std::time::Instant::now();
        match call_once(&t, args, &["operator.read"], "health", json!({}))
            .await
            .map(|(_, v)| v)
        {
            Ok(v) if as_json => {
                print_json(&v);
                0
            }
            Ok(v) => {
                let g = &v["gateway"];
                crate::out!(
                    "Gateway {}: {} ({:.1} ms) · version {} · uptime {} · {} connection(s)",
                    t.url,
                    if v["ok"] == true { "ok" } else { "NOT OK" },
                    started.elapsed().as_secs_f64() * 1000.0,
                    g["version"].as_str().unwrap_or("?"),
                    human_duration(g["uptimeMs"].as_u64().unwrap_or(0)),
                    g["connections"].as_u64().unwrap_or(0)
                );
                if v["ok"] == true {
                    0
                } else {
                    1
                }
            }
            Err(e) => fail("health", &e),
        }
    })
}

/// `openclaw gateway call METHOD [--params JSON]`.
pub fn call(
    global: &Global,
    args: &TargetArgs,
    method: &str,
    params: Option<&str>,
    as_json: bool,
) -> i32 {
    let params: Value = match params {
        None => json!({}),
        Some(p) => match serde_json::from_str(p) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("openclaw gateway call: --params is not valid JSON: {e} (example: --params '{{\"limit\": 5}}')");
                return 2;
            }
        },
    };
    let t = match target("gateway call", args, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        match call_once(&t, args, &["operator.admin"], method, params)
            .await
            .map(|(_, v)| v)
        {
            Ok(v) if as_json => {
                print_json(&v);
                0
            }
            Ok(v) => {
                crate::out!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                0
            }
            Err(e) => fail("gateway call", &e),
        }
    })
}

/// `openclaw gateway connections` (alias `list-connections`).
pub fn connections(global: &Global, args: &TargetArgs, as_json: bool) -> i32 {
    let t = match target("gateway connections", args, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        let (hello, v) = match call_once(
            &t,
            args,
            &["operator.admin"],
            "gateway.connections.list",
            json!({}),
        )
        .await
        {
            Ok(x) => x,
            Err(e) => return fail("gateway connections", &e),
        };
        let own = hello["server"]["connId"].as_str().unwrap_or("").to_string();
        if as_json {
            print_json(&v);
            return 0;
        }
        print_table(&v, &own);
        0
    })
}

fn print_table(v: &Value, own: &str) {
    let now = openclaw_actors::shared::now_ms();
    crate::out!(
        "{:<10} {:<24} {:<22} {:<9} {:<8} {:>8} {:>15}",
        "CONN",
        "PEER",
        "CLIENT",
        "ROLE",
        "AUTH",
        "SINCE",
        "FRAMES IN/OUT"
    );
    for r in v["connections"].as_array().into_iter().flatten() {
        let id = r["connId"].as_str().unwrap_or("");
        let mark = if id == own { "*" } else { "" };
        let client = match r["client"]["id"].as_str() {
            Some(cid) => format!("{cid}/{}", r["client"]["mode"].as_str().unwrap_or("?")),
            None => "(handshaking)".into(),
        };
        let since = human_duration(
            now.saturating_sub(r["connectedAt"].as_i64().unwrap_or(now))
                .max(0) as u64,
        );
        crate::out!(
            "{:<10} {:<24} {:<22} {:<9} {:<8} {:>8} {:>15}",
            format!("{}{mark}", &id[..id.len().min(8)]),
            r["peer"].as_str().unwrap_or(""),
            client,
            r["role"].as_str().unwrap_or("-"),
            r["authMethod"].as_str().unwrap_or("-"),
            since,
            format!("{}/{}", r["framesIn"], r["framesOut"])
        );
    }
    crate::out!("{} connection(s); * = this command", v["count"]);
}

/// `openclaw gateway log-level [FILTER]`.
pub fn log_level(global: &Global, a: &crate::cli::LogLevelArgs) -> i32 {
    let cmd = "gateway log-level";
    let t = match target(cmd, &a.target, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    let params = match &a.filter {
        Some(f) => json!({"filter": f}),
        None => json!({}),
    };
    block_on(async move {
        match call_once(
            &t,
            &a.target,
            &["operator.admin"],
            "gateway.log.level",
            params,
        )
        .await
        {
            Ok((_, v)) if a.json => {
                print_json(&v);
                0
            }
            Ok((_, v)) => {
                match v["previous"].as_str() {
                    Some(p) => crate::out!(
                        "log filter: {} (was {p})",
                        v["filter"].as_str().unwrap_or("?")
                    ),
                    None => crate::out!("log filter: {}", v["filter"].as_str().unwrap_or("?")),
                }
                0
            }
            Err(e) => fail(cmd, &e),
        }
    })
}
