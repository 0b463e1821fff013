//! The Session actor: one per WebSocket connection, a *temporary* child of the
//! [`manager`]. It runs the [`handshake`] (challenge → `connect` → Auth actor → `hello-ok`),
//! then answers requests through the [`methods`] table and stamps broadcast events with the
//! per-connection `seq`. Socket I/O lives in [`io`]; a crash of this actor drops its state,
//! which closes only its own socket (1011) and unregisters the connection (see `Drop`).
//!
//! Sessions are the one actor kind not hosted by ractor: there is one per connection, and a
//! ractor actor costs ~8.5 KB of mailboxes, supervision port and boxed loop even when idle
//! (issue 15, BENCHMARKS.md "Scale"). A session is a *light actor*: one tokio task running
//! [`run`] over a typed mailbox ([`SessionRef`] is its sending half), one message at a time,
//! with the handshake timer in its own loop. Its supervisor is still the SessionManager: the
//! task catches a panic, drops the state (the cleanup above) and reports
//! [`manager::SessionManagerMsg::Ended`], which counts and audits a crash.
//!
//! Every response — answered at once, or by a job that reads the disk or asks another actor
//! — goes out through [`SessionState::send`], so a full outbound buffer closes the socket
//! 1008 "slow consumer" in every case. A session runs at most [`MAX_IN_FLIGHT`] jobs at a
//! time; further requests get a retryable `UNAVAILABLE` until answers go out.

mod handshake;
pub mod io;
pub mod logtail;
pub mod manager;
pub mod methods;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures_util::{FutureExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::audit::AuditEvent;
use crate::guard::limiter::{ConnPermit, LimitKey};
use crate::guard::limiter_actor;
use crate::guard::preauth::PreauthPermit;
use crate::nodes::NodeMsg;
use crate::presence::PresenceMsg;
use crate::protocol::errors::ErrorShape;
use crate::protocol::frame::{self, parse_request, Request};
use crate::protocol::MAX_BUFFERED_BYTES;
use crate::shared::{ConnFacts, ConnStats, Counters, Hub, Identity};
use crate::wiring::Peers;
use io::{Out, Outbound, Queued, WsStream};
use methods::{Call, Dispatch};

/// Most requests one session may have running off the actor (disk reads, actor calls).
pub const MAX_IN_FLIGHT: usize = 64;

/// Invalid frames in a row after which a connection is closed 1008: a client that only sends
/// garbage stops costing the gateway answers.
pub const MAX_INVALID_RUN: u32 = 8;

/// What admission granted a connection (see [`crate::guard`]): released with the session.
#[derive(Debug, Default)]
pub struct Admitted {
    /// The key its requests are limited under (`None`: not limited).
    pub limit_key: Option<LimitKey>,
    /// Its pre-auth slot, released at `hello-ok`.
    pub preauth: Option<PreauthPermit>,
    /// Its `maxConnections` slot.
    pub conn: Option<ConnPermit>,
    /// Its socket's slot under `gateway.connections` (shared with the HTTP task).
    pub socket: Option<Arc<crate::guard::conncap::ConnPermit>>,
}

/// What every session uses: the shared parts (its methods read all of them: `status`
/// reports on each) and the actors it talks to (Auth, Presence, and those behind methods).
#[derive(Debug, Clone)]
pub struct SessionCtx {
    /// Shared state.
    pub hub: Hub,
    /// Typed references, kept current by the root.
    pub peers: Peers,
}

/// Start-up arguments.
pub struct SessionArgs {
    /// What the upgrade learned.
    pub conn: Arc<ConnFacts>,
    /// The upgraded socket.
    pub ws: WsStream,
    /// The frame-size limit the socket's guard reads; raised after `hello-ok`.
    pub frame_limit: Arc<AtomicUsize>,
    /// Admission permits and limit key.
    pub admitted: Admitted,
    /// Shared parts and peers.
    pub ctx: Arc<SessionCtx>,
}

/// A gateway-wide event to deliver.
#[derive(Debug)]
pub struct Broadcast {
    /// Event name.
    pub event: &'static str,
    /// Payload, serialized once for every session it goes to.
    pub payload: Box<serde_json::value::RawValue>,
    /// Skip (but still count `seq`) when the client is slow.
    pub drop_if_slow: bool,
    /// `stateVersion` to attach.
    pub state_version: Option<Value>,
}

/// Messages to a session.
pub enum SessionMsg {
    /// A text frame from the client.
    Inbound(String),
    /// The answer of a request that ran off the actor.
    Reply {
        /// The request id.
        id: String,
        /// Its result.
        result: Result<Value, ErrorShape>,
        /// Its method's metrics slot and arrival time.
        timing: (usize, Instant),
    },
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
    /// Send this frame as is (node-directed events: no `seq`).
    Direct(String),
    /// The NodeRegistry restarted: a node session announces itself again to it.
    Rejoin(crate::nodes::NodeRef),
    /// Close with this code and reason (e.g. 4001 "device removed") and stop.
    Close {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// Reference to a session: the sending half of its mailbox. Messages are boxed so that an
/// idle mailbox's slots are 8 bytes (ractor boxes its messages the same way).
#[derive(Clone)]
pub struct SessionRef {
    tx: mpsc::UnboundedSender<Box<SessionMsg>>,
}

/// The session is gone (its mailbox is closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionGone;

impl std::fmt::Debug for SessionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionRef")
    }
}

impl SessionRef {
    /// A mailbox with no session behind it: whoever holds the receiver plays the session
    /// (tests stand in for sessions this way).
    pub fn detached() -> (SessionRef, mpsc::UnboundedReceiver<Box<SessionMsg>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (SessionRef { tx }, rx)
    }

