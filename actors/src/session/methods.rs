//! Request methods after the handshake (PROTOCOL §4), in one table: [`METHODS`] gives each
//! method its name, the scope it needs and how it runs. Dispatch, the scope check and
//! `hello-ok`'s `features.methods` all read the table. Reads come from the shared parts
//! without actor round trips; disk reads run on the blocking pool and actor calls are
//! awaited off the session (both bounded per session, see [`super::MAX_IN_FLIGHT`]).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde_json::{json, Value};

use super::logtail::{tail, TailParams};
use crate::auth::{AuthMsg, Caller, PairingOp};
use crate::config::reloader::ReloaderMsg;
use crate::nodes::{policy as node_policy, NodeMsg, NodePairOp};
use crate::protocol::errors::ErrorShape;
use crate::protocol::scopes::{satisfies, ADMIN, PAIRING, READ, WRITE};
use crate::shared::{now_ms, ConnStats, Counters, Hub, Identity, VERSION};
use crate::tunnel::supervisor::TunnelSupMsg;
use crate::wiring::Peers;

/// A disk read, run on the blocking pool.
pub type Job = Box<dyn FnOnce() -> Result<Value, ErrorShape> + Send>;
/// An actor call, awaited off the session.
pub type Fut = Pin<Box<dyn Future<Output = Result<Value, ErrorShape>> + Send>>;

/// What a method handler sees.
pub struct Call<'a> {
    /// The method's wire name.
    pub method: &'a str,
    /// Shared state.
    pub hub: &'a Hub,
    /// Typed references to the long-lived actors.
    pub peers: &'a Peers,
    /// The caller's identity and scopes.
    pub who: &'a Identity,
    /// The caller's connection.
    pub conn: &'a ConnStats,
    /// Request params.
    pub params: Option<&'a Value>,
}

