//! The Session actor: one per WebSocket connection, a *temporary* child of the
//! SessionManager. It runs the handshake (challenge → `connect` → Auth actor → `hello-ok`),
//! then answers requests and stamps broadcast events with the per-connection `seq`. Socket
//! I/O lives in [`io`]; a crash of this actor drops its state, which closes only its own
//! socket (1011) and unregisters the connection (see `Drop`).

mod handshake;
pub mod io;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::{json, Value};
use tracing::Instrument;

use crate::audit::AuditEvent;
use crate::guard::limiter::{ConnPermit, LimitKey};
use crate::guard::preauth::PreauthPermit;
use crate::methods::{self, Dispatch};
use crate::presence::{self, PresenceMsg};
use crate::protocol::errors::ErrorShape;
use crate::protocol::frame::{self, parse_request};
use crate::protocol::MAX_BUFFERED_BYTES;
use crate::shared::{ConnStats, Identity, Shared};
use io::{Out, Outbound, Queued, WsStream};

/// The session actor.
pub struct SessionActor;

/// What the HTTP upgrade saw, kept for locality and audit.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// `Origin` header (a browser).
    pub origin: Option<String>,
    /// Came through a trusted proxy (forwarding headers from anyone else are refused before
    /// the upgrade).
    pub forwarded: bool,
    /// The client address when a trusted proxy forwarded the request.
    pub client: Option<std::net::IpAddr>,
    /// The user a trusted proxy names (auth mode `trusted-proxy`), or why it names none.
    pub proxy_user: Option<Result<String, &'static str>>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
}

/// What admission granted a connection (see [`crate::guard`]): released with the session.
#[derive(Debug, Default)]
pub struct Admitted {
    /// The key its requests are limited under (`None`: not limited).
    pub limit_key: Option<LimitKey>,
    /// Its pre-auth slot, released at `hello-ok`.
    pub preauth: Option<PreauthPermit>,
    /// Its `maxConnections` slot.
    pub conn: Option<ConnPermit>,
}

/// Start-up arguments.
pub struct SessionArgs {
    /// Connection id (uuid).
    pub conn_id: String,
    /// TCP peer.
    pub peer: SocketAddr,
    /// The upgraded socket.
    pub ws: WsStream,
    /// The frame-size limit the socket's guard reads; raised after `hello-ok`.
    pub frame_limit: Arc<AtomicUsize>,
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Upgrade request details.
    pub meta: RequestMeta,
    /// Admission permits and limit key.
    pub admitted: Admitted,
}

/// A gateway-wide event to deliver.
#[derive(Debug)]
pub struct Broadcast {
    /// Event name.
    pub event: &'static str,
    /// Payload.
    pub payload: Value,
    /// Skip (but still count `seq`) when the client is slow.
    pub drop_if_slow: bool,
    /// `stateVersion` to attach.
    pub state_version: Option<Value>,
}

/// Messages to a session.
pub enum SessionMsg {
    /// A text frame from the client.
    Inbound(String),
    /// The socket closed or failed: stop.
    SocketClosed {
        /// Close code from the client, if any.
        code: Option<u16>,
        /// Close reason from the client.
        reason: String,
        /// I/O error, if any.
        error: Option<String>,
    },
    /// The handshake timer fired: close 1000 if still unauthenticated.
    HandshakeTimeout,
    /// Deliver a broadcast event with the next `seq`.
    Event(Arc<Broadcast>),
    /// The gateway is stopping: send `shutdown`, close 1012.
    Shutdown {
        /// Reason for the `shutdown` event.
        reason: String,
    },
    /// Close with this code and reason (e.g. 4001 "device removed") and stop.
    Close {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// Reference to a session.
pub type SessionRef = ActorRef<SessionMsg>;

enum Phase {
    Handshake,
    Ready(Box<Identity>),
}

/// Session state. Its `Drop` unregisters the connection, leaves presence and audits the
/// close, so that happens on every exit path, panics included.
pub struct SessionState {
    conn_id: String,
    peer: SocketAddr,
    shared: Arc<Shared>,
    meta: RequestMeta,
    admitted: Admitted,
    out: Outbound,
    stats: Arc<ConnStats>,
    nonce: String,
    phase: Phase,
    seq: u64,
    frame_limit: Arc<AtomicUsize>,
    opened: Instant,
    close: Option<(u16, String)>,
    span: tracing::Span,
    /// Aborted at `hello-ok` and on drop: a pending timer would keep the stopped actor's
    /// cell alive until it fires.
    handshake_timer: Option<tokio::task::JoinHandle<Result<(), ractor::MessagingErr<SessionMsg>>>>,
}

impl SessionMsg {
    /// Message kind for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            SessionMsg::Inbound(_) => "Inbound",
            SessionMsg::SocketClosed { .. } => "SocketClosed",
            SessionMsg::HandshakeTimeout => "HandshakeTimeout",
            SessionMsg::Event(_) => "Event",
            SessionMsg::Shutdown { .. } => "Shutdown",
            SessionMsg::Close { .. } => "Close",
        }
    }
}

