//! HTTP on the gateway port: `/healthz`, `/readyz` (no auth, aggregate data only), a short
//! note on `/`, 404 elsewhere, and the WebSocket upgrade on any path.

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

use crate::protocol::frame_guard::GuardedIo;
use crate::protocol::MAX_PREAUTH_PAYLOAD_BYTES;
use crate::session::io::{ws_config, Io};
use crate::session::RequestMeta;
use crate::session_manager::{self, NewConnection, SessionManagerMsg};
use crate::shared::{Shared, VERSION};

type Resp = Response<Full<Bytes>>;

/// Routes one HTTP request.
pub async fn handle(
    mut req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    shared: Arc<Shared>,
) -> Result<Resp, Infallible> {
    if is_upgrade(&req) {
        return Ok(upgrade(&mut req, peer, shared));
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

fn upgrade(
    req: &mut Request<hyper::body::Incoming>,
    peer: SocketAddr,
    shared: Arc<Shared>,
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
    let meta = RequestMeta {
        origin: header_str("origin"),
        forwarded: [
            "x-forwarded-for",
            "forwarded",
            "x-real-ip",
            "x-forwarded-host",
            "x-forwarded-proto",
        ]
        .iter()
        .any(|n| h.contains_key(*n)),
        user_agent: header_str("user-agent"),
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