/// How a method runs.
#[derive(Clone, Copy)]
pub enum Run {
    /// Answered at once from shared state.
    Now(fn(&Call<'_>) -> Result<Value, ErrorShape>),
    /// Answered at once, serialized straight from a struct (hot methods: no `Value` tree).
    NowRaw(fn(&Call<'_>) -> Result<String, ErrorShape>),
    /// Validates its params now, then reads the disk off the actor.
    Blocking(fn(&Call<'_>) -> Result<Job, ErrorShape>),
    /// Validates its params now, then asks another actor off the session.
    Async(fn(&Call<'_>) -> Result<Fut, ErrorShape>),
}

/// Which role may call a method (PROTOCOL-NODES §2.4: gated both ways).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// Operators (scope-checked).
    Operator,
    /// Nodes (no scopes; the caller's device id is the node id).
    Node,
}

/// One method.
#[derive(Clone, Copy)]
pub struct Method {
    /// Wire name.
    pub name: &'static str,
    /// The scope it needs (operator methods).
    pub scope: &'static str,
    /// Who may call it.
    pub role: Role,
    /// How it runs.
    pub run: Run,
}

/// How a request is answered.
pub enum Dispatch {
    /// Answered now.
    Done(Result<Value, ErrorShape>),
    /// Answered now with a payload that is already JSON.
    Raw(Result<String, ErrorShape>),
    /// Needs disk I/O: run this off the actor.
    Blocking(Job),
    /// Needs another actor: await this off the actor.
    Async(Fut),
}

/// Every method this gateway answers.
pub const METHODS: &[Method] = &[
    m(
        "health",
        READ,
        Run::NowRaw(|c| Ok(health_json(c.hub, probe(c.params)))),
    ),
    m("status", READ, Run::Now(|c| Ok(status(c.hub)))),
    m("system-presence", READ, Run::NowRaw(presence)),
    m("last-heartbeat", READ, Run::Now(|_| Ok(Value::Null))),
    m("logs.tail", READ, Run::Blocking(logs_tail)),
    m("config.get", READ, Run::Now(|c| Ok(config_get(c.hub)))),
    m("audit.tail", READ, Run::Blocking(audit_tail)),
    m("gateway.connections.list", ADMIN, Run::Now(connections)),
    m("gateway.tunnels.status", READ, Run::Now(tunnels_status)),
    m("gateway.tunnels.restart", ADMIN, Run::Async(tunnel_restart)),
    m("gateway.log.level", ADMIN, Run::Now(log_level)),
    m("gateway.trace.start", ADMIN, Run::Now(trace_start)),
    m("gateway.trace.read", ADMIN, Run::Now(trace_read)),
    m("gateway.reload", ADMIN, Run::Async(reload)),
    m("device.pair.list", PAIRING, Run::Async(device_pair)),
    m("device.pair.approve", PAIRING, Run::Async(device_pair)),
    m("device.pair.reject", PAIRING, Run::Async(device_pair)),
    m("device.pair.remove", PAIRING, Run::Async(device_pair)),
    m("node.list", READ, Run::Async(node_list)),
    m("node.describe", READ, Run::Async(node_describe)),
    // Needs `operator.admin` for some commands, checked by `node_invoke`.
    m("node.invoke", WRITE, Run::Async(node_invoke)),
    m("node.pair.list", PAIRING, Run::Async(node_pair)),
    m("node.pair.approve", PAIRING, Run::Async(node_pair)),
    m("node.pair.reject", PAIRING, Run::Async(node_pair)),
    m("node.pair.remove", PAIRING, Run::Async(node_pair)),
    m("node.rename", PAIRING, Run::Async(node_pair)),
    n("node.invoke.result", Run::Async(node_invoke_result)),
    n("node.event", Run::Async(node_event)),
    n("node.runnerInventory.update", Run::Async(node_inventory)),
    n("node.skills.update", Run::Now(|c| node_echo(c, "skills"))),
    n(
        "node.pluginTools.update",
        Run::Now(|c| node_echo(c, "tools")),
    ),
];

/// Test-only methods (feature `fault-injection`): make a session or a tunnel actor panic.
#[cfg(feature = "fault-injection")]
pub const DEBUG_METHODS: &[Method] = &[
    m(
        "debug.panic",
        READ,
        Run::Now(|_| panic!("fault injection: debug.panic requested by the client")),
    ),
    m("debug.tunnel.panic", READ, Run::Async(tunnel_panic)),
    m("debug.nodes.panic", READ, Run::Now(nodes_panic)),
];

const fn m(name: &'static str, scope: &'static str, run: Run) -> Method {
    Method {
        name,
        scope,
        role: Role::Operator,
        run,
    }
}

const fn n(name: &'static str, run: Run) -> Method {
    Method {
        name,
        scope: "",
        role: Role::Node,
        run,
    }
}

/// The whole table (with the test-only methods when built with `fault-injection`).
pub fn table() -> impl Iterator<Item = &'static Method> {
    #[cfg(feature = "fault-injection")]
    let debug = DEBUG_METHODS.iter();
    #[cfg(not(feature = "fault-injection"))]
    let debug = [].iter();
    METHODS.iter().chain(debug)
}

/// The method named `name`.
pub fn find(name: &str) -> Option<&'static Method> {
    table().find(|m| m.name == name)
}

/// Method names, for `hello-ok.features.methods`.
pub fn names() -> Vec<&'static str> {
    table().map(|m| m.name).collect()
}

/// Looks the method up, checks the caller's scope, and runs it (or returns the job).
pub fn dispatch(call: &Call<'_>) -> Dispatch {
    let Some(m) = find(call.method) else {
        return Dispatch::Done(Err(ErrorShape::unknown_method(call.method)));
    };
    let role = if call.who.role == "node" {
        Role::Node
    } else {
        Role::Operator
    };
    if m.role != role {
        return Dispatch::Done(Err(ErrorShape::new(
            crate::protocol::errors::code::INVALID_REQUEST,
            format!("unauthorized role: {}", call.who.role),
        )));
    }
    if role == Role::Operator && !satisfies(&call.who.scopes, m.scope) {
        return Dispatch::Done(Err(ErrorShape::missing_scope(m.scope)));
    }
    match m.run {
        Run::Now(f) => Dispatch::Done(f(call)),
        Run::NowRaw(f) => Dispatch::Raw(f(call)),
        Run::Blocking(f) => f(call).map_or_else(|e| Dispatch::Done(Err(e)), Dispatch::Blocking),
        Run::Async(f) => f(call).map_or_else(|e| Dispatch::Done(Err(e)), Dispatch::Async),
    }
}

/// The presence list, spliced from the entries serialized once per client.
fn presence(c: &Call<'_>) -> Result<String, ErrorShape> {
    let list = crate::presence::entries(&c.hub.facts, &c.hub.registry);
    serde_json::to_string(&list).map_err(|e| ErrorShape::unavailable(format!("presence: {e}")))
}

fn connections(c: &Call<'_>) -> Result<Value, ErrorShape> {
    let rows: Vec<Value> = c
        .hub
        .registry
        .connections()
        .iter()
        .map(|c| c.to_json())
        .collect();
    Ok(json!({"count": rows.len(), "connections": rows}))
}

/// `gateway.log.level {filter?}`: the log filter in force, or switch it now (no restart);
/// audited.
fn log_level(c: &Call<'_>) -> Result<Value, ErrorShape> {
    let log = &c.hub.log;
    let Some(filter) = c.params.and_then(|p| p.get("filter")) else {
        return Ok(json!({"filter": log.current()}));
    };
    let filter = filter
        .as_str()
        .map(str::trim)
        .filter(|f| !f.is_empty() && f.len() <= 1024)
        .ok_or_else(|| {
            ErrorShape::invalid_params(
                "gateway.log.level",
                "filter must be a non-empty string such as \"debug\" or \"info,openclaw_actors::nodes=trace\"",
            )
        })?;
    let previous = log
        .set(filter)
        .map_err(|e| ErrorShape::invalid_params("gateway.log.level", &e))?;
    tracing::info!(filter, previous = %previous, by = %c.conn.conn_id(), "log filter changed");
    let ev = crate::audit::AuditEvent::log_level(filter, &previous, c.conn.conn_id());
    c.hub.audit.record_detached(ev);
    Ok(json!({"filter": filter, "previous": previous}))
}

/// `gateway.reload {tokenRotated?: {source, path}}`: re-reads the config now, as SIGHUP does,
/// and answers the outcome as `config.reload` audits it (`applied`, `restartRequired`…).
/// `tokenRotated` (sent by `openclaw token rotate`, `source` = `runtimeFile` or `config`)
/// first audits `token.rotated`.
fn reload(c: &Call<'_>) -> Result<Fut, ErrorShape> {
    const M: &str = "gateway.reload";
    let rotated = match c.params.and_then(|p| p.get("tokenRotated")) {
        None | Some(Value::Null) => None,
        Some(r) => {
            let field = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
            match (field("source"), field("path")) {
                (Some(s), Some(p)) if matches!(s.as_str(), "runtimeFile" | "config") => {
                    Some((s, p))
                }
                _ => {
                    return Err(ErrorShape::invalid_params(
                        M,
                        "tokenRotated needs source (\"runtimeFile\" or \"config\") and path",
                    ))
                }
            }
        }
    };
    let trigger = if rotated.is_some() {
        "token.rotate"
    } else {
        "request"
    };
    let (reloader, audit) = (c.peers.reloader.clone(), c.hub.audit.clone());
    let by = c.conn.conn_id().to_string();
    Ok(Box::pin(async move {
        if let Some((source, path)) = rotated {
            tracing::info!(source, path, by, "gateway token rotated; reloading");
            let ev = crate::audit::AuditEvent::token_rotated(&source, &path, &by);
            audit.record(ev).await;
        }
        reloader
            .call(
                |reply_to| ReloaderMsg::Reload { trigger, reply_to },
                Duration::from_secs(30),
            )
            .await
            .map_err(|e| ErrorShape::unavailable(format!("reloader {e}; retry shortly")))
    }))
}

/// Where the secret in force comes from, never its value: `kind` is `flag` or `env` (with
/// `name`), `config` (with `path` and `key`), `runtimeFile` (with `path`) or `none`.
fn auth_source(hub: &Hub) -> Value {
    use crate::config::{AuthMode, Source};
    let live = hub.live.get();
    let auth = &live.settings.auth;
    if !matches!(auth.mode, AuthMode::Token | AuthMode::Password) {
        return json!({"kind": "none"});
    }
    match (&auth.source, &hub.facts.runtime_token_path) {
        (Source::Flag(n), _) => json!({"kind": "flag", "name": n}),
        (Source::Env(n), _) => json!({"kind": "env", "name": n}),
        (Source::File(p, k), _) => {
            json!({"kind": "config", "path": p.display().to_string(), "key": k})
        }
        (Source::Default, Some(p)) if auth.mode == AuthMode::Token => {
            json!({"kind": "runtimeFile", "path": p.display().to_string()})
        }
        (Source::Default, _) => json!({"kind": "none"}),
    }
}

/// `gateway.trace.start {connId? | peer? | clientId?, seconds?}`: capture every actor
/// message about the matching connections (not the caller's own) for `seconds` (default 60,
/// at most 3600), whatever the log level; audited.
fn trace_start(c: &Call<'_>) -> Result<Value, ErrorShape> {
    let bad = |why: &str| ErrorShape::invalid_params("gateway.trace.start", why);
    let p = c.params.cloned().unwrap_or(Value::Null);
    let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
    let (conn, peer, client) = (s("connId"), s("peer"), s("clientId"));
    if conn.is_none() && peer.is_none() && client.is_none() {
        return Err(bad("give connId, peer (an IP) or clientId"));
    }
    let secs = p.get("seconds").and_then(Value::as_u64).unwrap_or(60);
    if !(1..=3600).contains(&secs) {
        return Err(bad("seconds must be 1 to 3600"));
    }
    let me = c.conn.conn_id();
    let ids: std::collections::HashSet<String> = c
        .hub
        .registry
        .connections()
        .iter()
        .filter(|s| s.facts.conn_id != me)
        .filter(|s| {
            let f = &s.facts;
            let cid = crate::shared::read(&s.identity)
                .as_ref()
                .map(|i| i.client_id.clone());
            conn.as_deref().is_some_and(|x| x == f.conn_id)
                || peer
                    .as_deref()
                    .is_some_and(|x| x == f.client.to_string() || x == f.peer.ip().to_string())
                || client.is_some() && client == cid
        })
        .map(|s| s.facts.conn_id.clone())
        .collect();
    if ids.is_empty() {
        return Err(bad(
            "no open connection matches (see `openclaw gateway connections`)",
        ));
    }
    let id = c
        .hub
        .trace
        .start(
            ids.clone(),
            std::time::Duration::from_secs(secs),
            std::time::Instant::now(),
        )
        .map_err(ErrorShape::unavailable)?;
    // Turn the filter back down when the time is up, even if nobody reads the trace.
    let control = c.hub.trace.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
        control.expire(std::time::Instant::now());
    });
    let mut list: Vec<String> = ids.into_iter().collect();
    list.sort();
    tracing::info!(trace_id = id, conns = ?list, seconds = secs, by = %me, "trace started");
    let ev = crate::audit::AuditEvent::trace_started(id, &list, secs, me);
    c.hub.audit.record_detached(ev);
    Ok(json!({"traceId": id, "connIds": list, "seconds": secs}))
}

/// `gateway.trace.read {traceId, after}`: captured lines after the cursor.
fn trace_read(c: &Call<'_>) -> Result<Value, ErrorShape> {
    let p = c.params.cloned().unwrap_or(Value::Null);
    let id = p
        .get("traceId")
        .and_then(Value::as_u64)
        .ok_or_else(|| ErrorShape::invalid_params("gateway.trace.read", "traceId is required"))?;
    let after = p.get("after").and_then(Value::as_u64).unwrap_or(0);
    let page = c
        .hub
        .trace
        .read(id, after, std::time::Instant::now())
        .ok_or_else(|| {
            ErrorShape::invalid_params("gateway.trace.read", "unknown or finished traceId")
        })?;
    let lines: Vec<Value> = page
        .lines
        .iter()
        .map(|(s, l)| json!({"seq": s, "line": l}))
        .collect();
    Ok(json!({"lines": lines, "next": page.next, "done": page.done}))
}

fn tunnels_status(c: &Call<'_>) -> Result<Value, ErrorShape> {
    Ok(json!({"tunnels": c.hub.tunnels.rows()}))
}

fn logs_tail(c: &Call<'_>) -> Result<Job, ErrorShape> {
    tail_job(
        "logs.tail",
        c.hub.settings().log_file.clone(),
        c.params,
        tail,
    )
}

fn audit_tail(c: &Call<'_>) -> Result<Job, ErrorShape> {
    // Across rotated files: the cursor is a position in the whole log.
    let read = crate::audit::read::tail;
    tail_job("audit.tail", c.hub.audit.path.to_path_buf(), c.params, read)
}

fn tail_job(
    method: &'static str,
    path: std::path::PathBuf,
    params: Option<&Value>,
    read: fn(&std::path::Path, TailParams) -> std::io::Result<Value>,
) -> Result<Job, ErrorShape> {
    let p = TailParams::parse(params).map_err(|e| ErrorShape::invalid_params(method, &e))?;
    Ok(Box::new(move || {
        read(&path, p).map_err(|e| ErrorShape::unavailable(format!("log read failed: {e}")))
    }))
}

fn tunnel_name(method: &str, params: Option<&Value>) -> Result<String, ErrorShape> {
    params
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ErrorShape::invalid_params(method, "name (string) is required"))
}

fn tunnel_restart(c: &Call<'_>) -> Result<Fut, ErrorShape> {
    let name = tunnel_name("gateway.tunnels.restart", c.params)?;
    let sup = c.peers.tunnels.clone();
    Ok(Box::pin(async move {
        let n = name.clone();
        let found = sup
            .call(
                |reply_to| TunnelSupMsg::Restart { name: n, reply_to },
                Duration::from_secs(5),
            )
            .await;
        match found {
            Ok(true) => Ok(json!({"restarting": name})),
            Ok(false) => Err(ErrorShape::invalid_params(
                "gateway.tunnels.restart",
                &format!("no tunnel named {name:?} (see gateway.tunnels.status)"),
            )),
            Err(e) => Err(ErrorShape::unavailable(format!(
                "tunnel supervisor {e}; retry shortly"
            ))),
        }
    }))
}

#[cfg(feature = "fault-injection")]
fn tunnel_panic(c: &Call<'_>) -> Result<Fut, ErrorShape> {
    let name = tunnel_name("debug.tunnel.panic", c.params)?;
    let sup = c.peers.tunnels.clone();
    Ok(Box::pin(async move {
        let n = name.clone();
        let found = sup
            .call(
                |reply_to| TunnelSupMsg::Panic { name: n, reply_to },
                Duration::from_secs(5),
            )
            .await;
        match found {
            Ok(true) => Ok(json!({"panicked": name})),
            _ => Err(ErrorShape::unavailable("no such tunnel")),
        }
    }))
}

/// The pairing operation a `device.pair.*` request asks for.
fn pairing_op(method: &str, params: Option<&Value>) -> Result<PairingOp, ErrorShape> {
    let field = |name: &str| str_param(method, params, name);
    match method {
        "device.pair.approve" => {
            field("requestId").map(|request_id| PairingOp::Approve { request_id })
        }
        "device.pair.reject" => {
            field("requestId").map(|request_id| PairingOp::Reject { request_id })
        }
        "device.pair.remove" => field("deviceId").map(|device_id| PairingOp::Remove { device_id }),
        _ => Ok(PairingOp::List),
    }
}

/// `device.pair.*`: parse params here, let the Auth actor (which owns the pending table and
/// the paired store) answer.
fn device_pair(c: &Call<'_>) -> Result<Fut, ErrorShape> {
    let op = pairing_op(c.method, c.params)?;
    let caller = Caller {
        conn_id: c.conn.conn_id().to_string(),
        scopes: c.who.scopes.clone(),
    };
    let auth = c.peers.auth.clone();
    Ok(Box::pin(async move {
        auth.call(
            |reply_to| AuthMsg::Pairing {
                op,
                caller,
                reply_to,
            },
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|_| {
            Err(ErrorShape::unavailable(
                "auth actor did not answer; retry shortly",
            ))
        })
    }))
}

/// A required non-empty string param.
fn str_param(method: &str, params: Option<&Value>, name: &str) -> Result<String, ErrorShape> {
    params
        .and_then(|p| p.get(name))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            ErrorShape::invalid_params(
                method,
                &format!("must have required property '{name}' (non-empty string)"),
            )
        })
}

