//! `openclaw trace <connId> | --peer IP | --client ID [--for SECS]`: live, every actor
//! message that concerns those connections (session, auth, limiter, node relay, audit), at
//! any level, while the rest of the gateway keeps its log level. Ends by itself after
//! `--for` (default 60 s); audited on the gateway (`trace.started`).

use std::time::{Duration, Instant};

use serde_json::json;

use super::{block_on, connect, fail, target};
use crate::cli::{Global, TraceArgs};

/// Runs the command.
pub fn trace(global: &Global, a: &TraceArgs) -> i32 {
    let cmd = "trace";
    let t = match target(cmd, &a.target, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    let mut params = json!({"seconds": a.for_secs});
    if let Some(c) = &a.conn_id {
        params["connId"] = json!(c);
    }
    if let Some(p) = &a.peer {
        params["peer"] = json!(p);
    }
    if let Some(c) = &a.client {
        params["clientId"] = json!(c);
    }
    if a.conn_id.is_none() && a.peer.is_none() && a.client.is_none() {
        eprintln!("openclaw trace: give a connection id, --peer IP or --client ID (see `openclaw gateway connections`)");
        return 2;
    }
    block_on(async move {
        let mut c = match connect(&t, &a.target, &["operator.admin"]).await {
            Ok(c) => c,
            Err(e) => return fail(cmd, &e),
        };
        let started = match c.call("gateway.trace.start", params).await {
            Ok(v) => v,
            Err(e) => return fail(cmd, &e),
        };
        let id = started["traceId"].clone();
        eprintln!(
            "tracing {} for {} s (Ctrl-C stops)",
            started["connIds"], started["seconds"]
        );
        let deadline = Instant::now() + Duration::from_secs(a.for_secs + 5);
        let mut after = 0u64;
        while Instant::now() < deadline {
            let page = match c
                .call("gateway.trace.read", json!({"traceId": id, "after": after}))
                .await
            {
                Ok(v) => v,
                Err(e) => return fail(cmd, &e),
            };
            for l in page["lines"].as_array().into_iter().flatten() {
                crate::out!("{}", l["line"].as_str().unwrap_or(""));
            }
            after = page["next"].as_u64().unwrap_or(after);
            if page["done"] == true {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        c.close().await;
        0
    })
}
