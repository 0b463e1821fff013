//! HTTP on the gateway port: `/healthz`, `/readyz` (no auth, aggregate data only), a short
//! note on `/`, 404 elsewhere, and the WebSocket upgrade on any path.
//!
//! Every request passes admission first ([`crate::guard`]): forwarding headers only from
//! trusted proxies (else 403 `proxy_attribution_required`), then the IP allowlist (403). An
//! upgrade also needs a pre-auth slot for its client (429) and, with the rate limit on, a
//! `maxConnections` slot (429 with `Retry-After`). Refusals are audited.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ractor::ActorRef;
use serde_json::json;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use crate::audit::AuditEvent;
use crate::guard::forwarded::{ForwardError, Forwarding};
use crate::guard::{Admission, Policy, Refusal};
use crate::protocol::frame_guard::GuardedIo;
use crate::protocol::MAX_PREAUTH_PAYLOAD_BYTES;
use crate::session::io::{ws_config, Io};
use crate::session::{Admitted, RequestMeta};
use crate::session_manager::{self, NewConnection, SessionManagerMsg};
use crate::shared::{Shared, VERSION};

type Resp = Response<Full<Bytes>>;

/// Routes one HTTP request.
pub async fn handle(
    mut req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    shared: Arc<Shared>,
) -> Result<Resp, Infallible> {
    let live = shared.live();
    let h = req.headers();
    let all = |n: &str| -> Vec<String> {
        h.get_all(n)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    let fwd = Forwarding {
        xff: all("x-forwarded-for"),
        forwarded: all("forwarded"),
        real_ip: all("x-real-ip").into_iter().next(),
        other: h
            .keys()
            .any(|k| k.as_str().starts_with("x-forwarded-") && k != "x-forwarded-for"),
    };
    let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let admission = match live.policy.admit(peer.ip(), &fwd, &header) {
        Ok(a) => a,
        Err(r) => return Ok(refuse(&shared, peer, r, req.uri().path()).await),
    };
    if is_upgrade(&req) {
        return Ok(upgrade(&mut req, peer, shared, &live.policy, admission).await);
    }
    // Plain HTTP requests count against the same bucket as WebSocket requests.
    if let Some(key) = live.policy.limit_key(&admission) {
        if let Err(d) = shared.limiter.check(&key, std::time::Instant::now()) {
            let text = key.to_string();
            if d.first {
                let ev = AuditEvent::new("ratelimit.hit")
                    .with("peer", peer.to_string())
                    .with("key", text.as_str())
                    .with(
                        "path",
                        req.uri().path().chars().take(128).collect::<String>(),
                    )
                    .with("retryAfterMs", d.retry_after.as_millis() as u64);
                shared.audit.record(ev).await;
            }
            let mut r = text_resp(
                StatusCode::TOO_MANY_REQUESTS,
                format!("rate limited: {text} (gateway.rateLimit)\n"),
            );
            let secs = d.retry_after.as_secs_f64().ceil().max(1.0) as u64;
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return Ok(r);
        }
    }
    shared
        .counters
        .http_requests
        .fetch_add(1, Ordering::Relaxed);
    let stopping = shared.shutting_down.load(Ordering::Relaxed);
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/healthz") => {
            json_resp(StatusCode::OK, json!({"ok": true, "status": "live"}))
        }
        (&Method::GET | &Method::HEAD, "/readyz") if stopping => json_resp(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ready": false, "status": "shutting down"}),
        ),
        (&Method::GET | &Method::HEAD, "/readyz") => json_resp(
            StatusCode::OK,
            json!({"ready": true, "status": "ready", "connections": shared.connection_count()}),
        ),
        (&Method::GET | &Method::HEAD, "/") => text_resp(StatusCode::OK, note(&shared)),
        _ => text_resp(StatusCode::NOT_FOUND, "not found\n".into()),
    })
}

fn note(shared: &Shared) -> String {
    let port = shared.port.load(Ordering::Relaxed);
    format!(
        "This is the OpenClaw Gateway {VERSION} (openclaw-gateway, Rust).\n\
         It speaks the OpenClaw Gateway WebSocket protocol on this port: connect with\n\
         \n    openclaw status --gateway ws://127.0.0.1:{port}\n\
         \nHealth without auth: GET /healthz, GET /readyz. Remote access: use an SSH tunnel,\n\
         e.g. ssh -N -L {port}:127.0.0.1:{port} user@this-host\n"
    )
}

fn json_resp(status: StatusCode, v: serde_json::Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn text_resp(status: StatusCode, body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn is_upgrade<B>(req: &Request<B>) -> bool {
    let has = |name: header::HeaderName, want: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(want)))
    };
    req.method() == Method::GET
        && has(header::UPGRADE, "websocket")
        && has(header::CONNECTION, "upgrade")
}