/// The caller, for approvals, bounds and the audit.
fn caller(c: &Call<'_>) -> Caller {
    Caller {
        conn_id: c.conn.conn_id().to_string(),
        scopes: c.who.scopes.clone(),
    }
}

/// Asks the NodeRegistry and waits up to `wait`; a registry that is down or restarted while
/// the call was pending answers a clear, retryable error instead of hanging.
fn ask_nodes(
    c: &Call<'_>,
    wait: Duration,
    msg: impl FnOnce(ractor::RpcReplyPort<Result<Value, ErrorShape>>) -> NodeMsg + Send + 'static,
) -> Fut {
    let nodes = c.peers.nodes.clone();
    Box::pin(async move {
        nodes.call(msg, wait).await.unwrap_or_else(|e| {
            let mut err = ErrorShape::unavailable(format!(
                "node registry {e} (it restarts on its own; pending invokes were not completed); retry shortly"
            ));
            err.retryable = Some(true);
            err.retry_after_ms = Some(500);
            Err(err)
        })
    })
}

const NODE_CALL: Duration = Duration::from_secs(10);

fn node_list(c: &Call<'_>) -> Result<Fut, ErrorShape> {
    Ok(ask_nodes(c, NODE_CALL, |reply_to| NodeMsg::List {
        reply_to,
    }))
}