    /// Sends a message; fails only when the session has ended.
    pub fn cast(&self, msg: SessionMsg) -> Result<(), SessionGone> {
        self.tx.send(Box::new(msg)).map_err(|_| SessionGone)
    }

    /// Resolves once the session has ended (its state dropped, its mailbox closed).
    pub async fn ended(&self) {
        self.tx.closed().await
    }
}

/// How a session ended, for its supervisor.
#[derive(Debug)]
pub enum Exit {
    /// It stopped (the socket closed, or it closed it).
    Normal,
    /// A handler panicked; the message.
    Crashed(String),
}

/// Starts a session as a task; `on_exit` runs after its state is dropped (its cleanup done),
/// with how it ended. A panic in any handler ends only this task.
pub fn spawn(args: SessionArgs, on_exit: impl FnOnce(Exit) + Send + 'static) -> SessionRef {
    let (me, rx) = SessionRef::detached();
    let span =
        tracing::info_span!("conn", conn_id = %args.conn.conn_id, peer = %args.conn.peer_str());
    let session = me.clone();
    tokio::spawn(
        async move {
            let exit = std::panic::AssertUnwindSafe(run(session, rx, Box::new(args)))
                .catch_unwind()
                .await;
            on_exit(match exit {
                Ok(()) => Exit::Normal,
                Err(panic) => Exit::Crashed(panic_message(&*panic)),
            });
        }
        .instrument(span),
    );
    me
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_string()
    }
}

/// The session's life: start, then one message at a time until a handler stops it. The
/// handshake timer is a branch of this loop, live until `hello-ok` (no timer task).
///
/// The arguments (the socket's `WebSocketStream` is most of their size) and the start-up
/// future are boxed: this future is kept for the connection's life, and a once-only state
/// inline would size it for good (issue 15).
async fn run(
    me: SessionRef,
    mut rx: mpsc::UnboundedReceiver<Box<SessionMsg>>,
    a: Box<SessionArgs>,
) {
    let timeout = a.ctx.hub.settings().handshake_timeout;
    let (mut st, stream) = Box::pin(start(&me, a)).await;
    // The socket's read half: read here, one frame at a time, so a flooding client is
    // pushed back by TCP while its session is busy (no inbound queue to bound).
    let mut stream = Some(stream);
    let timer = tokio::time::sleep(timeout);
    tokio::pin!(timer);
    let mut timer_live = true;
    while !st.stopped {
        let msg = tokio::select! {
            m = rx.recv() => match m {
                Some(m) => *m,
                None => break, // unreachable while `me` is held; ends cleanly if not
            },
            read = async { stream.as_mut().expect("guarded").next().await }, if stream.is_some() => {
                match io::on_read(read, &st.out, &st.stats) {
                    io::Read::Frame(text) => SessionMsg::Inbound(text),
                    io::Read::Control => continue,
                    io::Read::Closed { code, reason, error } => {
                        stream = None;
                        SessionMsg::SocketClosed { code, reason, error }
                    }
                }
            }
            _ = &mut timer, if timer_live && matches!(st.phase, Phase::Handshake) => {
                timer_live = false;
                SessionMsg::HandshakeTimeout
            }
        };
        handle(&me, msg, &mut st).await;
    }
    // A close was queued (or the writer is gone): let the writer read the peer's close.
    if let Some(stream) = stream {
        st.out.control(Out::Linger(Box::new(stream)));
    }
}

