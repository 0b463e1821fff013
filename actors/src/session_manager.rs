//! The SessionManager actor: spawns one Session actor per upgraded WebSocket as a
//! *temporary* linked child, and overrides `handle_supervisor_evt` so a session that ends or
//! crashes is only untracked (ractor's default would stop the manager and every sibling).
//! A crash is counted and audited; its socket was already closed by the session's `Drop`.
//! On shutdown it tells every session to close 1012 and waits up to the grace period.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::audit::AuditEvent;
use crate::session::io::WsStream;
use crate::session::{RequestMeta, SessionActor, SessionArgs, SessionMsg};
use crate::shared::Shared;
use crate::supervisor::{Backoff, Decision, Intensity, Supervisor};

/// Registered name of the session manager.
pub const NAME: &str = "openclaw.sessions";

/// The session manager.
pub struct SessionManagerActor;

/// An upgraded connection waiting for its session.
pub struct NewConnection {
    /// TCP peer.
    pub peer: SocketAddr,
    /// The socket.
    pub ws: WsStream,
    /// Frame-size limit shared with the socket guard.
    pub frame_limit: Arc<AtomicUsize>,
    /// Upgrade request details.
    pub meta: RequestMeta,
    /// Admission permits and limit key.
    pub admitted: crate::session::Admitted,
}

/// Messages to the session manager.
pub enum SessionManagerMsg {
    /// Start a session for this connection.
    Open(Box<NewConnection>),
    /// Close every session (1012) and reply with how many were still open after `grace`.
    Shutdown {
        /// Reason for the `shutdown` event.
        reason: String,
        /// How long to wait.
        grace: Duration,
        /// Answer: sessions still alive.
        reply_to: RpcReplyPort<usize>,
    },
    /// Close these connections with `code` and `reason` (e.g. 4001 "device removed");
    /// ids no longer open are ignored.
    Close {
        /// Connection ids.
        conn_ids: Vec<String>,
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// State.
pub struct SessionManagerState {
    shared: Arc<Shared>,
    sup: Supervisor,
    sessions: HashMap<ractor::ActorId, (String, ActorCell)>,
}

/// Reference to the session manager.
pub type SessionManagerRef = ActorRef<SessionManagerMsg>;

impl SessionManagerMsg {
    /// Message kind for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            SessionManagerMsg::Open(_) => "Open",
            SessionManagerMsg::Shutdown { .. } => "Shutdown",
            SessionManagerMsg::Close { .. } => "Close",
        }
    }
}

impl Actor for SessionManagerActor {
    type Msg = SessionManagerMsg;
    type State = SessionManagerState;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        _me: ActorRef<Self::Msg>,
        shared: Arc<Shared>,
    ) -> Result<Self::State, ActorProcessingErr> {
        // Sessions are temporary: the intensity window never triggers for them.
        let sup = Supervisor::new(
            "sessions",
            Vec::new(),
            Intensity {
                max_restarts: usize::MAX,
                period: Duration::from_secs(1),
            },
            Backoff {
                initial: Duration::ZERO,
                max: Duration::ZERO,
                jitter: 0.0,
            },
        );
        Ok(SessionManagerState {
            shared,
            sup,
            sessions: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        me: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        tracing::trace!(actor = "sessions", msg = msg.kind(), "message");
        match msg {
            SessionManagerMsg::Open(conn) => open(&me, st, *conn).await,
            SessionManagerMsg::Shutdown {
                reason,
                grace,
                reply_to,
            } => {
                let cells: Vec<ActorCell> = st.sessions.values().map(|(_, c)| c.clone()).collect();
                for c in &cells {
                    let s: ActorRef<SessionMsg> = c.clone().into();
                    let _ = s.cast(SessionMsg::Shutdown {
                        reason: reason.clone(),
                    });
                }
                tokio::spawn(async move {
                    let deadline = Instant::now() + grace;
                    let mut left = 0;
                    for c in cells {
                        let remaining = deadline.saturating_duration_since(Instant::now());
                        if c.wait(Some(remaining)).await.is_err() {
                            left += 1;
                        }
                    }
                    let _ = reply_to.send(left);
                });
            }
            SessionManagerMsg::Close {
                conn_ids,
                code,
                reason,
            } => {
                for (conn_id, cell) in st.sessions.values() {
                    if conn_ids.contains(conn_id) {
                        let s: ActorRef<SessionMsg> = cell.clone().into();
                        let reason = reason.clone();
                        let _ = s.cast(SessionMsg::Close { code, reason });
                    }
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _me: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let error = match &evt {
            SupervisionEvent::ActorFailed(_, e) => Some(e.to_string()),
            _ => None,
        };
        if let Decision::Removed { name, failed } = st.sup.on_event(&evt, Instant::now()) {
            if let SupervisionEvent::ActorFailed(cell, _)
            | SupervisionEvent::ActorTerminated(cell, ..) = &evt
            {
                st.sessions.remove(&cell.get_id());
            }
            if failed {
                st.shared
                    .counters
                    .sessions_crashed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(conn_id = %name, error = ?error, "session crashed; its socket was closed, the gateway carries on");
                let ev = AuditEvent::new("session.crashed")
                    .with("connId", name.as_str())
                    .with("error", error.unwrap_or_default());
                st.shared.audit.record(ev).await;
            }
        }
        Ok(())
    }
}

async fn open(me: &ActorRef<SessionManagerMsg>, st: &mut SessionManagerState, conn: NewConnection) {
    if st.shared.shutting_down.load(Ordering::Relaxed) {
        return; // dropping the socket closes it
    }
    let conn_id = uuid::Uuid::new_v4().to_string();
    let args = SessionArgs {
        conn_id: conn_id.clone(),
        peer: conn.peer,
        ws: conn.ws,
        frame_limit: conn.frame_limit,
        shared: st.shared.clone(),
        meta: conn.meta,
        admitted: conn.admitted,
    };
    match Actor::spawn_linked(None, SessionActor, args, me.get_cell()).await {
        Ok((session, _)) => {
            st.sup.started(&conn_id, session.get_cell());
            st.sessions
                .insert(session.get_id(), (conn_id, session.get_cell()));
        }
        Err(e) => tracing::error!(conn_id = %conn_id, error = %e, "could not start a session"),
    }
}
