//! The handshake: the first frame must be a `connect` request; version negotiation; the Auth
//! actor decides; `hello-ok` (PROTOCOL §2).

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Value};

use super::{methods, Phase, SessionRef, SessionState};
use crate::auth::{AuthMsg, AuthReply, AuthRequest};
use crate::presence::{self, PresenceMsg};
use crate::protocol::connect::ConnectParams;
use crate::protocol::errors::{code, ErrorShape};
use crate::protocol::frame::{self, parse_request};
use crate::protocol::negotiate::negotiate;
use crate::protocol::{MAX_BUFFERED_BYTES, MAX_PAYLOAD_BYTES};
use crate::shared::{now_ms, write, Identity, VERSION};

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
];

/// Handles the first frame of a connection.
pub(super) async fn on_first_frame(me: &SessionRef, st: &mut SessionState, text: String) {
    let req = match parse_request(&text) {
        Ok(r) => r,
        Err(_) => return st.close_with(me, 1008, "invalid request frame"),
    };
    let fail = |st: &mut SessionState, e: ErrorShape, close: u16, reason: &str| {
        st.send(me, frame::response_err(&req.id, &e));
        st.close_with(me, close, reason);
    };
    if req.method != "connect" {
        let e = ErrorShape::new(
            code::INVALID_REQUEST,
            "invalid handshake: first request must be connect",
        );
        let m = e.message.clone();
        return fail(st, e, 1008, &m);
    }
    let params = match ConnectParams::parse(req.params.as_ref()) {
        Ok(p) => p,
        Err(err) => {
            let e = ErrorShape::new(
                code::INVALID_REQUEST,
                format!("invalid connect params: {err}"),
            );
            let m = e.message.clone();
            return fail(st, e, 1008, &m);
        }
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
    let request = Box::new(AuthRequest {
        conn: st.conn.clone(),
        nonce: st.nonce.clone(),
        params: params.clone(),
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
        }) => hello(
            me, st, &req.id, &params, protocol, method, scopes, device_id,
        ),
        Ok(AuthReply::Reject {
            error,
            close_reason,
        }) => fail(st, error, 1008, &close_reason),
        Err(_) => fail(st, starting(), 1013, "gateway starting"),
    }
}

fn starting() -> ErrorShape {
    let mut e = ErrorShape::unavailable("gateway starting; retry shortly");
    e.retry_after_ms = Some(500);
    e.with_details(json!({"reason": "auth-unavailable"}))
}

#[allow(clippy::too_many_arguments)]
fn hello(
    me: &SessionRef,
    st: &mut SessionState,
    id: &str,
    p: &ConnectParams,
    protocol: u32,
    method: &'static str,
    granted: Vec<String>,
    device_id: Option<String>,
) {
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
    if let Some(t) = st.handshake_timer.take() {
        t.abort();
    }
    let payload = hello_payload(st, &identity);
    *write(&st.stats.identity) = Some(identity.clone());
    st.frame_limit.store(MAX_PAYLOAD_BYTES, Ordering::Relaxed);
    st.admitted.preauth = None; // authenticated: no longer counts against the pre-auth cap
    st.send(me, frame::response_ok(id, payload));
    let ctx = st.ctx.clone();
    st.out
        .control(super::Out::StartPings(ctx.hub.settings().ping_interval));
    ctx.peers.presence.cast(PresenceMsg::Join {
        conn_id: st.conn.conn_id.clone(),
        session: me.clone(),
        listed: presence::is_listed(&identity.client_mode),
    });
    tracing::debug!(client = %identity.client_id, mode = %identity.client_mode, role = %identity.role, "authenticated");
    st.phase = Phase::Ready(Box::new(identity));
}

fn hello_payload(st: &SessionState, i: &Identity) -> Value {
    let hub = &st.ctx.hub;
    let f = &hub.facts;
    json!({
        "type": "hello-ok",
        "protocol": i.protocol,
        "server": {"version": VERSION, "connId": st.conn.conn_id, "bootId": f.boot_id},
        "features": {"methods": methods::names(), "events": EVENTS},
        "snapshot": {
            "presence": presence::entries(f, &hub.registry),
            "health": methods::health_snapshot(hub),
            "stateVersion": hub.counters.state_version(),
            "uptimeMs": f.uptime_ms(),
            "authMode": f.auth_mode_name(),
            "configPath": f.settings.paths.config_path.display().to_string(),
            "stateDir": f.settings.paths.state_dir.display().to_string(),
        },
        "auth": {"method": i.auth_method, "role": i.role, "scopes": i.scopes},
        "policy": {
            "maxPayload": MAX_PAYLOAD_BYTES,
            "maxBufferedBytes": MAX_BUFFERED_BYTES,
            "tickIntervalMs": f.settings.tick_interval.as_millis() as u64,
        },
    })
}
