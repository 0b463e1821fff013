//! The handshake: the first frame must be a `connect` request; version negotiation; the Auth
//! actor decides; `hello-ok` (PROTOCOL §2).

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Value};

use super::{methods, Phase, SessionRef, SessionState};
use crate::auth::{AuthMsg, AuthReply, AuthRequest};
use crate::nodes::policy::strings;
use crate::nodes::{NodeHello, NodeMsg};
use crate::presence::{self, PresenceMsg};
use crate::protocol::connect::ConnectParams;
use crate::protocol::errors::{code, ErrorShape};
use crate::protocol::frame::{self, parse_request};
use crate::protocol::negotiate::negotiate;
use crate::protocol::{MAX_BUFFERED_BYTES, MAX_PAYLOAD_BYTES};
use crate::shared::{now_ms, write, Identity, VERSION};
use crate::tailscale::TailscaleMsg;

/// How long a session waits for the Auth actor.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// Events this gateway may send.
pub const EVENTS: &[&str] = &[
    "connect.challenge",
    "tick",
    "presence",
    "health",
    "heartbeat",
    "shutdown",
    "node.invoke.request",
    "node.invoke.cancel",
    "node.pair.requested",
    "node.pair.resolved",
    "node.hostStats",
    "node.runnerInventory.changed",
];

/// The first frame as a `connect` request: its id and params, or `None` once the error is
/// answered and the close queued. Well-formed frames take the one-parse fast path
/// ([`ConnectParams::parse_frame`]); the rest are parsed in two steps, which word the error.
fn connect_request(st: &mut SessionState, text: &str) -> Option<(String, ConnectParams)> {
    if let Some(ok) = ConnectParams::parse_frame(text) {
        return Some(ok);
    }
    let req = match parse_request(text) {
        Ok(r) => r,
        Err(_) => {
            st.close_with(1008, "invalid request frame");
            return None;
        }
    };
    let err = if req.method != "connect" {
        "invalid handshake: first request must be connect".to_string()
    } else {
        match ConnectParams::parse(req.params.as_ref()) {
            Ok(p) => return Some((req.id, p)),
            Err(err) => format!("invalid connect params: {err}"),
        }
    };
    let e = ErrorShape::new(code::INVALID_REQUEST, err);
    st.send(frame::response_err(&req.id, &e));
    st.close_with(1008, &e.message);
    None
}

/// Handles the first frame of a connection.
pub(super) async fn on_first_frame(me: &SessionRef, st: &mut SessionState, text: String) {
    let Some((req_id, params)) = connect_request(st, &text) else {
        return;
    };
    let fail = |st: &mut SessionState, e: ErrorShape, close: u16, reason: &str| {
        st.send(frame::response_err(&req_id, &e));
        st.close_with(close, reason);
    };
    if !matches!(params.role(), "operator" | "node") {
        return fail(
            st,
            ErrorShape::new(code::INVALID_REQUEST, "invalid role"),
            1008,
            "invalid role",
        );
    }
    let protocol = match negotiate(params.min_protocol, params.max_protocol) {
        Ok(p) => p,
        Err(e) => return fail(st, e, 1002, "protocol mismatch"),
    };
    let tailscale_user = verify_tailscale(st, &params).await;
    let request = Box::new(AuthRequest {
        conn: st.conn.clone(),
        nonce: st.nonce.clone(),
        params: params.clone(),
        tailscale_user,
    });
    let reply = st
        .ctx
        .peers
        .auth
        .call(
            |reply_to| AuthMsg::Authenticate { request, reply_to },
            AUTH_TIMEOUT,
        )
        .await;
    match reply {
        Ok(AuthReply::Accept {
            method,
            scopes,
            device_id,
            device_token,
        }) => {
            // Its `auth.ok` is queued: no hello-ok until it is on disk (fail closed).
            if !st.ctx.hub.audit.durable().await {
                return fail(st, unaudited(st), 1013, "audit log cannot be written");
            }
            let granted = Granted {
                method,
                scopes,
                device_id,
                device_token,
            };
            hello(me, st, &req_id, &params, protocol, granted)
        }
        Ok(AuthReply::Reject {
            error,
            close_reason,
        }) => fail(st, error, 1008, &close_reason),
        Err(_) => fail(st, starting(), 1013, "gateway starting"),
    }
}

