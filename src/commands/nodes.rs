//! `openclaw nodes list|pending|approve|reject|remove|rename|describe|invoke`: the operator
//! side of the `node.*` methods (PROTOCOL-NODES §3, §4). A command that takes NODE lists the
//! nodes (`node.list`) and resolves NODE with [`resolve_node`] on the same connection, so it
//! also asks for `operator.read`. `approve` first reads the request's `requiredApproveScopes`
//! and then approves on a new connection with exactly those scopes, as the real CLI does.

mod parse;
mod print;
#[cfg(test)]
mod tests;

use std::io::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use super::{block_on, call_once, connect, fail, print_json, target};
use crate::cli::{Global, JsonTargetArgs, NodesCmd};
use crate::client::{ClientError, Conn};
use parse::{invoke_scopes, parse_params, required_scopes, run_output};

pub use parse::resolve_node;
pub use print::print_status;

const READ: &str = "operator.read";
const WRITE: &str = "operator.write";
const PAIRING: &str = "operator.pairing";
const ADMIN: &str = "operator.admin";
/// Shortest node-id prefix NODE may be.
const MIN_PREFIX: usize = 6;
/// Node ids are shown this long in tables and errors.
const SHORT_ID: usize = 12;
/// How much longer than the invoke's own deadline we wait for the gateway's answer (its
/// `TIMEOUT` error comes right at the deadline).
const INVOKE_GRACE: Duration = Duration::from_secs(5);
/// Connect timeout of `invoke --timeout 0` (no deadline for the node, but not for connecting).
const INVOKE_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Invoked commands the gateway gates behind `operator.admin`, besides `browser.proxy*`.
const ADMIN_COMMANDS: &[&str] = &["fs.listDir", "terminal.upload"];

/// Runs one `openclaw nodes …` command and returns the exit code.
pub fn run(global: &Global, cmd: NodesCmd) -> i32 {
    match cmd {
        NodesCmd::List(a) => list(global, &a),
        NodesCmd::Pending(a) => pending(global, &a),
        NodesCmd::Approve { request_id, target } => approve(global, &target, &request_id),
        NodesCmd::Reject { request_id, target } => reject(global, &target, &request_id),
        NodesCmd::Remove { node, target } => remove(global, &target, &node),
        NodesCmd::Rename { node, name, target } => rename(global, &target, &node, &name),
        NodesCmd::Describe { node, target } => describe(global, &target, &node),
        NodesCmd::Invoke {
            node,
            command,
            params,
            target,
        } => invoke(global, &target, &node, &command, params.as_deref()),
    }
}

/// `openclaw nodes list`: `node.pair.list` and `node.list` on one connection.
fn list(global: &Global, a: &JsonTargetArgs) -> i32 {
    let cmd = "nodes list";
    let t = match target(cmd, &a.target, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        let mut c = match connect(&t, &a.target, &[READ, PAIRING]).await {
            Ok(c) => c,
            Err(e) => return fail(cmd, &e),
        };
        let pairs = c.call("node.pair.list", json!({})).await;
        let listed = match &pairs {
            Ok(_) => c.call("node.list", json!({})).await,
            Err(_) => Ok(Value::Null),
        };
        c.close().await;
        let (pairs, listed) = match (pairs, listed) {
            (Ok(p), Ok(l)) => (p, l),
            (Err(e), _) | (_, Err(e)) => return fail(cmd, &e),
        };
        if a.json {
            print_json(&json!({
                "pending": pairs["pending"], "paired": pairs["paired"], "nodes": listed["nodes"],
            }));
        } else {
            print::list(&pairs, &listed);
        }
        0
    })
}

/// `openclaw nodes pending`: the pending half of `node.pair.list`.
fn pending(global: &Global, a: &JsonTargetArgs) -> i32 {
    let cmd = "nodes pending";
    let t = match target(cmd, &a.target, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        match call_once(&t, &a.target, &[PAIRING], "node.pair.list", json!({})).await {
            Ok((_, v)) if a.json => {
                print_json(&json!({"pending": v["pending"]}));
                0
            }
            Ok((_, v)) => {
                print::pending(&v);
                0
            }
            Err(e) => fail(cmd, &e),
        }
    })
}

