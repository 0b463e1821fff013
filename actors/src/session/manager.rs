//! The SessionManager actor: spawns one Session actor per upgraded WebSocket as a
//! *temporary* linked child, and overrides `handle_supervisor_evt` so a session that ends or
//! crashes is only untracked (ractor's default would stop the manager and every sibling).
//! A crash is counted and audited; its socket was already closed by the session's `Drop`.
//! On shutdown it tells every session to close 1012 and waits up to the grace period.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use super::io::WsStream;
use super::{Admitted, SessionArgs, SessionCtx, SessionMsg, SessionRef};
use crate::audit::AuditEvent;
use crate::shared::{ConnFacts, Counters, Hub};
use crate::supervisor::{Backoff, Decision, Intensity, Supervisor};
use crate::wiring::Peers;

/// The session manager.
pub struct SessionManagerActor;

/// Start-up arguments: what every session it starts gets.
#[derive(Clone)]
pub struct SessionManagerArgs {
    /// Shared state.
    pub hub: Hub,
    /// Typed references to the long-lived actors.
    pub peers: Peers,
}

/// An upgraded connection waiting for its session.
pub struct NewConnection {
    /// What the upgrade learned (one `Arc` to the session and to Auth).
    pub facts: Arc<ConnFacts>,
    /// The socket.
    pub ws: WsStream,
    /// Frame-size limit shared with the socket guard.
    pub frame_limit: Arc<AtomicUsize>,
    /// Admission permits and limit key.
    pub admitted: Admitted,
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
    /// The NodeRegistry restarted: every node session announces itself again to it.
    Rejoin(crate::nodes::NodeRef),
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
    ctx: Arc<SessionCtx>,
    sup: Supervisor,
    sessions: HashMap<ractor::ActorId, (String, SessionRef)>,
}

/// Reference to the session manager.
pub type SessionManagerRef = ActorRef<SessionManagerMsg>;

/// Starts the session manager linked to `supervisor`.
pub async fn spawn(
    args: SessionManagerArgs,
    supervisor: ActorCell,
) -> Result<SessionManagerRef, ractor::SpawnErr> {
    Ok(
        Actor::spawn_linked(None, SessionManagerActor, args, supervisor)
            .await?
            .0,
    )
}

impl SessionManagerMsg {
    /// Message kind for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            SessionManagerMsg::Open(_) => "Open",
            SessionManagerMsg::Shutdown { .. } => "Shutdown",
            SessionManagerMsg::Close { .. } => "Close",
            SessionManagerMsg::Rejoin(_) => "Rejoin",
        }
    }
}

impl Actor for SessionManagerActor {
    type Msg = SessionManagerMsg;
    type State = SessionManagerState;
    type Arguments = SessionManagerArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<Self::Msg>,
        args: SessionManagerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        // Sessions are temporary: the intensity window never triggers for them.
        let sup = Supervisor::new(
            "sessions",
            Vec::new(),
            Intensity {
                max_restarts: usize::MAX,
                period: Duration::from_secs(1),
            },
            Backoff::NONE,
        );
        let ctx = Arc::new(SessionCtx {
            hub: args.hub,
            peers: args.peers,
        });
        Ok(SessionManagerState {
            ctx,
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
                let sessions: Vec<SessionRef> =
                    st.sessions.values().map(|(_, s)| s.clone()).collect();
                for s in &sessions {
                    let _ = s.cast(SessionMsg::Shutdown {
                        reason: reason.clone(),
                    });
                }
                tokio::spawn(async move {
                    let deadline = tokio::time::Instant::now() + grace;
                    let mut left = 0;
                    for s in sessions {
                        let remaining =
                            deadline.saturating_duration_since(tokio::time::Instant::now());
                        if s.get_cell().wait(Some(remaining)).await.is_err() {
                            left += 1;
                        }
                    }
                    let _ = reply_to.send(left);
                });
            }
            SessionManagerMsg::Rejoin(nodes) => {
                for (_, s) in st.sessions.values() {
                    let _ = s.cast(SessionMsg::Rejoin(nodes.clone()));
                }
            }
            SessionManagerMsg::Close {
                conn_ids,
                code,
                reason,
            } => {
                for (conn_id, s) in st.sessions.values() {
                    if conn_ids.contains(conn_id) {
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
        if let Decision::Removed { name, failed } = st
            .sup
            .on_event(&evt, tokio::time::Instant::now().into_std())
        {
            if let SupervisionEvent::ActorFailed(cell, _)
            | SupervisionEvent::ActorTerminated(cell, ..) = &evt
            {
                st.sessions.remove(&cell.get_id());
            }
            if failed {
                let hub = &st.ctx.hub;
                Counters::bump(&hub.counters.sessions_crashed);
                tracing::error!(conn_id = %name, error = ?error, "session crashed; its socket was closed, the gateway carries on");
                let ev = AuditEvent::session_crashed(&name, error.unwrap_or_default());
                hub.audit.record(ev).await;
            }
        }
        Ok(())
    }
}

async fn open(me: &ActorRef<SessionManagerMsg>, st: &mut SessionManagerState, conn: NewConnection) {
    if st.ctx.hub.registry.stopping() {
        return; // dropping the socket closes it
    }
    let conn_id = conn.facts.conn_id.clone();
    let args = SessionArgs {
        conn: conn.facts,
        ws: conn.ws,
        frame_limit: conn.frame_limit,
        admitted: conn.admitted,
        ctx: st.ctx.clone(),
    };
    match super::spawn(args, me.get_cell()).await {
        Ok(session) => {
            st.sup.started(&conn_id, session.get_cell());
            st.sessions.insert(session.get_id(), (conn_id, session));
        }
        Err(e) => tracing::error!(conn_id = %conn_id, error = %e, "could not start a session"),
    }
}
