//! The SessionManager actor: starts one Session (a light actor, see [`super`]) per upgraded
//! WebSocket as a *temporary* child: each session reports its end with
//! [`SessionManagerMsg::Ended`], and a session that ends or crashes is only untracked, never
//! restarted, and never stops the manager or a sibling. A crash is counted and audited; its
//! socket was already closed by the session's `Drop`. On shutdown it tells every session to
//! close 1012 and waits up to the grace period.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::io::WsStream;
use super::{Admitted, Exit, SessionArgs, SessionCtx, SessionMsg, SessionRef};
use crate::audit::AuditEvent;
use crate::shared::{ConnFacts, Counters, Hub};
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
    /// A session ended (sent by its task after its state was dropped).
    Ended {
        /// The manager's number for it.
        id: u64,
        /// Its connection id.
        conn_id: String,
        /// How.
        exit: Exit,
    },
}

/// State.
pub struct SessionManagerState {
    ctx: Arc<SessionCtx>,
    sessions: HashMap<u64, (String, SessionRef)>,
    next_id: u64,
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
            SessionManagerMsg::Ended { .. } => "Ended",
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
        let ctx = Arc::new(SessionCtx {
            hub: args.hub,
            peers: args.peers,
        });
        Ok(SessionManagerState {
            ctx,
            sessions: HashMap::new(),
            next_id: 0,
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
            SessionManagerMsg::Open(conn) => open(&me, st, *conn),
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
                        if tokio::time::timeout(remaining, s.ended()).await.is_err() {
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
            SessionManagerMsg::Ended { id, conn_id, exit } => {
                st.sessions.remove(&id);
                if let Exit::Crashed(error) = exit {
                    let hub = &st.ctx.hub;
                    Counters::bump(&hub.counters.sessions_crashed);
                    tracing::error!(conn_id = %conn_id, error = %error, "session crashed; its socket was closed, the gateway carries on");
                    hub.audit
                        .record(AuditEvent::session_crashed(&conn_id, error))
                        .await;
                }
            }
        }
        Ok(())
    }
}

fn open(me: &ActorRef<SessionManagerMsg>, st: &mut SessionManagerState, conn: NewConnection) {
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
    st.next_id += 1;
    let id = st.next_id;
    let manager = me.clone();
    let name = conn_id.clone();
    let session = super::spawn(args, move |exit| {
        // A manager that is gone (gateway stopping) has nothing left to untrack.
        let _ = manager.cast(SessionManagerMsg::Ended {
            id,
            conn_id: name,
            exit,
        });
    });
    st.sessions.insert(id, (conn_id, session));
}