impl Actor for SessionActor {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = SessionArgs;

    async fn pre_start(
        &self,
        me: SessionRef,
        a: SessionArgs,
    ) -> Result<SessionState, ActorProcessingErr> {
        let span = tracing::info_span!("conn", conn_id = %a.conn_id, peer = %a.peer);
        let stats = a.shared.register(&a.conn_id, a.peer);
        let (out, _task) = io::spawn(a.ws, me.clone(), stats.clone());
        let nonce = uuid::Uuid::new_v4().to_string();
        let challenge = json!({"nonce": nonce, "ts": crate::shared::now_ms()});
        out.text(
            frame::event("connect.challenge", &challenge, None, None),
            MAX_BUFFERED_BYTES,
        );
        let handshake_timer = me.send_after(a.shared.settings.handshake_timeout, || {
            SessionMsg::HandshakeTimeout
        });
        a.shared
            .audit
            .record(
                AuditEvent::new("conn.open")
                    .with("connId", a.conn_id.as_str())
                    .with("peer", a.peer.to_string()),
            )
            .await;
        span.in_scope(|| tracing::debug!("connection open"));
        Ok(SessionState {
            conn_id: a.conn_id,
            peer: a.peer,
            shared: a.shared,
            meta: a.meta,
            admitted: a.admitted,
            out,
            stats,
            nonce,
            phase: Phase::Handshake,
            seq: 0,
            frame_limit: a.frame_limit,
            opened: Instant::now(),
            close: None,
            span,
            handshake_timer: Some(handshake_timer),
        })
    }

    async fn handle(
        &self,
        me: SessionRef,
        msg: SessionMsg,
        st: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        let span = st.span.clone();
        async {
            tracing::trace!(actor = "session", msg = msg.kind(), "message");
            match msg {
                SessionMsg::Inbound(text) => match st.phase {
                    Phase::Handshake => handshake::on_first_frame(&me, st, text).await,
                    Phase::Ready(_) => on_request(&me, st, text),
                },
                SessionMsg::SocketClosed {
                    code,
                    reason,
                    error,
                } => {
                    if st.close.is_none() {
                        let why = error.unwrap_or(reason);
                        st.close = Some((code.unwrap_or(1005), why));
                    }
                    me.stop(None);
                }
                SessionMsg::HandshakeTimeout => {
                    if matches!(st.phase, Phase::Handshake) {
                        st.shared
                            .counters
                            .handshake_timeouts
                            .fetch_add(1, Ordering::Relaxed);
                        st.shared
                            .audit
                            .record(
                                AuditEvent::new("conn.handshake_timeout")
                                    .with("connId", st.conn_id.as_str())
                                    .with("peer", st.peer.to_string()),
                            )
                            .await;
                        st.close_with(&me, 1000, "");
                    }
                }
                SessionMsg::Event(b) => st.deliver(&me, &b),
                SessionMsg::Shutdown { reason } => {
                    if matches!(st.phase, Phase::Ready(_)) {
                        let payload = json!({"reason": reason, "restartExpectedMs": Value::Null});
                        st.deliver(
                            &me,
                            &Broadcast {
                                event: "shutdown",
                                payload,
                                drop_if_slow: false,
                                state_version: None,
                            },
                        );
                    }
                    st.close_with(&me, 1012, "service restart");
                }
                SessionMsg::Close { code, reason } => st.close_with(&me, code, &reason),
            }
            Ok(())
        }
        .instrument(span)
        .await
    }
}

