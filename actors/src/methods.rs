//! Request methods after the handshake (PROTOCOL §4): scope check, then the handler. Reads
//! come from [`Shared`] without actor round trips; disk reads are returned as a blocking job
//! the session runs off its mailbox.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use crate::logtail::{tail, TailParams};
use crate::protocol::errors::ErrorShape;
use crate::protocol::frame::Request;
use crate::protocol::scopes::{required_scope, satisfies};
use crate::shared::{now_ms, ConnStats, Identity, Shared, VERSION};

/// How a request is answered.
pub enum Dispatch {
    /// Answered now.
    Done(Result<Value, ErrorShape>),
    /// Needs disk I/O: run this off the actor.
    Blocking(Box<dyn FnOnce() -> Result<Value, ErrorShape> + Send>),
    /// Needs another actor: await this off the actor.
    Async(std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, ErrorShape>> + Send>>),
}

/// Checks the scope and runs the method.
pub fn dispatch(
    shared: &std::sync::Arc<Shared>,
    who: &Identity,
    conn: &ConnStats,
    req: &Request,
) -> Dispatch {
    let Some(scope) = required_scope(&req.method) else {
        return Dispatch::Done(Err(ErrorShape::unknown_method(&req.method)));
    };
    if !satisfies(&who.scopes, scope) {
        return Dispatch::Done(Err(ErrorShape::missing_scope(scope)));
    }
    let params = req.params.as_ref();
    Dispatch::Done(Ok(match req.method.as_str() {
        "health" => health(shared),
        "status" => status(shared),
        "system-presence" => Value::Array(crate::presence::entries(shared)),
        "last-heartbeat" => Value::Null,
        "config.get" => config_get(shared),
        "gateway.connections.list" => connections(shared),
        "logs.tail" => return tail_job("logs.tail", shared.settings.log_file.clone(), params),
        "audit.tail" => return tail_job("audit.tail", shared.audit.path.to_path_buf(), params),
        "gateway.tunnels.status" => json!({"tunnels": shared.tunnel_rows()}),
        "gateway.tunnels.restart" => return tunnel_restart(params),
        "device.pair.list"
        | "device.pair.approve"
        | "device.pair.reject"
        | "device.pair.remove" => return device_pair(&req.method, params, who, conn),
        #[cfg(feature = "fault-injection")]
        "debug.tunnel.panic" => return tunnel_panic(params),
        #[cfg(feature = "fault-injection")]
        "debug.panic" => panic!("fault injection: debug.panic requested by the client"),
        other => return Dispatch::Done(Err(ErrorShape::unknown_method(other))),
    }))
}

fn tail_job(method: &'static str, path: std::path::PathBuf, params: Option<&Value>) -> Dispatch {
    let p = match TailParams::parse(params) {
        Ok(p) => p,
        Err(e) => return Dispatch::Done(Err(ErrorShape::invalid_params(method, &e))),
    };
    Dispatch::Blocking(Box::new(move || {
        tail(&path, p).map_err(|e| ErrorShape::unavailable(format!("log read failed: {e}")))
    }))
}

fn tunnel_name(params: Option<&Value>) -> Result<String, ErrorShape> {
    params
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            ErrorShape::invalid_params("gateway.tunnels.restart", "name (string) is required")
        })
}

fn tunnel_restart(params: Option<&Value>) -> Dispatch {
    let name = match tunnel_name(params) {
        Ok(n) => n,
        Err(e) => return Dispatch::Done(Err(e)),
    };
    Dispatch::Async(Box::pin(async move {
        let cell = ractor::registry::where_is(crate::tunnel_supervisor::NAME)
            .ok_or_else(|| ErrorShape::unavailable("tunnel supervisor unavailable"))?;
        let sup: ractor::ActorRef<crate::tunnel_supervisor::TunnelSupMsg> = cell.into();
        let n = name.clone();
        let found = sup
            .call(
                |reply_to| crate::tunnel_supervisor::TunnelSupMsg::Restart { name: n, reply_to },
                Some(std::time::Duration::from_secs(5)),
            )
            .await;
        match found {
            Ok(ractor::rpc::CallResult::Success(true)) => Ok(json!({"restarting": name})),
            Ok(ractor::rpc::CallResult::Success(false)) => Err(ErrorShape::invalid_params(
                "gateway.tunnels.restart",
                &format!("no tunnel named {name:?} (see gateway.tunnels.status)"),
            )),
            _ => Err(ErrorShape::unavailable("tunnel supervisor did not answer")),
        }
    }))
}