fn node_describe(c: &Call<'_>) -> Result<Fut, ErrorShape> {
    let node_id = str_param(c.method, c.params, "nodeId")?;
    Ok(ask_nodes(c, NODE_CALL, |reply_to| NodeMsg::Describe {
        node_id,
        reply_to,
    }))
}

/// `node.invoke`: params and the command's scope are checked here; the registry relays it
/// and answers when the node does (or the deadline passes).
fn node_invoke(c: &Call<'_>) -> Result<Fut, ErrorShape> {
    let received = std::time::Instant::now();
    let params = node_policy::parse_invoke(c.params)?;
    if let Some(e) = node_policy::refuse_command(&params.command) {
        return Err(e);
    }
    let scope = node_policy::invoke_scope(&params.command);
    if !satisfies(&c.who.scopes, scope) {
        return Err(ErrorShape::missing_scope(scope));
    }
    // The registry answers by the deadline; the margin covers a busy registry.
    let wait = params.timeout + Duration::from_secs(5);
    let caller = caller(c);
    Ok(ask_nodes(c, wait, move |reply_to| NodeMsg::Invoke {
        caller,
        params,
        received,
        reply_to,
    }))
}

/// `node.pair.*` and `node.rename`.
fn node_pair(c: &Call<'_>) -> Result<Fut, ErrorShape> {
    let f = |name: &str| str_param(c.method, c.params, name);
    let op = match c.method {
        "node.pair.approve" => NodePairOp::Approve {
            request_id: f("requestId")?,
        },
        "node.pair.reject" => NodePairOp::Reject {
            request_id: f("requestId")?,
        },
        "node.pair.remove" => NodePairOp::Remove {
            node_id: f("nodeId")?,
        },
        "node.rename" => NodePairOp::Rename {
            node_id: f("nodeId")?,
            display_name: f("displayName")?,
        },
        _ => NodePairOp::List,
    };
    let caller = caller(c);
    Ok(ask_nodes(c, NODE_CALL, move |reply_to| NodeMsg::Pair {
        op,
        caller,
        reply_to,
    }))
}

