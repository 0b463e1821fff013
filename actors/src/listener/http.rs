//! HTTP on the gateway port: `/healthz`, `/readyz` (no auth, aggregate data only), a short
//! note on `/`, 404 elsewhere, and the WebSocket upgrade on any path.
//!
//! Every request passes admission first ([`crate::guard`]): forwarding headers only from
//! trusted proxies (else 403 `proxy_attribution_required`), then the IP allowlist (403). An
//! upgrade also needs a pre-auth slot for its client (429) and, with the rate limit on, a
//! `maxConnections` slot (429 with `Retry-After`). Refusals are audited.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use crate::audit::AuditEvent;
use crate::guard::conncap::ConnPermit;
use crate::guard::forwarded::{ForwardError, Forwarding};
use crate::guard::limiter_actor;
use crate::guard::{Admission, Policy, Refusal};
use crate::listener::probes;
use crate::protocol::frame_guard::GuardedIo;
use crate::protocol::MAX_PREAUTH_PAYLOAD_BYTES;
use crate::session::io::{ws_config, Io};
use crate::session::manager::{NewConnection, SessionManagerMsg};
use crate::session::Admitted;
use crate::shared::{now_ms, ConnFacts, Counters, Hub, VERSION};
use crate::wiring::Slot;

type Resp = Response<Full<Bytes>>;

/// What request handling needs: the shared parts and the SessionManager upgrades go to.
#[derive(Debug)]
pub struct HttpCtx {
    /// Shared state (admission rules, limiter, counters, registry, audit).
    pub hub: Hub,
    /// Where upgraded connections go.
    pub sessions: Slot<SessionManagerMsg>,
    /// The Tailscale-managed listener (plain HTTP behind `tailscale serve|funnel`): only
    /// requests Tailscale's proxy attributed get in, and their identity headers count.
    pub managed: Option<crate::tailscale::parse::Mode>,
}

/// Routes one HTTP request.
pub async fn handle(
    mut req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    ctx: Arc<HttpCtx>,
    socket: Arc<ConnPermit>,
) -> Result<Resp, Infallible> {
    let hub = &ctx.hub;
    let live = hub.live.get();
    let fwd = forwarding(req.headers());
    let h = req.headers();
    let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    // Probes come first, before any proxy or attribution check, on every listener (the
    // allowlist still applies to the TCP peer: a refused address learns nothing).
    if probes::is_probe(req.uri().path()) && !is_upgrade(&req) {
        if let Some(allowed) = &live.policy.allowed {
            let ip = peer.ip();
            if !(allowed.contains(ip) || live.policy.allow_loopback && ip.is_loopback()) {
                let r = Refusal::NotAllowed(ip);
                return Ok(refuse(hub, peer, r, req.uri().path()).await);
            }
        }
        let local = ctx.managed.is_none() && peer.ip().is_loopback() && !fwd.present();
        let detailed = local || bearer_ok(&live, &header);
        return Ok(probe(hub, req.method(), req.uri().path(), detailed));
    }
    let mut ingress = None;
    let admitted = match ctx.managed {
        None => live.policy.admit(peer.ip(), &fwd, &header),
        Some(mode) => match crate::tailscale::parse::ingress(mode, peer.ip(), &header) {
            Ok(i) => {
                let client = i.client;
                ingress = Some(i);
                live.policy.admit_managed(peer.ip(), client)
            }
            Err(why) => return Ok(refuse_unattributed(hub, peer, why, req.uri().path()).await),
        },
    };
    let admission = match admitted {
        Ok(a) => a,
        Err(r) => return Ok(refuse(hub, peer, r, req.uri().path()).await),
    };
    if is_upgrade(&req) {
        let up = Upgrade {
            peer,
            admission,
            ingress,
            socket,
        };
        return Ok(upgrade(&mut req, &ctx, &live.policy, up).await);
    }
    if req.uri().path() == "/metrics" {
        let local = ctx.managed.is_none()
            && !admission.attribution.proxied()
            && admission.attribution.client().is_loopback();
        let openmetrics =
            header("accept").is_some_and(|a| a.contains("application/openmetrics-text"));
        return Ok(metrics(
            hub,
            req.method(),
            local || bearer_ok(&live, &header),
            openmetrics,
        ));
    }
    // Plain HTTP requests count against the same bucket as WebSocket requests.
    if let Some(key) = live.policy.limit_key(&admission) {
        let path: String = req.uri().path().chars().take(128).collect();
        let limited = limiter_actor::check(&hub.limiter, &hub.audit, &key, peer, |ev| {
            ev.with("path", path)
        });
        if let Err(retry) = limited {
            let mut r = text_resp(
                StatusCode::TOO_MANY_REQUESTS,
                format!("rate limited: {key} (gateway.rateLimit)\n"),
            );
            let secs = retry.as_secs_f64().ceil().max(1.0) as u64;
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return Ok(r);
        }
    }
    Counters::bump(&hub.counters.http_requests);
    Ok(route(hub, req.method(), req.uri().path()))
}

