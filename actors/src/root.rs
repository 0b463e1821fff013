//! The root supervisor (one_for_one). Children, in start order: AuditLogger, Auth,
//! RateLimiter, Reloader, Presence, SessionManager, TunnelSupervisor, then one Listener per
//! address (none for `openclaw tunnel run`). All are permanent: a crashed
//! child is restarted under the same name after a jittered backoff; more than 5 restarts in
//! 30 s escalates (the root fails, the process exits non-zero, systemd restarts it).
//! Shutdown is ordered: stop accepting, close sessions (1012) within the grace period, then
//! stop the rest in reverse start order, audit last so it drains and syncs.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::audit::{self, AuditArgs, AuditEvent, AuditLoggerActor};
use crate::auth::{self, AuthActor, AuthArgs};
use crate::listener::{ListenerActor, ListenerArgs};
use crate::presence::{self, PresenceActor};
use crate::rate_limiter::{self, RateLimiterActor};
use crate::reloader::{self, ReloaderActor};
use crate::session_manager::{self, SessionManagerActor, SessionManagerMsg};
use crate::shared::Shared;
use crate::supervisor::{Backoff, ChildSpec, Decision, Intensity, Restart, Supervisor};
use crate::tunnel_supervisor::{self, TunnelSupervisorActor};

/// Registered name of the root.
pub const NAME: &str = "openclaw.root";

/// Restart budget of the root.
pub const INTENSITY: Intensity = Intensity {
    max_restarts: 5,
    period: Duration::from_secs(30),
};
/// Backoff between restarts of a root child.
pub const BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(50),
    max: Duration::from_secs(5),
    jitter: 0.3,
};

/// The root supervisor.
pub struct RootActor;

/// Start-up arguments.
pub struct RootArgs {
    /// Shared state.
    pub shared: Arc<Shared>,
    /// For (re)starting the audit logger.
    pub audit: AuditArgs,
}

/// Messages to the root.
pub enum RootMsg {
    /// Timer after a crash: start child `name` again.
    RestartChild(String),
    /// Graceful shutdown; replies when done (`true` if sessions closed within the grace).
    Shutdown {
        /// Reason for the `shutdown` event.
        reason: String,
        /// Answer.
        reply_to: RpcReplyPort<bool>,
    },
}

/// State.
pub struct RootState {
    args: RootArgs,
    sup: Supervisor,
    stopping: bool,
}

/// Reference to the root.
pub type RootRef = ActorRef<RootMsg>;

impl RootMsg {
    /// Message kind for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            RootMsg::RestartChild(_) => "RestartChild",
            RootMsg::Shutdown { .. } => "Shutdown",
        }
    }
}

fn listener_name(i: usize) -> String {
    format!("openclaw.listener.{i}")
}

fn specs(listeners: usize) -> Vec<ChildSpec> {
    let spec = |name: &str, secs| ChildSpec {
        name: name.to_string(),
        restart: Restart::Permanent,
        shutdown: Duration::from_secs(secs),
    };
    let mut v = vec![
        spec(audit::NAME, 15),
        spec(auth::NAME, 5),
        spec(rate_limiter::NAME, 5),
        spec(reloader::NAME, 5),
        spec(presence::NAME, 5),
        spec(session_manager::NAME, 5),
        spec(tunnel_supervisor::NAME, 10),
    ];
    for i in 0..listeners {
        v.push(spec(&listener_name(i), 5));
    }
    v
}

async fn spawn_child(
    name: &str,
    me: &ActorRef<RootMsg>,
    args: &RootArgs,
) -> Result<ActorCell, ActorProcessingErr> {
    let sup = me.get_cell();
    let n = Some(name.to_string());
    let shared = args.shared.clone();
    let cell = match name {
        audit::NAME => Actor::spawn_linked(n, AuditLoggerActor, args.audit.clone(), sup)
            .await?
            .0
            .get_cell(),
        auth::NAME => Actor::spawn_linked(n, AuthActor, AuthArgs { shared }, sup)
            .await?
            .0
            .get_cell(),
        rate_limiter::NAME => Actor::spawn_linked(n, RateLimiterActor, shared, sup)
            .await?
            .0
            .get_cell(),
        reloader::NAME => Actor::spawn_linked(n, ReloaderActor, shared, sup)
            .await?
            .0
            .get_cell(),
        presence::NAME => Actor::spawn_linked(n, PresenceActor, shared, sup)
            .await?
            .0
            .get_cell(),
        session_manager::NAME => Actor::spawn_linked(n, SessionManagerActor, shared, sup)
            .await?
            .0
            .get_cell(),
        tunnel_supervisor::NAME => Actor::spawn_linked(n, TunnelSupervisorActor, shared, sup)
            .await?
            .0
            .get_cell(),
        other => {
            let i: usize = other
                .rsplit('.')
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or("unknown child")?;
            let addr = shared.settings.listen[i];
            let la = ListenerArgs {
                addr,
                optional: shared.settings.optional_listen.contains(&addr),
                shared,
            };
            Actor::spawn_linked(n, ListenerActor, la, sup)
                .await?
                .0
                .get_cell()
        }
    };
    Ok(cell)
}