/// The calling node's id (its verified device id).
fn node_id(c: &Call<'_>) -> Result<String, ErrorShape> {
    c.who.device_id.clone().ok_or_else(|| {
        ErrorShape::new(
            crate::protocol::errors::code::INVALID_REQUEST,
            "node has no device id",
        )
    })
}

fn node_invoke_result(c: &Call<'_>) -> Result<Fut, ErrorShape> {
    let node_id = node_id(c)?;
    let result = node_policy::parse_result(c.params)?;
    if result.node_id != node_id {
        return Err(ErrorShape::new(
            crate::protocol::errors::code::INVALID_REQUEST,
            "nodeId mismatch",
        ));
    }
    Ok(ask_nodes(c, NODE_CALL, move |reply_to| NodeMsg::Result {
        node_id,
        result: Box::new(result),
        reply_to,
    }))
}

fn node_event(c: &Call<'_>) -> Result<Fut, ErrorShape> {
    let node_id = node_id(c)?;
    let params = c.params.cloned();
    Ok(ask_nodes(c, NODE_CALL, move |reply_to| NodeMsg::Event {
        node_id,
        params,
        reply_to,
    }))
}

fn node_inventory(c: &Call<'_>) -> Result<Fut, ErrorShape> {
    let node_id = node_id(c)?;
    Ok(ask_nodes(c, NODE_CALL, move |reply_to| {
        NodeMsg::Inventory { node_id, reply_to }
    }))
}

