//! The root supervisor (one_for_one). Its children are data: [`children`] lists one
//! [`ChildSpec`] per child, in start order — AuditLogger, Auth, RateLimiter, Reloader,
//! Presence, SessionManager, NodeRegistry, TunnelSupervisor, the TLS reloader (with TLS on), then one
//! Listener per address (none for
//! `openclaw tunnel run`). Each spec carries its start function and the typed slot it fills,
//! so a restarted child is reachable again at once. All are permanent: a crashed child is
//! restarted after a jittered backoff; more than 5 restarts in 30 s escalates (the root
//! fails, the process exits non-zero, systemd restarts it). Shutdown is ordered: mark
//! draining (new upgrades get 503, `/readyz` says `draining`), close sessions (1012) within
//! the grace period, stop accepting, then stop the rest in reverse start order, audit last
//! so it drains and syncs.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::audit::{self, AuditArgs, AuditEvent};
use crate::auth::{self, AuthArgs};
use crate::config::reloader::{self, ReloaderArgs};
use crate::guard::limiter_actor;
use crate::listener::{self, http::HttpCtx, ListenerArgs};
use crate::nodes::{self, NodeArgs};
use crate::presence::{self, PresenceArgs};
use crate::session::manager::{self, SessionManagerArgs, SessionManagerMsg};
use crate::shared::Hub;
use crate::supervisor::{Backoff, ChildSpec, Decision, Intensity, Restart, Supervisor};
use crate::tailscale::{self, TailscaleArgs};
use crate::tls::reloader::{self as tls_reloader, TlsReloaderArgs};
use crate::tunnel::supervisor::{self as tunnel_sup, TunnelSupArgs};
use crate::tunnel::TunnelEnv;
use crate::wiring::Peers;

/// Restart budget of the root.
pub const INTENSITY: Intensity = Intensity {
    max_restarts: 5,
    period: Duration::from_secs(30),
};
/// Backoff between restarts of a root child.
pub const BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(50),
    max: Duration::from_secs(5),
    multiplier: 2.0,
    jitter: 0.3,
};

/// The root supervisor.
pub struct RootActor;