/// Tailscale identity auth (REMOTE-ACCESS-REFERENCE §2.4): on the managed listener, with
/// identity auth on, no token or password sent and `Tailscale-User-Login` present, ask
/// `tailscale whois` (cached by the Tailscale actor) who the client IP is; the login counts
/// only when it equals the header (case-insensitively). Otherwise auth falls through to the
/// shared secret.
async fn verify_tailscale(st: &SessionState, p: &ConnectParams) -> Option<String> {
    let ingress = st.conn.tailscale.as_ref()?;
    let settings = st.ctx.hub.settings().tailscale.as_ref()?;
    let header = ingress.login.as_ref()?;
    let secret_sent = p.auth.as_ref().is_some_and(|a| {
        a.token.as_deref().is_some_and(|t| !t.is_empty())
            || a.password.as_deref().is_some_and(|t| !t.is_empty())
    });
    if !settings.identity_auth || secret_sent {
        return None;
    }
    let ip = ingress.client;
    let login = st
        .ctx
        .peers
        .tailscale
        .call(
            |reply_to| TailscaleMsg::Whois { ip, reply_to },
            Duration::from_secs(6),
        )
        .await
        .ok()
        .flatten()?;
    if login.eq_ignore_ascii_case(header) {
        Some(login)
    } else {
        tracing::info!(claimed = %header, whois = %login, "Tailscale-User-Login does not match whois; falling back to the shared secret");
        None
    }
}

fn starting() -> ErrorShape {
    let mut e = ErrorShape::unavailable("gateway starting; retry shortly");
    e.retry_after_ms = Some(500);
    e.with_details(json!({"reason": "auth-unavailable"}))
}

/// The refusal of a login whose `auth.ok` could not be written (retryable).
fn unaudited(st: &SessionState) -> ErrorShape {
    let path = st.ctx.hub.audit.path.display().to_string();
    let mut e = ErrorShape::unavailable(format!(
        "audit log cannot be written ({path}): refusing logins until it can; \
         check disk space and permissions"
    ));
    e.retry_after_ms = Some(1000);
    e.with_details(json!({"reason": "audit-unwritable"}))
}

/// What the Auth actor granted.
struct Granted {
    method: &'static str,
    scopes: Vec<String>,
    device_id: Option<String>,
    device_token: Option<(String, i64)>,
}

fn hello(
    me: &SessionRef,
    st: &mut SessionState,
    id: &str,
    p: &ConnectParams,
    protocol: u32,
    g: Granted,
) {
    let Granted {
        method,
        scopes: granted,
        device_id,
        device_token,
    } = g;
    let identity = Identity {
        client_id: p.client.id.clone(),
        client_mode: p.client.mode.clone(),
        client_version: p.client.version.clone(),
        platform: p.client.platform.clone(),
        device_family: p.client.device_family.clone(),
        display_name: p.client.display_name.clone(),
        instance_id: p.client.instance_id.clone(),
        role: p.role().to_string(),
        scopes: granted,
        auth_method: method,
        device_id,
        protocol,
        authenticated_at_ms: now_ms(),
    };
    let frame = hello_frame(id, st, &identity, device_token.as_ref());
    if presence::is_listed(&identity.client_mode) {
        let entry = presence::entry(&identity, &st.conn);
        st.ctx.hub.registry.list(&st.stats, entry);
    }
    *write(&st.stats.identity) = Some(identity.clone());
    st.frame_limit.store(MAX_PAYLOAD_BYTES, Ordering::Relaxed);
    st.admitted.preauth = None; // authenticated: no longer counts against the pre-auth cap
    st.send(frame);
    let ctx = st.ctx.clone();
    st.out
        .control(super::Out::StartPings(ctx.hub.settings().ping_interval));
    let node = identity.role == "node";
    ctx.peers.presence.cast(PresenceMsg::Join {
        conn_id: st.conn.conn_id.clone(),
        session: me.clone(),
        listed: presence::is_listed(&identity.client_mode),
        scopes: identity.scopes.clone(),
        node,
    });
    if let (true, Some(node_id)) = (node, identity.device_id.clone()) {
        let h = node_hello(st, p, node_id, identity.authenticated_at_ms);
        ctx.peers.nodes.cast(NodeMsg::Connected {
            hello: Box::new(h.clone()),
            session: me.clone(),
        });
        st.node = Some(h);
    }
    tracing::debug!(client = %identity.client_id, mode = %identity.client_mode, role = %identity.role, "authenticated");
    st.phase = Phase::Ready(Box::new(identity));
}