/// The forwarding headers of a request, as admission reads them.
fn forwarding(h: &hyper::HeaderMap) -> Forwarding {
    let all = |n: &str| -> Vec<String> {
        h.get_all(n)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    Forwarding {
        xff: all("x-forwarded-for"),
        forwarded: all("forwarded"),
        real_ip: all("x-real-ip").into_iter().next(),
        other: h
            .keys()
            .any(|k| k.as_str().starts_with("x-forwarded-") && k != "x-forwarded-for"),
        tailscale: h.keys().any(|k| k.as_str().starts_with("tailscale-")),
    }
}

/// `Authorization: Bearer <token|password>` that matches the secrets in force.
fn bearer_ok(live: &crate::shared::Live, header: &dyn Fn(&str) -> Option<String>) -> bool {
    let Some(given) = header("authorization").and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .map(|t| t.trim().to_string())
    }) else {
        return false;
    };
    let s = &live.secrets;
    [&s.token, &s.password]
        .into_iter()
        .flatten()
        .any(|secret| secret.matches(&given))
}

/// A probe's answer, with the probe headers.
fn probe(hub: &Hub, method: &Method, path: &str, detailed: bool) -> Resp {
    let state = probes::ProbeState {
        started: hub
            .registry
            .started
            .load(std::sync::atomic::Ordering::Relaxed),
        draining: hub.registry.stopping(),
        audit_failing: hub.audit.stats.failing(),
        uptime_ms: hub.facts.uptime_ms(),
    };
    match probes::answer(method.as_str(), path, state, detailed) {
        Some(probes::ProbeAnswer::Json(code, v)) => {
            json_resp(StatusCode::from_u16(code).unwrap_or(StatusCode::OK), v)
        }
        Some(probes::ProbeAnswer::MethodNotAllowed) | None => {
            let mut r = text_resp(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed".into());
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            r
        }
    }
}

/// `/metrics`: Prometheus text exposition, for loopback or bearer callers unless
/// `gateway.metrics.public`; 404 when `gateway.metrics.enabled` is false.
fn metrics(hub: &Hub, method: &Method, trusted: bool, openmetrics: bool) -> Resp {
    let cfg = hub
        .settings()
        .file
        .gateway
        .metrics
        .clone()
        .unwrap_or_default();
    if cfg.enabled == Some(false) {
        return text_resp(
            StatusCode::NOT_FOUND,
            "not found (gateway.metrics.enabled is false)\n".into(),
        );
    }
    if !matches!(*method, Method::GET | Method::HEAD) {
        let mut r = text_resp(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed".into());
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    if !trusted && cfg.public != Some(true) {
        let mut r = text_resp(
            StatusCode::UNAUTHORIZED,
            "metrics need the gateway token: send `Authorization: Bearer <token>` (or set \
             gateway.metrics.public: true)\n"
                .into(),
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    let body = crate::metrics::render(hub);
    if !openmetrics {
        let mut r = text_resp(StatusCode::OK, crate::metrics::to_prometheus_text(&body));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        return r;
    }
    let mut r = text_resp(StatusCode::OK, body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

/// The plain HTTP endpoints.
fn route(hub: &Hub, method: &Method, path: &str) -> Resp {
    match (method, path) {
        (&Method::GET | &Method::HEAD, "/") => text_resp(StatusCode::OK, note(hub)),
        _ => text_resp(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

fn note(hub: &Hub) -> String {
    let port = hub.registry.port();
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
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    common_headers(&mut r);
    r
}

fn text_resp(status: StatusCode, body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    common_headers(&mut r);
    r
}

/// On every answer: never cached, never sniffed, no referrer.
fn common_headers(r: &mut Resp) {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
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
async fn refuse(hub: &Hub, peer: SocketAddr, r: Refusal, path: &str) -> Resp {
    let c = &hub.counters;
    let (status, reason, text, client) = match &r {
        Refusal::NotAllowed(client) => {
            Counters::bump(&c.allowlist_denied);
            (
                StatusCode::FORBIDDEN,
                "allowlist",
                format!("forbidden: {client} is not in gateway.allowedIPs\n"),
                Some(*client),
            )
        }
        Refusal::Forwarding(e) => {
            Counters::bump(&c.forwarding_refused);
            let (status, reason) = match e {
                ForwardError::Malformed(_) => (StatusCode::BAD_REQUEST, "bad_forwarded_header"),
                _ => (StatusCode::FORBIDDEN, "proxy_attribution_required"),
            };
            (status, reason, format!("{}\n", e.describe()), None)
        }
    };
    tracing::info!(%peer, reason, status = status.as_u16(), "request refused before upgrade");
    let ev = AuditEvent::conn_denied(peer, reason, status.as_u16())
        .with("path", path.chars().take(128).collect::<String>())
        .with_opt("client", client.map(|c| c.to_string()));
    hub.audit.record(ev).await;
    text_resp(status, text)
}

/// 429 with `Retry-After`, audited.
async fn too_many(
    hub: &Hub,
    peer: SocketAddr,
    reason: &'static str,
    key: String,
    retry_after_s: u64,
    text: String,
) -> Resp {
    tracing::info!(%peer, reason, %key, "upgrade refused: too many connections");
    let ev = AuditEvent::conn_denied(peer, reason, 429).with("key", key);
    hub.audit.record(ev).await;
    let mut r = text_resp(StatusCode::TOO_MANY_REQUESTS, text);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    r
}

/// What admission learned about an upgrade request.
struct Upgrade {
    peer: SocketAddr,
    admission: Admission,
    ingress: Option<crate::tailscale::parse::Ingress>,
    socket: Arc<ConnPermit>,
}

/// The WebSocket upgrade: a valid key, not stopping, the admission permits, then the
/// connection facts and socket go to the SessionManager once hyper hands the socket over.
async fn upgrade(
    req: &mut Request<hyper::body::Incoming>,
    ctx: &Arc<HttpCtx>,
    policy: &Policy,
    up: Upgrade,
) -> Resp {
    let Upgrade {
        peer,
        admission,
        ingress,
        socket,
    } = up;
    let hub = &ctx.hub;
    let key = match ws_key(req.headers()) {
        Ok(k) => k,
        Err(KeyError::Version) => {
            // RFC 6455 §4.2.2: answer with the version we speak.
            let mut r = text_resp(
                StatusCode::UPGRADE_REQUIRED,
                "unsupported Sec-WebSocket-Version: this gateway speaks version 13\n".into(),
            );
            r.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
            return r;
        }
        Err(KeyError::Key) => {
            return text_resp(
                StatusCode::BAD_REQUEST,
                "bad websocket upgrade: need one Sec-WebSocket-Key of 16 bytes in base64\n".into(),
            )
        }
    };
    if hub.registry.stopping() {
        return text_resp(
            StatusCode::SERVICE_UNAVAILABLE,
            "gateway shutting down\n".into(),
        );
    }
    // Fail closed: no new session while its audit events could not be written.
    if let Some(why) = hub.audit.refusal(peer) {
        return text_resp(StatusCode::SERVICE_UNAVAILABLE, why);
    }
    let mut facts = conn_facts(req.headers(), peer, &admission);
    facts.tailscale = ingress;
    let facts = Arc::new(facts);
    let mut admitted = match permits(hub, peer, policy, &admission).await {
        Ok(a) => a,
        Err(refused) => return refused,
    };
    admitted.socket = Some(socket);
    let on_upgrade = hyper::upgrade::on(req);
    let sessions = ctx.sessions.clone();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => return tracing::debug!(%peer, error = %e, "upgrade failed"),
        };
        let io: Box<dyn Io> = Box::new(TokioIo::new(upgraded));
        let frame_limit = Arc::new(AtomicUsize::new(MAX_PREAUTH_PAYLOAD_BYTES));
        let guarded = GuardedIo::new(io, frame_limit.clone());
        let ws = WebSocketStream::from_raw_socket(guarded, Role::Server, Some(ws_config())).await;
        let conn = NewConnection {
            facts,
            ws,
            frame_limit,
            admitted,
        };
        if !sessions.cast(SessionManagerMsg::Open(Box::new(conn))) {
            tracing::warn!(%peer, "session manager unavailable; dropping connection");
        }
    });
    switching_protocols(&key)
}

/// Why an upgrade request's key headers are refused.
#[derive(Debug, PartialEq, Eq)]
enum KeyError {
    /// `Sec-WebSocket-Version` is missing or not 13 (426 with the version we speak).
    Version,
    /// `Sec-WebSocket-Key` is missing, repeated, or not 16 bytes in base64 (400).
    Key,
}

/// The client's `Sec-WebSocket-Key`, when the request is a version-13 upgrade.
fn ws_key(h: &hyper::HeaderMap) -> Result<HeaderValue, KeyError> {
    let mut versions = h.get_all(header::SEC_WEBSOCKET_VERSION).iter();
    if !(versions.next().is_some_and(|v| v == "13") && versions.next().is_none()) {
        return Err(KeyError::Version);
    }
    let mut keys = h.get_all(header::SEC_WEBSOCKET_KEY).iter();
    match (keys.next(), keys.next()) {
        // 16 bytes in base64 are 24 characters ending in "==" (RFC 6455 §4.2.1).
        (Some(k), None) if k.len() == 24 && k.as_bytes().ends_with(b"==") => Ok(k.clone()),
        _ => Err(KeyError::Key),
    }
}

/// What the upgrade learned about the connection (one `Arc` from here to the session and
/// the Auth actor).
fn conn_facts(h: &hyper::HeaderMap, peer: SocketAddr, admission: &Admission) -> ConnFacts {
    let header_str = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    ConnFacts {
        conn_id: crate::shared::random_uuid(),
        peer,
        client: admission.attribution.client(),
        forwarded: admission.attribution.proxied(),
        origin: header_str("origin"),
        proxy_user: admission.proxy_user.clone(),
        user_agent: header_str("user-agent"),
        connected_at_ms: now_ms(),
        tailscale: None,
        peer_text: Default::default(),
    }
}

/// 403 `proxy_attribution_required` on the managed listener (the real gateway's JSON body),
/// audited.
async fn refuse_unattributed(hub: &Hub, peer: SocketAddr, why: &str, path: &str) -> Resp {
    Counters::bump(&hub.counters.forwarding_refused);
    tracing::info!(%peer, why, "managed Tailscale listener: request refused");
    let ev = AuditEvent::conn_denied(peer, "proxy_attribution_required", 403)
        .with("path", path.chars().take(128).collect::<String>());
    hub.audit.record(ev).await;
    json_resp(
        StatusCode::FORBIDDEN,
        json!({"error": {
            "message": "Proxy client attribution is required. Configure gateway.trustedProxies narrowly and make the proxy overwrite or safely rebuild forwarded client headers.",
            "type": "proxy_attribution_required",
            "detail": why,
        }}),
    )
}

/// A pre-auth slot for the client and, with the rate limit on, a `maxConnections` slot;
/// a 429 when either is full.
async fn permits(
    hub: &Hub,
    peer: SocketAddr,
    policy: &Policy,
    admission: &Admission,
) -> Result<Admitted, Resp> {
    let client = admission.attribution.client();
    let Some(preauth) = hub.preauth.try_acquire(client, policy.max_preauth_per_ip) else {
        Counters::bump(&hub.counters.preauth_refused);
        let max = policy.max_preauth_per_ip;
        let text = format!(
            "too many unauthenticated connections from {client} (limit {max}, \
             OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP)\n"
        );
        return Err(too_many(hub, peer, "preauth_cap", client.to_string(), 1, text).await);
    };
    let limit_key = policy.limit_key(admission);
    let conn = match (&limit_key, &policy.rate) {
        (Some(k), Some(rate)) => match hub.limiter.open(k, std::time::Instant::now()) {
            Some(p) => Some(p),
            None => {
                let retry =
                    (rate.window.as_secs() / u64::from(rate.max_requests.max(1))).clamp(1, 60);
                let text = format!(
                    "too many connections from {k} (gateway.rateLimit.maxConnections = {})\n",
                    rate.max_connections
                );
                return Err(
                    too_many(hub, peer, "max_connections", k.to_string(), retry, text).await,
                );
            }
        },
        _ => None,
    };
    Ok(Admitted {
        limit_key,
        preauth: Some(preauth),
        conn,
        socket: None,
    })
}

/// The 101 answer.
fn switching_protocols(key: &HeaderValue) -> Resp {
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
