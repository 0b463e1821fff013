//! The TunnelSupervisor actor: one permanent Tunnel child per configured tunnel, under the
//! shared supervision helper with its own restart budget (10 in 60 s), so one bad tunnel
//! cannot exhaust the root's. Forwards operator restarts, and mirrors the status table to
//! `<stateDir>/tunnels/status.json` for `openclaw tunnel status` when no gateway answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::shared::{lock, Shared};
use crate::supervisor::{Backoff, ChildSpec, Decision, Intensity, Restart, Supervisor};
use crate::tunnel::{actor_name, TunnelActor, TunnelArgs, TunnelMsg};

/// Registered name.
pub const NAME: &str = "openclaw.tunnels";
/// Restart budget for tunnel actors.
pub const INTENSITY: Intensity = Intensity {
    max_restarts: 10,
    period: Duration::from_secs(60),
};

/// The supervisor.
pub struct TunnelSupervisorActor;

/// Messages.
pub enum TunnelSupMsg {
    /// Timer after a crash: start the tunnel actor again.
    RestartChild(String),
    /// Operator: restart tunnel `name` now; replies whether it exists.
    Restart {
        /// Tunnel name.
        name: String,
        /// Answer.
        reply_to: RpcReplyPort<bool>,
    },
    /// Timer: mirror the status table to disk when it changed.
    Persist,
}

/// State.
pub struct TunnelSupState {
    shared: Arc<Shared>,
    sup: Supervisor,
    last_written: String,
}

/// Reference.
pub type TunnelSupRef = ActorRef<TunnelSupMsg>;

impl TunnelSupMsg {
    /// Message kind for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            TunnelSupMsg::RestartChild(_) => "RestartChild",
            TunnelSupMsg::Restart { .. } => "Restart",
            TunnelSupMsg::Persist => "Persist",
        }
    }
}

async fn spawn_tunnel(
    me: &ActorRef<TunnelSupMsg>,
    shared: &Arc<Shared>,
    name: &str,
) -> Result<ractor::ActorCell, ActorProcessingErr> {
    let spec = shared
        .settings
        .tunnels
        .iter()
        .find(|t| actor_name(&t.name) == name)
        .cloned()
        .ok_or("unknown tunnel")?;
    let args = TunnelArgs {
        spec,
        shared: shared.clone(),
    };
    Ok(
        Actor::spawn_linked(Some(name.to_string()), TunnelActor, args, me.get_cell())
            .await?
            .0
            .get_cell(),
    )
}

impl Actor for TunnelSupervisorActor {
    type Msg = TunnelSupMsg;
    type State = TunnelSupState;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        me: ActorRef<TunnelSupMsg>,
        shared: Arc<Shared>,
    ) -> Result<TunnelSupState, ActorProcessingErr> {
        let specs = shared
            .settings
            .tunnels
            .iter()
            .map(|t| ChildSpec {
                name: actor_name(&t.name),
                restart: Restart::Permanent,
                shutdown: Duration::from_secs(5),
            })
            .collect();
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            jitter: 0.3,
        };
        let mut sup = Supervisor::new("tunnels", specs, INTENSITY, backoff);
        let names: Vec<String> = sup.specs().iter().map(|s| s.name.clone()).collect();
        for n in names {
            let cell = spawn_tunnel(&me, &shared, &n).await?;
            sup.started(&n, cell);
        }
        me.send_interval(Duration::from_secs(1), || TunnelSupMsg::Persist);
        Ok(TunnelSupState {
            shared,
            sup,
            last_written: String::new(),
        })
    }

    async fn handle(
        &self,
        me: ActorRef<TunnelSupMsg>,
        msg: TunnelSupMsg,
        st: &mut TunnelSupState,
    ) -> Result<(), ActorProcessingErr> {
        tracing::trace!(actor = "tunnels", msg = msg.kind(), "message");
        match msg {
            TunnelSupMsg::RestartChild(name) => match spawn_tunnel(&me, &st.shared, &name).await {
                Ok(cell) => st.sup.started(&name, cell),
                Err(e) => {
                    tracing::error!(tunnel = %name, error = %e, "tunnel actor restart failed; retrying");
                    me.send_after(Duration::from_secs(5), move || {
                        TunnelSupMsg::RestartChild(name)
                    });
                }
            },
            TunnelSupMsg::Restart { name, reply_to } => {
                let found = match ractor::registry::where_is(actor_name(&name)) {
                    Some(cell) => {
                        let t: ActorRef<TunnelMsg> = cell.into();
                        t.cast(TunnelMsg::Restart).is_ok()
                    }
                    None => false,
                };
                let _ = reply_to.send(found);
            }
            TunnelSupMsg::Persist => persist(st),
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        me: ActorRef<TunnelSupMsg>,
        evt: SupervisionEvent,
        st: &mut TunnelSupState,
    ) -> Result<(), ActorProcessingErr> {
        match st.sup.on_event(&evt, Instant::now()) {
            Decision::Restart { name, delay, .. } => {
                let ev = crate::audit::AuditEvent::new("tunnel.actor_restarted")
                    .with("actor", name.as_str())
                    .with("inMs", delay.as_millis() as u64);
                st.shared.audit.record(ev).await;
                me.send_after(delay, move || TunnelSupMsg::RestartChild(name));
            }
            Decision::Escalate(why) => return Err(why.into()),
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _me: ActorRef<TunnelSupMsg>,
        st: &mut TunnelSupState,
    ) -> Result<(), ActorProcessingErr> {
        st.sup.shutdown().await;
        persist(st);
        Ok(())
    }
}

fn persist(st: &mut TunnelSupState) {
    if st.shared.settings.tunnels.is_empty() {
        return;
    }
    let rows: Vec<serde_json::Value> = lock(&st.shared.tunnels).values().cloned().collect();
    let doc = serde_json::json!({"pid": std::process::id(), "writtenAt": crate::shared::now_ms(), "tunnels": rows});
    let text = doc.to_string();
    if text == st.last_written {
        return;
    }
    st.last_written = text.clone();
    let path = st
        .shared
        .settings
        .paths
        .state_dir
        .join("tunnels")
        .join("status.json");
    tokio::task::spawn_blocking(move || crate::state::write_private_atomic(&path, text.as_bytes()));
}