enum Phase {
    Handshake,
    Ready(Box<Identity>),
}

/// Session state. Its `Drop` unregisters the connection, leaves presence and audits the
/// close, so that happens on every exit path, panics included.
pub struct SessionState {
    conn: Arc<ConnFacts>,
    ctx: Arc<SessionCtx>,
    admitted: Admitted,
    out: Outbound,
    stats: Arc<ConnStats>,
    nonce: String,
    phase: Phase,
    seq: u64,
    /// Requests running off the actor (≤ [`MAX_IN_FLIGHT`]).
    in_flight: usize,
    /// Invalid frames since the last valid one ([`MAX_INVALID_RUN`]).
    invalid_run: u32,
    frame_limit: Arc<AtomicUsize>,
    opened: Instant,
    close: Option<(u16, String)>,
    /// What a node session announced to the NodeRegistry (re-sent after its restart).
    node: Option<crate::nodes::NodeHello>,
    span: tracing::Span,
    /// Set by a handler that ends the session; the loop stops after that handler.
    stopped: bool,
}

impl SessionMsg {
    /// Message kind for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            SessionMsg::Inbound(_) => "Inbound",
            SessionMsg::Reply { .. } => "Reply",
            SessionMsg::SocketClosed { .. } => "SocketClosed",
            SessionMsg::HandshakeTimeout => "HandshakeTimeout",
            SessionMsg::Event(_) => "Event",
            SessionMsg::Shutdown { .. } => "Shutdown",
            SessionMsg::Close { .. } => "Close",
            SessionMsg::Direct(_) => "Direct",
            SessionMsg::Rejoin(_) => "Rejoin",
        }
    }
}

/// What ractor's `pre_start` did: register, start the I/O tasks, send the challenge, audit
/// `conn.open`.
async fn start(me: &SessionRef, a: Box<SessionArgs>) -> (SessionState, io::Stream) {
    let a = *a;
    let hub = &a.ctx.hub;
    let span = tracing::Span::current();
    Counters::bump(&hub.counters.connections_total);
    let stats = hub.registry.register(a.conn.clone());
    let (out, stream) = io::spawn(a.ws, me.clone(), stats.clone());
    let nonce = crate::shared::random_uuid();
    #[derive(serde::Serialize)]
    struct Challenge<'a> {
        nonce: &'a str,
        ts: i64,
    }
    let challenge = Challenge {
        nonce: &nonce,
        ts: crate::shared::now_ms(),
    };
    out.text(
        frame::event("connect.challenge", &challenge, None, None),
        MAX_BUFFERED_BYTES,
    );
    hub.audit.record(AuditEvent::conn_open(&a.conn)).await;
    tracing::debug!("connection open");
    let st = SessionState {
        conn: a.conn,
        ctx: a.ctx,
        admitted: a.admitted,
        out,
        stats,
        nonce,
        phase: Phase::Handshake,
        seq: 0,
        in_flight: 0,
        invalid_run: 0,
        frame_limit: a.frame_limit,
        opened: Instant::now(),
        close: None,
        node: None,
        span,
        stopped: false,
    };
    (st, stream)
}

/// Handles one message (runs inside the connection's span).
async fn handle(me: &SessionRef, msg: SessionMsg, st: &mut SessionState) {
    tracing::trace!(actor = "session", msg = msg.kind(), "message");
    st.ctx.hub.trace.note(&st.conn.conn_id, || {
        format!("actor=session msg={}", msg.kind())
    });
    match msg {
        SessionMsg::Inbound(text) => {
            match st.phase {
                // Boxed: the handshake's future is large and runs once; inline, it would
                // size this task's future (kept for the connection's life) by it.
                Phase::Handshake => Box::pin(handshake::on_first_frame(me, st, text)).await,
                Phase::Ready(_) => on_request(me, st, text),
            }
        }
        SessionMsg::Reply { id, result, timing } => {
            st.in_flight = st.in_flight.saturating_sub(1);
            let (slot, started) = timing;
            st.ctx
                .hub
                .metrics
                .observe(slot, started.elapsed(), result.is_ok());
            st.respond(&id, result);
        }
        SessionMsg::SocketClosed {
            code,
            reason,
            error,
        } => {
            if st.close.is_none() {
                let why = error.unwrap_or(reason);
                st.close = Some((code.unwrap_or(1005), why));
            }
            st.stopped = true;
        }
        SessionMsg::HandshakeTimeout => {
            if matches!(st.phase, Phase::Handshake) {
                let hub = &st.ctx.hub;
                Counters::bump(&hub.counters.handshake_timeouts);
                Box::pin(hub.audit.record(AuditEvent::handshake_timeout(&st.conn))).await;
                st.close_with(1000, "");
            }
        }
        SessionMsg::Event(b) => st.deliver(&b),
        SessionMsg::Shutdown { reason } => {
            if matches!(st.phase, Phase::Ready(_)) {
                let payload = json!({"reason": reason, "restartExpectedMs": Value::Null});
                let payload = frame::raw(&payload);
                let b = Broadcast {
                    event: "shutdown",
                    payload,
                    drop_if_slow: false,
                    state_version: None,
                };
                st.deliver(&b);
            }
            st.close_with(1012, "service restart");
        }
        SessionMsg::Close { code, reason } => st.close_with(code, &reason),
        SessionMsg::Direct(text) => st.send(text),
        SessionMsg::Rejoin(nodes) => {
            if let Some(h) = &st.node {
                let _ = nodes.cast(NodeMsg::Connected {
                    hello: Box::new(h.clone()),
                    session: me.clone(),
                });
            }
        }
    }
}