/// What a node declared at `connect`, for the NodeRegistry (lists bounded: at most 64 caps
/// and 512 commands of at most 128 bytes each).
fn node_hello(st: &SessionState, p: &ConnectParams, node_id: String, at: i64) -> NodeHello {
    NodeHello {
        node_id,
        conn_id: st.conn.conn_id.clone(),
        client_id: p.client.id.clone(),
        client_mode: p.client.mode.clone(),
        display_name: p.client.display_name.clone(),
        platform: p.client.platform.clone(),
        version: p.client.version.clone(),
        device_family: p.client.device_family.clone(),
        caps: strings(p.caps.as_ref(), 64),
        commands: strings(p.commands.as_ref(), 512),
        path_env: p
            .path_env
            .as_ref()
            .and_then(Value::as_str)
            .map(|s| s.chars().take(4096).collect()),
        remote_ip: st.conn.client.to_string(),
        local: st.conn.is_local(),
        connected_at_ms: at,
    }
}

/// The `hello-ok` response, serialized straight from borrowed fields (no `Value` tree to
/// build and drop), with the static `features` block spliced in from its one serialization.
/// Building the payload as a `Value` was over a quarter of a handshake's instructions
/// (`benches/instructions.sh`, BENCHMARKS.md).
fn hello_frame(
    id: &str,
    st: &SessionState,
    i: &Identity,
    device_token: Option<&(String, i64)>,
) -> String {
    static FEATURES: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let features =
        FEATURES.get_or_init(|| json!({"methods": methods::names(), "events": EVENTS}).to_string());
    let hub = &st.ctx.hub;
    let f = &hub.facts;
    let c = &hub.counters;
    let payload = HelloOk {
        ty: "hello-ok",
        protocol: i.protocol,
        server: HelloServer {
            version: VERSION,
            conn_id: &st.conn.conn_id,
            boot_id: &f.boot_id,
        },
        snapshot: HelloSnapshot {
            presence: presence::entries(f, &hub.registry),
            health: methods::health(hub),
            state_version: StateVersion {
                presence: crate::shared::Counters::get(&c.presence_version),
                health: crate::shared::Counters::get(&c.health_version),
            },
            uptime_ms: f.uptime_ms(),
            auth_mode: f.auth_mode_name(),
            config_path: f.settings.paths.config_path.display().to_string(),
            state_dir: f.settings.paths.state_dir.display().to_string(),
        },
        auth: HelloAuth {
            method: i.auth_method,
            role: &i.role,
            scopes: &i.scopes,
            device_token: device_token.map(|t| t.0.as_str()),
            issued_at_ms: device_token.map(|t| t.1),
        },
        policy: HelloPolicy {
            max_payload: MAX_PAYLOAD_BYTES,
            max_buffered_bytes: MAX_BUFFERED_BYTES,
            tick_interval_ms: f.settings.tick_interval.as_millis() as u64,
        },
    };
    // One buffer, sized for a typical frame (1,886 bytes with one connection listed): the
    // response envelope, `features`, then the payload's own fields after its `{`.
    let mut out = Vec::with_capacity(2048);
    frame::response_ok_head(&mut out, id);
    out.extend_from_slice(br#"{"features":"#);
    out.extend_from_slice(features.as_bytes());
    out.push(b',');
    let fields = out.len();
    if serde_json::to_writer(&mut out, &payload).is_err() {
        return frame::response_ok_raw(id, "{}");
    }
    out.remove(fields); // the payload's `{`: its fields continue the object above
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default()
}

/// `hello-ok` without `features` (see [`hello_frame`]).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HelloOk<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    protocol: u32,
    server: HelloServer<'a>,
    snapshot: HelloSnapshot,
    auth: HelloAuth<'a>,
    policy: HelloPolicy,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HelloServer<'a> {
    version: &'static str,
    conn_id: &'a str,
    boot_id: &'a str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HelloSnapshot {
    presence: presence::Entries,
    health: methods::Health,
    state_version: StateVersion,
    uptime_ms: u64,
    auth_mode: &'static str,
    config_path: String,
    state_dir: String,
}

#[derive(serde::Serialize)]
struct StateVersion {
    presence: u64,
    health: u64,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HelloAuth<'a> {
    method: &'a str,
    role: &'a str,
    scopes: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    device_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_at_ms: Option<i64>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HelloPolicy {
    max_payload: usize,
    max_buffered_bytes: usize,
    tick_interval_ms: u64,
}