/// `node.skills.update` / `node.pluginTools.update`: `{nodeId, <key>: [...]}` (this gateway
/// runs no skills or plugin tools; the lists are acknowledged, not stored).
fn node_echo(c: &Call<'_>, key: &str) -> Result<Value, ErrorShape> {
    let list = c
        .params
        .and_then(|p| p.get(key))
        .filter(|v| v.is_array())
        .cloned()
        .unwrap_or_else(|| json!([]));
    let mut v = json!({"nodeId": node_id(c)?});
    v[key] = list;
    Ok(v)
}

#[cfg(feature = "fault-injection")]
fn nodes_panic(c: &Call<'_>) -> Result<Value, ErrorShape> {
    if c.peers.nodes.cast(NodeMsg::Panic) {
        Ok(json!({"panicked": "nodes"}))
    } else {
        Err(ErrorShape::unavailable("node registry not running"))
    }
}

/// `health` as JSON text: the cached answer while it is current (younger than
/// [`HEALTH_CACHE_MS`] and the connection count and listeners unchanged), else a fresh one
/// that replaces it; `probe: true` always gets a fresh one. The real gateway serves a cached
/// health summary younger than 60 s; serializing it per request was a fifth of a `health`
/// request's instructions (`benches/instructions.sh`).
fn health_json(hub: &Hub, probe: bool) -> String {
    let now = now_ms();
    let key = (
        hub.registry.connection_count(),
        std::sync::Arc::as_ptr(&hub.registry.urls()) as usize,
    );
    if !probe {
        if let Some(c) = crate::shared::read(&hub.health_cache).as_ref() {
            if c.key == key && now.saturating_sub(c.at_ms) < HEALTH_CACHE_MS {
                return c.json.clone();
            }
        }
    }
    let json = serde_json::to_string(&health(hub)).unwrap_or_default();
    *crate::shared::write(&hub.health_cache) = Some(HealthCached {
        at_ms: now,
        key,
        json: json.clone(),
    });
    json
}