/// `device.pair.*`: parse params here, let the Auth actor (which owns the pending table and
/// the paired store) answer.
fn device_pair(method: &str, params: Option<&Value>, who: &Identity, conn: &ConnStats) -> Dispatch {
    use crate::auth::{AuthMsg, Caller, PairingOp};
    let field = |name: &str| {
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
    };
    let op = match method {
        "device.pair.approve" => {
            field("requestId").map(|request_id| PairingOp::Approve { request_id })
        }
        "device.pair.reject" => {
            field("requestId").map(|request_id| PairingOp::Reject { request_id })
        }
        "device.pair.remove" => field("deviceId").map(|device_id| PairingOp::Remove { device_id }),
        _ => Ok(PairingOp::List),
    };
    let op = match op {
        Ok(op) => op,
        Err(e) => return Dispatch::Done(Err(e)),
    };
    let caller = Caller {
        conn_id: conn.conn_id.clone(),
        scopes: who.scopes.clone(),
    };
    Dispatch::Async(Box::pin(async move {
        let cell = ractor::registry::where_is(crate::auth::NAME)
            .ok_or_else(|| ErrorShape::unavailable("auth actor unavailable; retry shortly"))?;
        let auth: ractor::ActorRef<AuthMsg> = cell.into();
        match auth
            .call(
                |reply_to| AuthMsg::Pairing {
                    op,
                    caller,
                    reply_to,
                },
                Some(std::time::Duration::from_secs(10)),
            )
            .await
        {
            Ok(ractor::rpc::CallResult::Success(res)) => res,
            _ => Err(ErrorShape::unavailable(
                "auth actor did not answer; retry shortly",
            )),
        }
    }))
}

#[cfg(feature = "fault-injection")]
fn tunnel_panic(params: Option<&Value>) -> Dispatch {
    let name = match tunnel_name(params) {
        Ok(n) => n,
        Err(e) => return Dispatch::Done(Err(e)),
    };
    let ok = ractor::registry::where_is(crate::tunnel::actor_name(&name))
        .map(|c| {
            ractor::ActorRef::<crate::tunnel::TunnelMsg>::from(c)
                .cast(crate::tunnel::TunnelMsg::Panic)
                .is_ok()
        })
        .unwrap_or(false);
    Dispatch::Done(if ok {
        Ok(json!({"panicked": name}))
    } else {
        Err(ErrorShape::unavailable("no such tunnel"))
    })
}

/// The `health` snapshot embedded in `hello-ok` and returned by `health`.
pub fn health_snapshot(shared: &Shared) -> Value {
    health(shared)
}

fn health(shared: &Shared) -> Value {
    json!({
        "ok": true,
        "ts": now_ms(),
        "durationMs": 0,
        "channels": {},
        "channelOrder": [],
        "channelLabels": {},
        "heartbeatSeconds": 0,
        "defaultAgentId": "main",
        "agents": [],
        "sessions": {"path": "", "count": 0, "recent": []},
        "gateway": {
            "version": VERSION,
            "uptimeMs": shared.uptime_ms(),
            "connections": shared.connection_count(),
            "listeners": shared.listener_urls(),
        },
    })
}