/// `openclaw nodes approve REQUEST_ID`.
fn approve(global: &Global, a: &JsonTargetArgs, request_id: &str) -> i32 {
    let cmd = "nodes approve";
    let t = match target(cmd, &a.target, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        let listed = match call_once(&t, &a.target, &[PAIRING], "node.pair.list", json!({})).await {
            Ok((_, v)) => v,
            Err(e) => return fail(cmd, &e),
        };
        // Not pending: approve anyway with pairing only, so the gateway's answer is shown.
        let scopes = required_scopes(&listed, request_id).unwrap_or_else(|| vec![PAIRING.into()]);
        let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let params = json!({"requestId": request_id});
        match call_once(&t, &a.target, &scopes, "node.pair.approve", params).await {
            Ok((_, v)) if a.json => {
                print_json(&v);
                0
            }
            Ok((_, v)) => {
                let n = &v["node"];
                crate::out!(
                    "approved node {} ({}, {}) — request {request_id}; {} command(s) allowed",
                    print::str_of(&n["nodeId"]),
                    print::str_of(&n["displayName"]),
                    print::str_of(&n["platform"]),
                    print::count(&n["commands"])
                );
                0
            }
            Err(e) => fail_hinted(cmd, &e, "unknown requestId", "see openclaw nodes pending"),
        }
    })
}

/// `openclaw nodes reject REQUEST_ID`.
fn reject(global: &Global, a: &JsonTargetArgs, request_id: &str) -> i32 {
    let cmd = "nodes reject";
    let t = match target(cmd, &a.target, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        let params = json!({"requestId": request_id});
        match call_once(&t, &a.target, &[PAIRING], "node.pair.reject", params).await {
            Ok((_, v)) if a.json => {
                print_json(&v);
                0
            }
            Ok((_, v)) => {
                crate::out!(
                    "rejected request {request_id} from node {}",
                    print::str_of(&v["nodeId"])
                );
                0
            }
            Err(e) => fail_hinted(cmd, &e, "unknown requestId", "see openclaw nodes pending"),
        }
    })
}

/// `openclaw nodes remove NODE`.
fn remove(global: &Global, a: &JsonTargetArgs, query: &str) -> i32 {
    let cmd = "nodes remove";
    let t = match target(cmd, &a.target, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        let c = match connect(&t, &a.target, &[READ, PAIRING]).await {
            Ok(c) => c,
            Err(e) => return fail(cmd, &e),
        };
        let (mut c, node) = match find_node(c, cmd, query, true).await {
            Ok(x) => x,
            Err(code) => return code,
        };
        let id = print::str_of(&node["nodeId"]);
        let res = c.call("node.pair.remove", json!({"nodeId": id})).await;
        c.close().await;
        match res {
            Ok(v) if a.json => {
                print_json(&v);
                0
            }
            Ok(_) => {
                crate::out!(
                    "removed node {id} ({}); it must pair again to connect",
                    print::str_of(&node["displayName"])
                );
                0
            }
            Err(e) => fail_hinted(cmd, &e, "unknown nodeId", "see openclaw nodes list"),
        }
    })
}

/// `openclaw nodes rename NODE NAME`.
fn rename(global: &Global, a: &JsonTargetArgs, query: &str, name: &str) -> i32 {
    let cmd = "nodes rename";
    let name = name.trim();
    if name.is_empty() {
        eprintln!("openclaw {cmd}: NAME is empty; give the new display name, e.g. openclaw nodes rename {query} build-box");
        return 2;
    }
    let t = match target(cmd, &a.target, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        let c = match connect(&t, &a.target, &[READ, PAIRING]).await {
            Ok(c) => c,
            Err(e) => return fail(cmd, &e),
        };
        let (mut c, node) = match find_node(c, cmd, query, true).await {
            Ok(x) => x,
            Err(code) => return code,
        };
        let id = print::str_of(&node["nodeId"]);
        let params = json!({"nodeId": id, "displayName": name});
        let res = c.call("node.rename", params).await;
        c.close().await;
        match res {
            Ok(v) if a.json => {
                print_json(&v);
                0
            }
            Ok(v) => {
                crate::out!(
                    "renamed node {id}: {} → {}",
                    print::str_of(&node["displayName"]),
                    print::str_of(&v["displayName"])
                );
                0
            }
            Err(e) => fail_hinted(cmd, &e, "unknown nodeId", "see openclaw nodes list"),
        }
    })
}

/// `openclaw nodes describe NODE`.
fn describe(global: &Global, a: &JsonTargetArgs, query: &str) -> i32 {
    let cmd = "nodes describe";
    let t = match target(cmd, &a.target, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        let c = match connect(&t, &a.target, &[READ]).await {
            Ok(c) => c,
            Err(e) => return fail(cmd, &e),
        };
        let (mut c, node) = match find_node(c, cmd, query, false).await {
            Ok(x) => x,
            Err(code) => return code,
        };
        let params = json!({"nodeId": node["nodeId"]});
        let res = c.call("node.describe", params).await;
        c.close().await;
        match res {
            Ok(v) if a.json => {
                print_json(&v);
                0
            }
            Ok(v) => {
                print::describe(&v);
                0
            }
            Err(e) => fail_hinted(cmd, &e, "unknown nodeId", "see openclaw nodes list"),
        }
    })
}