impl Actor for RootActor {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = RootArgs;

    async fn pre_start(
        &self,
        me: ActorRef<RootMsg>,
        args: RootArgs,
    ) -> Result<RootState, ActorProcessingErr> {
        let mut sup = Supervisor::new(
            "root",
            specs(args.shared.settings.listen.len()),
            INTENSITY,
            BACKOFF,
        );
        let names: Vec<String> = sup.specs().iter().map(|s| s.name.clone()).collect();
        for name in names {
            match spawn_child(&name, &me, &args).await {
                Ok(cell) => sup.started(&name, cell),
                Err(e) => {
                    // Start-up failure: stop what already runs, in reverse order.
                    sup.shutdown().await;
                    return Err(e);
                }
            }
        }
        Ok(RootState {
            args,
            sup,
            stopping: false,
        })
    }

    async fn handle(
        &self,
        me: ActorRef<RootMsg>,
        msg: RootMsg,
        st: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        tracing::trace!(actor = "root", msg = msg.kind(), "message");
        match msg {
            RootMsg::RestartChild(name) if !st.stopping => {
                match spawn_child(&name, &me, &st.args).await {
                    Ok(cell) => {
                        tracing::info!(child = %name, "child restarted");
                        st.args
                            .shared
                            .audit
                            .record(AuditEvent::new("actor.restarted").with("actor", name.as_str()))
                            .await;
                        st.sup.started(&name, cell);
                    }
                    Err(e) => {
                        // pre_start failures never reach handle_supervisor_evt: retry at the cap.
                        tracing::error!(child = %name, error = %e, "child restart failed; retrying");
                        me.send_after(BACKOFF.max, move || RootMsg::RestartChild(name));
                    }
                }
            }
            RootMsg::RestartChild(_) => {}
            RootMsg::Shutdown { reason, reply_to } => {
                st.stopping = true;
                let clean = shutdown(st, &reason).await;
                let _ = reply_to.send(clean);
                me.stop(Some("shutdown".into()));
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        me: ActorRef<RootMsg>,
        evt: SupervisionEvent,
        st: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        if st.stopping {
            return Ok(());
        }
        match st.sup.on_event(&evt, Instant::now()) {
            Decision::Restart { name, delay, .. } => {
                let ev = AuditEvent::new("actor.failed")
                    .with("actor", name.as_str())
                    .with("restartInMs", delay.as_millis() as u64);
                st.args.shared.audit.record(ev).await;
                me.send_after(delay, move || RootMsg::RestartChild(name));
            }
            Decision::Escalate(why) => {
                tracing::error!(%why, "restart intensity exceeded; the gateway stops");
                st.stopping = true;
                st.sup.shutdown().await;
                return Err(why.into());
            }
            Decision::Removed { .. } | Decision::Ignore => {}
        }
        Ok(())
    }
}

async fn shutdown(st: &mut RootState, reason: &str) -> bool {
    let shared = st.args.shared.clone();
    shared.shutting_down.store(true, Ordering::Relaxed);
    let grace = shared.settings.shutdown_grace;
    // 1. stop accepting
    for i in 0..shared.settings.listen.len() {
        if let Some(l) = ractor::registry::where_is(listener_name(i)) {
            let _ = l
                .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(2)))
                .await;
        }
    }
    // 2. close sessions with 1012 within the grace period
    let mut clean = true;
    if let Some(cell) = ractor::registry::where_is(session_manager::NAME) {
        let mgr: ActorRef<SessionManagerMsg> = cell.into();
        let left = mgr
            .call(
                |reply_to| SessionManagerMsg::Shutdown {
                    reason: reason.to_string(),
                    grace,
                    reply_to,
                },
                Some(grace + Duration::from_secs(1)),
            )
            .await;
        clean = matches!(left, Ok(ractor::rpc::CallResult::Success(0)));
    }
    let ev = AuditEvent::new("gateway.stop")
        .with("reason", reason)
        .with("clean", clean);
    shared.audit.record(ev).await;
    // 3. the rest in reverse order; the audit logger drains and syncs in its post_stop
    let killed = st.sup.shutdown().await;
    if !killed.is_empty() {
        tracing::warn!(?killed, "children killed after their shutdown timeout");
    }
    clean && killed.is_empty()
}