/// Answers one request after the handshake: parse, rate limit, in-flight cap, then the
/// method table.
fn on_request(me: &SessionRef, st: &mut SessionState, text: String) {
    let req = match parse_request(&text) {
        Ok(r) => {
            st.invalid_run = 0;
            r
        }
        Err(e) => {
            let id = e.response_id();
            st.respond(&id, Err(ErrorShape::invalid_frame(&e.to_string())));
            st.invalid_run += 1;
            if st.invalid_run >= MAX_INVALID_RUN {
                tracing::info!(
                    run = st.invalid_run,
                    "closing 1008: too many invalid frames in a row"
                );
                st.close_with(1008, "too many invalid frames");
            }
            return;
        }
    };
    let started = Instant::now();
    let metrics = st.ctx.hub.metrics.clone();
    let slot = metrics.slot(&req.method);
    Counters::bump(&st.ctx.hub.counters.requests);
    if let Err(e) = st.rate_limit(&req) {
        metrics.observe(slot, started.elapsed(), false);
        return st.respond(&req.id, Err(e));
    }
    let Phase::Ready(identity) = &st.phase else {
        return;
    };
    let call = Call {
        method: &req.method,
        hub: &st.ctx.hub,
        peers: &st.ctx.peers,
        who: identity,
        conn: &st.stats,
        params: req.params.as_ref(),
    };
    match methods::dispatch(&call) {
        Dispatch::Done(result) => {
            metrics.observe(slot, started.elapsed(), result.is_ok());
            st.respond(&req.id, result)
        }
        Dispatch::Raw(Ok(payload)) => {
            st.send(frame::response_ok_raw(&req.id, &payload));
            metrics.observe(slot, started.elapsed(), true);
        }
        Dispatch::Raw(Err(e)) => {
            metrics.observe(slot, started.elapsed(), false);
            st.respond(&req.id, Err(e))
        }
        job => st.run_off_actor(me, req.id, job, (slot, started)),
    }
}

// === impl SessionState ===

impl SessionState {
    /// Takes one request from the connection's rate-limit bucket.
    fn rate_limit(&self, req: &Request) -> Result<(), ErrorShape> {
        let Some(key) = &self.admitted.limit_key else {
            return Ok(());
        };
        let hub = &self.ctx.hub;
        let (conn_id, method) = (self.conn.conn_id.clone(), req.method.clone());
        let res = limiter_actor::check(&hub.limiter, &hub.audit, key, self.conn.peer, |ev| {
            ev.with("connId", conn_id).with("method", method)
        });
        hub.trace.note(&self.conn.conn_id, || {
            format!(
                "actor=ratelimiter msg=Check key={key} method={} allowed={}",
                req.method,
                res.is_ok()
            )
        });
        res.map_err(|retry| {
            let mut e = ErrorShape::unavailable("rate limited");
            e.retryable = Some(true);
            e.retry_after_ms = Some(retry.as_millis() as u64);
            e
        })
    }