/// Answers a refused request and audits it.
async fn refuse(shared: &Shared, peer: SocketAddr, r: Refusal, path: &str) -> Resp {
    let (status, reason, text, client) = match &r {
        Refusal::NotAllowed(client) => {
            shared
                .counters
                .allowlist_denied
                .fetch_add(1, Ordering::Relaxed);
            (
                StatusCode::FORBIDDEN,
                "allowlist",
                format!("forbidden: {client} is not in gateway.allowedIPs\n"),
                Some(*client),
            )
        }
        Refusal::Forwarding(e) => {
            shared
                .counters
                .forwarding_refused
                .fetch_add(1, Ordering::Relaxed);
            let status = match e {
                ForwardError::Malformed(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::FORBIDDEN,
            };
            let reason = match e {
                ForwardError::Malformed(_) => "bad_forwarded_header",
                _ => "proxy_attribution_required",
            };
            (status, reason, format!("{}\n", e.describe()), None)
        }
    };
    tracing::info!(%peer, reason, status = status.as_u16(), "request refused before upgrade");
    let mut ev = AuditEvent::new("conn.denied")
        .with("peer", peer.to_string())
        .with("reason", reason)
        .with("status", status.as_u16())
        .with("path", path.chars().take(128).collect::<String>());
    if let Some(c) = client {
        ev = ev.with("client", c.to_string());
    }
    shared.audit.record(ev).await;
    text_resp(status, text)
}

/// 429 with `Retry-After`, audited.
async fn too_many(
    shared: &Shared,
    peer: SocketAddr,
    reason: &'static str,
    key: String,
    retry_after_s: u64,
    text: String,
) -> Resp {
    tracing::info!(%peer, reason, %key, "upgrade refused: too many connections");
    let ev = AuditEvent::new("conn.denied")
        .with("peer", peer.to_string())
        .with("reason", reason)
        .with("status", 429)
        .with("key", key);
    shared.audit.record(ev).await;
    let mut r = text_resp(StatusCode::TOO_MANY_REQUESTS, text);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    r
}

async fn upgrade(
    req: &mut Request<hyper::body::Incoming>,
    peer: SocketAddr,
    shared: Arc<Shared>,
    policy: &Policy,
    admission: Admission,
) -> Resp {
    let h = req.headers();
    let key = match h.get(header::SEC_WEBSOCKET_KEY) {
        Some(k)
            if h.get(header::SEC_WEBSOCKET_VERSION)
                .is_some_and(|v| v == "13") =>
        {
            k.clone()
        }
        _ => {
            return text_resp(
                StatusCode::BAD_REQUEST,
                "bad websocket upgrade: need Sec-WebSocket-Key and version 13\n".into(),
            )
        }
    };
    if shared.shutting_down.load(Ordering::Relaxed) {
        return text_resp(
            StatusCode::SERVICE_UNAVAILABLE,
            "gateway shutting down\n".into(),
        );
    }
    let header_str = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let client = admission.attribution.client();
    let meta = RequestMeta {
        origin: header_str("origin"),
        forwarded: admission.attribution.proxied(),
        client: admission.attribution.proxied().then_some(client),
        proxy_user: admission.proxy_user.clone(),
        user_agent: header_str("user-agent"),
    };
    let Some(preauth) = shared
        .preauth
        .try_acquire(client, policy.max_preauth_per_ip)
    else {
        shared
            .counters
            .preauth_refused
            .fetch_add(1, Ordering::Relaxed);
        let max = policy.max_preauth_per_ip;
        return too_many(
            &shared,
            peer,
            "preauth_cap",
            client.to_string(),
            1,
            format!(
                "too many unauthenticated connections from {client} (limit {max}, \
                 OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP)\n"
            ),
        )
        .await;
    };
    let limit_key = policy.limit_key(&admission);
    let conn = match (&limit_key, &policy.rate) {
        (Some(k), Some(rate)) => match shared.limiter.open(k, std::time::Instant::now()) {
            Some(p) => Some(p),
            None => {
                return too_many(
                    &shared,
                    peer,
                    "max_connections",
                    k.to_string(),
                    (rate.window.as_secs() / u64::from(rate.max_requests.max(1))).clamp(1, 60),
                    format!(
                        "too many connections from {k} (gateway.rateLimit.maxConnections = {})\n",
                        rate.max_connections
                    ),
                )
                .await
            }
        },
        _ => None,
    };
    let admitted = Admitted {
        limit_key,
        preauth: Some(preauth),
        conn,
    };
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => return tracing::debug!(%peer, error = %e, "upgrade failed"),
        };
        let io: Box<dyn Io> = Box::new(TokioIo::new(upgraded));
        let frame_limit = Arc::new(AtomicUsize::new(MAX_PREAUTH_PAYLOAD_BYTES));
        let guarded = GuardedIo::new(io, frame_limit.clone());
        let ws = WebSocketStream::from_raw_socket(guarded, Role::Server, Some(ws_config())).await;
        let Some(cell) = ractor::registry::where_is(session_manager::NAME) else {
            return tracing::warn!(%peer, "session manager unavailable; dropping connection");
        };
        let mgr: ActorRef<SessionManagerMsg> = cell.into();
        let conn = NewConnection {
            peer,
            ws,
            frame_limit,
            meta,
            admitted,
        };
        let _ = mgr.cast(SessionManagerMsg::Open(Box::new(conn)));
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let hs = r.headers_mut();
    hs.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    hs.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        hs.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}