fn status(shared: &Shared) -> Value {
    let c = &shared.counters;
    let a = &shared.audit.stats;
    json!({
        "runtimeVersion": VERSION,
        "version": VERSION,
        "pid": std::process::id(),
        "uptimeMs": shared.uptime_ms(),
        "startedAt": shared.started_ms,
        "port": shared.port.load(Ordering::Relaxed),
        "listeners": shared.listener_urls(),
        "authMode": shared.auth_mode_name(),
        "connections": {
            "active": shared.connection_count(),
            "total": c.connections_total.load(Ordering::Relaxed),
        },
        "auth": {
            "ok": c.auth_ok.load(Ordering::Relaxed),
            "failed": c.auth_failed.load(Ordering::Relaxed),
            "handshakeTimeouts": c.handshake_timeouts.load(Ordering::Relaxed),
        },
        "sessionsCrashed": c.sessions_crashed.load(Ordering::Relaxed),
        "requests": c.requests.load(Ordering::Relaxed),
        "audit": {
            "file": shared.audit.path.display().to_string(),
            "queued": a.queued.load(Ordering::Relaxed),
            "written": a.written.load(Ordering::Relaxed),
            "writeErrors": a.write_errors.load(Ordering::Relaxed),
        },
        "stateDir": shared.settings.paths.state_dir.display().to_string(),
        "configPath": shared.settings.paths.config_path.display().to_string(),
        "heartbeat": {"defaultAgentId": "main", "agents": []},
        "channelSummary": [],
        "sessions": {"paths": [], "count": 0, "defaults": {}, "recent": [], "byAgent": []},
        "tunnels": shared.tunnel_rows(),
        "security": security(shared),
    })
}

/// The admission rules in force and their counters (no secrets).
fn security(shared: &Shared) -> Value {
    let live = shared.live();
    let p = &live.policy;
    let c = &shared.counters;
    let s = &shared.settings;
    let (mem, mem_max) = shared.limiter.memory();
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
            "keys": shared.limiter.len(),
            "peakKeys": shared.limiter.peak(),
            "maxKeys": shared.limiter.max_keys(),
            "bytes": mem,
            "maxBytes": mem_max,
            "denied": shared.limiter.denied.load(Ordering::Relaxed),
            "connectionsDenied": shared.limiter.conns_denied.load(Ordering::Relaxed),
        },
        "maxPreauthPerIp": p.max_preauth_per_ip,
        "preauthRefused": c.preauth_refused.load(Ordering::Relaxed),
        "allowlistDenied": c.allowlist_denied.load(Ordering::Relaxed),
        "forwardingRefused": c.forwarding_refused.load(Ordering::Relaxed),
        "lockout": live.lockout.map(|l| json!({
            "maxAttempts": l.max_attempts,
            "windowMs": l.window.as_millis() as u64,
            "lockoutMs": l.lockout.as_millis() as u64,
            "exemptLoopback": l.exempt_loopback,
        })),
        "reload": {
            "generation": live.generation,
            "reloads": c.reloads.load(Ordering::Relaxed),
            "failed": c.reloads_failed.load(Ordering::Relaxed),
        },
    })
}

fn config_get(shared: &Shared) -> Value {
    let s = &shared.settings;
    let config = serde_json::to_value(&s.file).unwrap_or(Value::Null);
    json!({
        "path": s.paths.config_path.display().to_string(),
        "exists": s.config_file_exists,
        "config": config,
        "hash": shared.config_hash,
        "effective": {
            "port": shared.port.load(Ordering::Relaxed),
            "bind": s.bind.mode,
            "authMode": shared.auth_mode_name(),
            "handshakeTimeoutMs": s.handshake_timeout.as_millis() as u64,
            "tickIntervalMs": s.tick_interval.as_millis() as u64,
            "shutdownGraceMs": s.shutdown_grace.as_millis() as u64,
            "logFile": s.log_file.display().to_string(),
            "auditFile": s.audit_file.display().to_string(),
        },
    })
}

fn connections(shared: &Shared) -> Value {
    let rows: Vec<Value> = shared.connections().iter().map(|c| c.to_json()).collect();
    json!({"count": rows.len(), "connections": rows})
}