    /// Runs a disk read or an actor call off the actor, within the in-flight cap; the
    /// answer comes back as [`SessionMsg::Reply`] and leaves through [`Self::respond`].
    fn run_off_actor(
        &mut self,
        me: &SessionRef,
        id: String,
        job: Dispatch,
        timing: (usize, Instant),
    ) {
        if self.in_flight >= MAX_IN_FLIGHT {
            Counters::bump(&self.ctx.hub.counters.requests_over_in_flight);
            let mut e = ErrorShape::unavailable(format!(
                "too many requests in flight on this connection (limit {MAX_IN_FLIGHT}); \
                 wait for answers before sending more"
            ));
            e.retryable = Some(true);
            e.retry_after_ms = Some(100);
            let hub = &self.ctx.hub;
            hub.metrics.observe(timing.0, timing.1.elapsed(), false);
            return self.respond(&id, Err(e));
        }
        self.in_flight += 1;
        let me = me.clone();
        let span = self.span.clone();
        tokio::spawn(
            async move {
                let result = match job {
                    Dispatch::Blocking(f) => tokio::task::spawn_blocking(f).await,
                    Dispatch::Async(fut) => {
                        tokio::spawn(fut.instrument(tracing::Span::current())).await
                    }
                    Dispatch::Done(r) => Ok(r),
                    Dispatch::Raw(r) => Ok(r.and_then(|s| {
                        serde_json::from_str(&s).map_err(|e| ErrorShape::unavailable(e.to_string()))
                    })),
                }
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "request job failed");
                    Err(ErrorShape::unavailable("internal error while answering"))
                });
                // A session that is gone just fails the cast.
                let _ = me.cast(SessionMsg::Reply { id, result, timing });
            }
            .instrument(span),
        );
    }

    /// Sends a response (the one path every response takes).
    fn respond(&mut self, id: &str, result: Result<Value, ErrorShape>) {
        let text = match result {
            Ok(payload) => frame::response_ok(id, payload),
            Err(e) => frame::response_err(id, &e),
        };
        self.send(text);
    }

    /// Queues a frame; a full buffer closes the socket 1008 "slow consumer".
    fn send(&mut self, text: String) {
        if self.out.text(text, MAX_BUFFERED_BYTES) == Queued::Full {
            self.slow_consumer();
        }
    }

    /// Delivers a broadcast with the next `seq`.
    fn deliver(&mut self, b: &Broadcast) {
        self.seq += 1;
        let text = frame::event(
            b.event,
            &b.payload,
            Some(self.seq),
            b.state_version.as_ref(),
        );
        if self.out.text(text, MAX_BUFFERED_BYTES) == Queued::Full && !b.drop_if_slow {
            self.slow_consumer();
        }
    }

    /// The client stopped reading: drop what is queued, close 1008, stop.
    fn slow_consumer(&mut self) {
        if self.close.is_some() {
            return;
        }
        let hub = &self.ctx.hub;
        Counters::bump(&hub.counters.slow_consumers);
        tracing::warn!(
            queued = self.out.queued(),
            "client is not reading; closing 1008"
        );
        hub.audit
            .record_detached(AuditEvent::slow_consumer(&self.conn, self.out.queued()));
        self.close = Some((1008, "slow consumer".into()));
        self.out.abort(1008, "slow consumer");
        self.stopped = true;
    }

    /// Queues a close frame and stops; the I/O task writes everything queued before it.
    fn close_with(&mut self, code: u16, reason: &str) {
        if self.close.is_none() {
            self.close = Some((code, reason.to_string()));
        }
        self.out.control(Out::Close(code, reason.to_string()));
        self.stopped = true;
    }
}

impl Drop for SessionState {
    fn drop(&mut self) {
        let hub = &self.ctx.hub;
        hub.registry.unregister(&self.conn.conn_id);
        let (code, reason) = self.close.clone().unwrap_or((1011, "session ended".into()));
        let mut ev = AuditEvent::conn_close(&self.conn, self.opened.elapsed(), code, reason)
            .with("framesIn", self.stats.frames_in.load(Ordering::Relaxed))
            .with("framesOut", self.stats.frames_out.load(Ordering::Relaxed));
        if let Phase::Ready(i) = &self.phase {
            ev = ev
                .with("clientId", i.client_id.as_str())
                .with("clientMode", i.client_mode.as_str())
                .with("clientVersion", i.client_version.as_str())
                .with("role", i.role.as_str());
            self.ctx.peers.presence.cast(PresenceMsg::Leave {
                conn_id: self.conn.conn_id.clone(),
            });
            if let Some(h) = &self.node {
                self.ctx.peers.nodes.cast(NodeMsg::Disconnected {
                    node_id: h.node_id.clone(),
                    conn_id: h.conn_id.clone(),
                });
            }
        }
        if let Some(origin) = &self.conn.origin {
            ev = ev.with("origin", origin.as_str());
        }
        hub.audit.record_detached(ev);
    }
}