/// `openclaw nodes invoke NODE COMMAND [--params JSON] [--timeout MS]`: `node.list` and
/// `node.invoke` on one connection.
fn invoke(
    global: &Global,
    a: &JsonTargetArgs,
    query: &str,
    command: &str,
    params: Option<&str>,
) -> i32 {
    let cmd = "nodes invoke";
    let params = match parse_params(params) {
        Ok(p) => p,
        Err(why) => {
            eprintln!("openclaw {cmd}: {why}");
            return 2;
        }
    };
    if command.trim().is_empty() {
        eprintln!("openclaw {cmd}: COMMAND is empty; give a node command, e.g. system.which (see openclaw nodes describe {query})");
        return 2;
    }
    let t = match target(cmd, &a.target, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    let timeout_ms = a.target.timeout;
    block_on(async move {
        let connect_timeout = match timeout_ms {
            0 => INVOKE_CONNECT_TIMEOUT,
            ms => Duration::from_millis(ms),
        };
        let c = match Conn::open(&t, &invoke_scopes(command), connect_timeout).await {
            Ok(c) => c,
            Err(e) => return fail(cmd, &e),
        };
        let (mut c, node) = match find_node(c, cmd, query, false).await {
            Ok(x) => x,
            Err(code) => return code,
        };
        let mut req = json!({
            "nodeId": node["nodeId"], "command": command, "timeoutMs": timeout_ms,
            "idempotencyKey": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(p) = params {
            req["params"] = p;
        }
        c.set_timeout(match timeout_ms {
            0 => Duration::MAX,
            ms => Duration::from_millis(ms) + INVOKE_GRACE,
        });
        let res = c.call("node.invoke", req).await;
        c.close().await;
        match res {
            Ok(v) if a.json => {
                print_json(&v);
                0
            }
            Ok(v) => print_payload(&v["payload"]),
            Err(e) => fail(cmd, &e),
        }
    })
}

/// Lists the nodes on `c` and hands `c` back with the entry `query` names; on failure prints
/// why, closes `c` and gives the exit code. With `paired` (the connection has
/// `operator.pairing`), paired nodes that `node.list` leaves out count too, as in `nodes list`.
async fn find_node(
    mut c: Conn,
    cmd: &str,
    query: &str,
    paired: bool,
) -> Result<(Conn, Value), i32> {
    let mut listed = c.call("node.list", json!({})).await;
    if paired && listed.is_ok() {
        match (c.call("node.pair.list", json!({})).await, &mut listed) {
            (Ok(pairs), Ok(v)) => {
                let rows = print::list_rows(&pairs, v);
                v["nodes"] = Value::Array(rows);
            }
            (Err(e), _) => listed = Err(e),
            (Ok(_), Err(_)) => {}
        }
    }
    let found = match &listed {
        Ok(v) => {
            let nodes = v["nodes"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            resolve_node(nodes, query).map(|id| {
                nodes
                    .iter()
                    .find(|n| n["nodeId"] == id.as_str())
                    .cloned()
                    .unwrap_or_else(|| json!({"nodeId": id}))
            })
        }
        Err(_) => Ok(Value::Null),
    };
    let code = match (listed, found) {
        (Ok(_), Ok(node)) => return Ok((c, node)),
        (Err(e), _) => fail(cmd, &e),
        (Ok(_), Err(why)) => {
            eprintln!("openclaw {cmd}: {why}");
            1
        }
    };
    c.close().await;
    Err(code)
}

/// Prints an invoke payload: a `system.run` result as its own stdout/stderr (returning its exit
/// code), anything else as pretty JSON.
fn print_payload(payload: &Value) -> i32 {
    let Some(run) = run_output(payload) else {
        print_json(payload);
        return 0;
    };
    let mut out = std::io::stdout();
    let _ = out.write_all(run.stdout.as_bytes());
    let _ = out.flush();
    let mut err = std::io::stderr();
    let _ = err.write_all(run.stderr.as_bytes());
    if let Some(note) = run.note {
        let _ = writeln!(err, "openclaw nodes invoke: {note}");
    }
    run.code
}

/// Prints the gateway's error, with `hint` when it carries `marker`; exit code as usual.
fn fail_hinted(cmd: &str, e: &ClientError, marker: &str, hint: &str) -> i32 {
    if matches!(e, ClientError::Request(m) if m.contains(marker)) {
        eprintln!("openclaw {cmd}: {} — {hint}", e.message());
        return 1;
    }
    fail(cmd, e)
}