/// How long a `health` answer is served from the cache.
pub const HEALTH_CACHE_MS: i64 = 1000;

/// The last `health` answer (see [`health_json`]).
#[derive(Debug)]
pub struct HealthCached {
    at_ms: i64,
    /// Connection count and the listener list it was made with.
    key: (usize, usize),
    json: String,
}

/// `params.probe` (`openclaw health --verbose`).
fn probe(params: Option<&Value>) -> bool {
    params
        .and_then(|p| p.get("probe"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The `health` payload (the real gateway's shape; no channels or agents here).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Health {
    ok: bool,
    ts: i64,
    duration_ms: u64,
    channels: Empty,
    channel_order: [(); 0],
    channel_labels: Empty,
    heartbeat_seconds: u64,
    default_agent_id: &'static str,
    agents: [(); 0],
    sessions: HealthSessions,
    gateway: HealthGateway,
}

/// `{}`.
#[derive(serde::Serialize)]
struct Empty {}

#[derive(serde::Serialize)]
struct HealthSessions {
    path: &'static str,
    count: u64,
    recent: [(); 0],
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthGateway {
    version: &'static str,
    uptime_ms: u64,
    connections: usize,
    #[serde(serialize_with = "slice")]
    listeners: std::sync::Arc<Vec<String>>,
}

fn slice<S: serde::Serializer>(v: &std::sync::Arc<Vec<String>>, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(v.as_slice(), s)
}

pub(crate) fn health(hub: &Hub) -> Health {
    let r = &hub.registry;
    Health {
        ok: true,
        ts: now_ms(),
        duration_ms: 0,
        channels: Empty {},
        channel_order: [],
        channel_labels: Empty {},
        heartbeat_seconds: 0,
        default_agent_id: "main",
        agents: [],
        sessions: HealthSessions {
            path: "",
            count: 0,
            recent: [],
        },
        gateway: HealthGateway {
            version: VERSION,
            uptime_ms: hub.facts.uptime_ms(),
            connections: r.connection_count(),
            listeners: r.urls(),
        },
    }
}

fn status(hub: &Hub) -> Value {
    let c = &hub.counters;
    let n = |a: &std::sync::atomic::AtomicU64| Counters::get(a);
    let a = &hub.audit.stats;
    let (f, r, s) = (&hub.facts, &hub.registry, hub.settings());
    json!({
        "runtimeVersion": VERSION,
        "version": VERSION,
        "pid": std::process::id(),
        "uptimeMs": f.uptime_ms(),
        "startedAt": f.started_ms,
        "port": r.port(),
        "listeners": r.listener_urls(),
        "authMode": f.auth_mode_name(),
        "connections": {"active": r.connection_count(), "total": n(&c.connections_total)},
        "auth": {
            "ok": n(&c.auth_ok),
            "failed": n(&c.auth_failed),
            "handshakeTimeouts": n(&c.handshake_timeouts),
        },
        "sessionsCrashed": n(&c.sessions_crashed),
        "requests": n(&c.requests),
        "requestsOverInFlight": n(&c.requests_over_in_flight),
        "slowConsumers": n(&c.slow_consumers),
        "audit": {
            "file": hub.audit.path.display().to_string(),
            "queued": n(&a.queued),
            "written": n(&a.written),
            "writeErrors": n(&a.write_errors),
        },
        "stateDir": s.paths.state_dir.display().to_string(),
        "configPath": s.paths.config_path.display().to_string(),
        "heartbeat": {"defaultAgentId": "main", "agents": []},
        "channelSummary": [],
        "sessions": {"paths": [], "count": 0, "defaults": {}, "recent": [], "byAgent": []},
        "tunnels": hub.tunnels.rows(),
        "nodes": hub.nodes.status(),
        "tailscale": hub.tailscale.status(),
        "tls": hub.tls.as_ref().map_or_else(|| json!({"enabled": false}), |t| t.status()),
        "security": security(hub),
    })
}

/// The admission rules in force and their counters (no secrets).
fn security(hub: &Hub) -> Value {
    let live = hub.live.get();
    let p = &live.policy;
    let c = &hub.counters;
    let n = |a: &std::sync::atomic::AtomicU64| Counters::get(a);
    let s = hub.settings();
    let l = &hub.limiter;
    let (mem, mem_max) = l.memory();
    json!({
        "bind": s.bind.mode,
        "exposed": s.bind.exposed,
        "allowlist": p.allowed.as_ref().map(|a| a.to_strings()),
        "allowLoopback": p.allow_loopback,
        "trustedProxies": p.trusted_proxies.to_strings(),
        "rateLimit": p.rate.map(|r| json!({
            "maxRequests": r.max_requests,
            "windowMs": r.window.as_millis() as u64,
            "maxConnections": r.max_connections,
            "exemptLoopback": r.exempt_loopback,
        })),
        "limiter": {
            "keys": l.len(),
            "peakKeys": l.peak(),
            "maxKeys": l.max_keys(),
            "bytes": mem,
            "maxBytes": mem_max,
            "denied": n(&l.denied),
            "connectionsDenied": n(&l.conns_denied),
        },
        "maxPreauthPerIp": p.max_preauth_per_ip,
        "preauthRefused": n(&c.preauth_refused),
        "allowlistDenied": n(&c.allowlist_denied),
        "forwardingRefused": n(&c.forwarding_refused),
        "lockout": live.lockout.map(|l| json!({
            "maxAttempts": l.max_attempts,
            "windowMs": l.window.as_millis() as u64,
            "lockoutMs": l.lockout.as_millis() as u64,
            "exemptLoopback": l.exempt_loopback,
        })),
        "reload": {
            "generation": live.generation,
            "reloads": n(&c.reloads),
            "failed": n(&c.reloads_failed),
            "restartRequired": live.restart_pending,
        },
    })
}

/// The config file as last loaded (it agrees with `status` after a reload), and the
/// effective values in force.
fn config_get(hub: &Hub) -> Value {
    let live = hub.live.get();
    let (file, boot) = (&live.settings, hub.settings());
    json!({
        "path": file.paths.config_path.display().to_string(),
        "exists": file.config_file_exists,
        "config": serde_json::to_value(&file.file).unwrap_or(Value::Null),
        "hash": live.file_hash,
        "generation": live.generation,
        "restartRequired": live.restart_pending,
        "effective": {
            "port": hub.registry.port(),
            "bind": boot.bind.mode,
            "authMode": hub.facts.auth_mode_name(),
            "authSource": auth_source(hub),
            "handshakeTimeoutMs": boot.handshake_timeout.as_millis() as u64,
            "tickIntervalMs": boot.tick_interval.as_millis() as u64,
            "shutdownGraceMs": boot.shutdown_grace.as_millis() as u64,
            "logFile": boot.log_file.display().to_string(),
            "auditFile": boot.audit_file.display().to_string(),
        },
    })
}

#[cfg(test)]
mod tests;