/// Start-up arguments.
pub struct RootArgs {
    /// Every shared part (each child gets the parts it uses).
    pub hub: Hub,
    /// The slots the root fills as it starts children.
    pub peers: Peers,
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
    hub: Hub,
    peers: Peers,
    sup: Supervisor,
    listeners: Vec<String>,
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

/// The root's children in start order, and the names of the listeners among them.
pub fn children(args: &RootArgs) -> (Vec<ChildSpec>, Vec<String>) {
    let (hub, peers) = (&args.hub, &args.peers);
    let s = hub.settings();
    let secs = Duration::from_secs;
    let p = Restart::Permanent;
    let mut v = vec![
        ChildSpec::new("audit", p, secs(15), args.audit.clone(), None, audit::spawn),
        ChildSpec::new(
            "auth",
            p,
            secs(5),
            AuthArgs::from_hub(hub, peers),
            Some(peers.auth.clone()),
            auth::spawn,
        ),
        ChildSpec::new(
            "ratelimiter",
            p,
            secs(5),
            hub.limiter.clone(),
            Some(peers.limiter.clone()),
            limiter_actor::spawn,
        ),
        ChildSpec::new(
            "reloader",
            p,
            secs(5),
            ReloaderArgs::from_hub(hub, peers),
            Some(peers.reloader.clone()),
            reloader::spawn,
        ),
        ChildSpec::new(
            "presence",
            p,
            secs(5),
            PresenceArgs::from_hub(hub),
            Some(peers.presence.clone()),
            presence::spawn,
        ),
        ChildSpec::new(
            "sessions",
            p,
            secs(5),
            SessionManagerArgs {
                hub: hub.clone(),
                peers: peers.clone(),
            },
            Some(peers.sessions.clone()),
            manager::spawn,
        ),
        ChildSpec::new(
            "nodes",
            p,
            secs(5),
            NodeArgs::from_hub(hub, peers),
            Some(peers.nodes.clone()),
            nodes::spawn,
        ),
        ChildSpec::new(
            "tunnels",
            p,
            secs(10),
            TunnelSupArgs {
                tunnels: s.tunnels.clone(),
                env: TunnelEnv::from_hub(hub),
            },
            Some(peers.tunnels.clone()),
            tunnel_sup::spawn,
        ),
    ];
    if let Some(state) = &hub.tls {
        let watch = s
            .file
            .gateway
            .reload
            .as_ref()
            .and_then(|r| r.mode.as_deref())
            != Some("off");
        let args = TlsReloaderArgs {
            state: state.clone(),
            audit: hub.audit.clone(),
            watch,
        };
        let slot = Some(peers.tls.clone());
        v.push(ChildSpec::new(
            "tls",
            p,
            secs(5),
            args,
            slot,
            tls_reloader::spawn,
        ));
    }
    let listeners = listeners(hub, peers);
    let names = listeners.iter().map(|c| c.name.clone()).collect();
    v.extend(listeners);
    // After the listeners (it reads the gateway port for route adoption); stopped first.
    if let Some(ts) = &s.tailscale {
        v.push(ChildSpec::new(
            "tailscale",
            p,
            secs(10),
            TailscaleArgs::from_hub(hub, peers, ts.clone()),
            Some(peers.tailscale.clone()),
            tailscale::spawn,
        ));
    }
    (v, names)
}

/// One Listener per address to bind, sharing one request-handling context.
fn listeners(hub: &Hub, peers: &Peers) -> Vec<ChildSpec> {
    let s = hub.settings();
    let http = std::sync::Arc::new(HttpCtx {
        hub: hub.clone(),
        sessions: peers.sessions.clone(),
        managed: None,
    });
    let spec = |(i, addr): (usize, &std::net::SocketAddr)| {
        let args = ListenerArgs {
            addr: *addr,
            optional: s.optional_listen.contains(addr),
            http: http.clone(),
        };
        let (name, restart, shutdown) = (
            format!("listener.{i}"),
            Restart::Permanent,
            Duration::from_secs(5),
        );
        ChildSpec::new(name, restart, shutdown, args, None, listener::spawn)
    };
    s.listen.iter().enumerate().map(spec).collect()
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
        let (specs, listeners) = children(&args);
        let mut sup = Supervisor::new("root", specs, INTENSITY, BACKOFF);
        sup.start_all(&me.get_cell()).await?;
        Ok(RootState {
            hub: args.hub,
            peers: args.peers,
            sup,
            listeners,
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
                match st.sup.start(&name, &me.get_cell()).await {
                    Ok(()) => {
                        st.hub.metrics.actor_restart(&name);
                        tracing::info!(child = %name, "child restarted");
                        st.hub
                            .audit
                            .record(AuditEvent::actor_restarted(&name))
                            .await;
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
        match st
            .sup
            .on_event(&evt, tokio::time::Instant::now().into_std())
        {
            Decision::Restart { name, delay, .. } => {
                st.hub
                    .audit
                    .record(AuditEvent::actor_failed(&name, delay))
                    .await;
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
    // 1. refuse new connections (503) and report draining on /readyz and /startupz; the
    //    listeners keep answering probes while the sessions drain
    st.hub.registry.shutting_down.store(true, Ordering::Relaxed);
    let grace = st.hub.settings().shutdown_grace;
    // 2. close sessions with 1012 within the grace period
    let left = st
        .peers
        .sessions
        .call(
            |reply_to| SessionManagerMsg::Shutdown {
                reason: reason.to_string(),
                grace,
                reply_to,
            },
            grace + Duration::from_secs(1),
        )
        .await;
    let clean = matches!(left, Ok(0));
    // 3. stop accepting
    for name in &st.listeners {
        st.sup.stop_child(name).await;
    }
    st.hub
        .audit
        .record(AuditEvent::gateway_stop(reason, clean))
        .await;
    // 4. the rest in reverse order; the audit logger drains and syncs in its post_stop
    let killed = st.sup.shutdown().await;
    if !killed.is_empty() {
        tracing::warn!(?killed, "children killed after their shutdown timeout");
    }
    clean && killed.is_empty()
}