/// Answers one request after the handshake.
fn on_request(me: &SessionRef, st: &mut SessionState, text: String) {
    let req = match parse_request(&text) {
        Ok(r) => r,
        Err(e) => {
            let id = e.response_id();
            st.send(
                me,
                frame::response_err(&id, &ErrorShape::invalid_frame(&e.to_string())),
            );
            return;
        }
    };
    st.shared.counters.requests.fetch_add(1, Ordering::Relaxed);
    let Phase::Ready(identity) = &st.phase else {
        return;
    };
    if let Some(key) = &st.admitted.limit_key {
        if let Err(d) = st.shared.limiter.check(key, Instant::now()) {
            let retry_ms = d.retry_after.as_millis().max(1) as u64;
            let mut e = ErrorShape::unavailable("rate limited");
            e.retryable = Some(true);
            e.retry_after_ms = Some(retry_ms);
            if d.first {
                // Once per burst: a limited client keeps asking, the audit log need not.
                let ev = AuditEvent::new("ratelimit.hit")
                    .with("connId", st.conn_id.as_str())
                    .with("peer", st.peer.to_string())
                    .with("key", key.to_string())
                    .with("method", req.method.as_str())
                    .with("retryAfterMs", retry_ms);
                st.shared.audit.record_detached(ev);
                tracing::info!(%key, retry_after_ms = retry_ms, "request rate limit reached");
            }
            st.send(me, frame::response_err(&req.id, &e));
            return;
        }
    }
    match methods::dispatch(&st.shared, identity, &st.stats, &req) {
        Dispatch::Done(Ok(payload)) => st.send(me, frame::response_ok(&req.id, payload)),
        Dispatch::Done(Err(e)) => st.send(me, frame::response_err(&req.id, &e)),
        Dispatch::Async(fut) => {
            let out = st.out.clone();
            let id = req.id.clone();
            tokio::spawn(async move {
                let text = match fut.await {
                    Ok(v) => frame::response_ok(&id, v),
                    Err(e) => frame::response_err(&id, &e),
                };
                out.text(text, MAX_BUFFERED_BYTES);
            });
        }
        Dispatch::Blocking(job) => {
            // Disk reads run off the actor; the answer goes straight to the socket, so
            // responses may arrive out of order, as the protocol allows.
            let out = st.out.clone();
            let id = req.id.clone();
            tokio::task::spawn_blocking(move || {
                let text = match job() {
                    Ok(v) => frame::response_ok(&id, v),
                    Err(e) => frame::response_err(&id, &e),
                };
                out.text(text, MAX_BUFFERED_BYTES);
            });
        }
    }
}

// === impl SessionState ===

impl SessionState {
    /// Queues a frame; a full buffer closes the socket 1008 "slow consumer".
    fn send(&mut self, me: &SessionRef, text: String) {
        if self.out.text(text, MAX_BUFFERED_BYTES) == Queued::Full {
            self.close_with(me, 1008, "slow consumer");
        }
    }

    /// Delivers a broadcast with the next `seq`.
    fn deliver(&mut self, me: &SessionRef, b: &Broadcast) {
        self.seq += 1;
        let text = frame::event(
            b.event,
            &b.payload,
            Some(self.seq),
            b.state_version.as_ref(),
        );
        match self.out.text(text, MAX_BUFFERED_BYTES) {
            Queued::Full if !b.drop_if_slow => self.close_with(me, 1008, "slow consumer"),
            _ => {}
        }
    }

    /// Queues a close frame and stops; the I/O task writes everything queued before it.
    fn close_with(&mut self, me: &SessionRef, code: u16, reason: &str) {
        if self.close.is_none() {
            self.close = Some((code, reason.to_string()));
        }
        self.out.control(Out::Close(code, reason.to_string()));
        me.stop(None);
    }
}

impl Drop for SessionState {
    fn drop(&mut self) {
        if let Some(t) = self.handshake_timer.take() {
            t.abort();
        }
        self.shared.unregister(&self.conn_id);
        let (code, reason) = self.close.clone().unwrap_or((1011, "session ended".into()));
        let mut ev = AuditEvent::new("conn.close")
            .with("connId", self.conn_id.as_str())
            .with("peer", self.peer.to_string())
            .with("durationMs", self.opened.elapsed().as_millis() as u64)
            .with("code", code)
            .with("reason", reason)
            .with("framesIn", self.stats.frames_in.load(Ordering::Relaxed))
            .with("framesOut", self.stats.frames_out.load(Ordering::Relaxed));
        if let Phase::Ready(i) = &self.phase {
            ev = ev
                .with("clientId", i.client_id.as_str())
                .with("clientMode", i.client_mode.as_str())
                .with("clientVersion", i.client_version.as_str())
                .with("role", i.role.as_str());
            if let Some(p) = ractor::registry::where_is(presence::NAME) {
                let p: ActorRef<PresenceMsg> = p.into();
                let _ = p.cast(PresenceMsg::Leave {
                    conn_id: self.conn_id.clone(),
                });
            }
        }
        if let Some(origin) = &self.meta.origin {
            ev = ev.with("origin", origin.as_str());
        }
        self.shared.audit.record_detached(ev);
    }
}
