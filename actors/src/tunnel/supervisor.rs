//! The TunnelSupervisor actor: one permanent Tunnel child per configured tunnel, under the
//! shared supervision helper with its own restart budget (10 in 60 s), so one bad tunnel
//! cannot exhaust the root's. Forwards operator restarts to the tunnel's current
//! incarnation (a typed slot per tunnel, refilled on each restart), and mirrors the status
//! table to `<stateDir>/tunnels/status.json` for `openclaw tunnel status` when no gateway
//! answers.

use std::collections::BTreeMap;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use super::{TunnelArgs, TunnelEnv, TunnelMsg};
use crate::audit::AuditEvent;
use crate::config::tunnels::TunnelSpec;
use crate::supervisor::{Backoff, ChildSpec, Decision, Intensity, Restart, Supervisor};
use crate::wiring::Slot;

/// Restart budget for tunnel actors.
pub const INTENSITY: Intensity = Intensity {
    max_restarts: 10,
    period: Duration::from_secs(60),
};
/// Backoff between restarts of a crashed tunnel actor (not of ssh: that is the tunnel's own).
pub const BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(100),
    max: Duration::from_secs(10),
    multiplier: 2.0,
    jitter: 0.3,
};

/// The supervisor.
/// How often the status file is refreshed (written only when a row changed).
const PERSIST_EVERY: Duration = Duration::from_millis(250);

pub struct TunnelSupervisorActor;

/// Start-up arguments.
#[derive(Clone)]
pub struct TunnelSupArgs {
    /// The tunnels to run.
    pub tunnels: Vec<TunnelSpec>,
    /// Status table, audit, state directory.
    pub env: TunnelEnv,
}

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
    /// Config reload: run exactly these tunnels. Tunnels that are gone stop (their ssh is
    /// killed), new ones start, changed ones restart; unchanged ones are not touched.
    /// Replies `{added, removed, changed}` (names).
    Reconfigure {
        /// The tunnels now configured.
        tunnels: Vec<TunnelSpec>,
        /// Answer.
        reply_to: RpcReplyPort<serde_json::Value>,
    },
    /// Test-only: make tunnel `name`'s actor panic; replies whether it exists.
    #[cfg(feature = "fault-injection")]
    Panic {
        /// Tunnel name.
        name: String,
        /// Answer.
        reply_to: RpcReplyPort<bool>,
    },
}

/// State.
pub struct TunnelSupState {
    env: TunnelEnv,
    configured: bool,
    sup: Supervisor,
    /// The current incarnation of each tunnel actor, by tunnel name.
    slots: BTreeMap<String, Slot<TunnelMsg>>,
    /// The running configuration of each tunnel, by name.
    specs: BTreeMap<String, TunnelSpec>,
    last_written: String,
}

/// Reference.
pub type TunnelSupRef = ActorRef<TunnelSupMsg>;

/// Starts the tunnel supervisor linked to `supervisor`.
pub async fn spawn(
    args: TunnelSupArgs,
    supervisor: ActorCell,
) -> Result<TunnelSupRef, ractor::SpawnErr> {
    Ok(
        Actor::spawn_linked(None, TunnelSupervisorActor, args, supervisor)
            .await?
            .0,
    )
}

impl TunnelSupMsg {
    /// Message kind for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            TunnelSupMsg::RestartChild(_) => "RestartChild",
            TunnelSupMsg::Restart { .. } => "Restart",
            TunnelSupMsg::Persist => "Persist",
            TunnelSupMsg::Reconfigure { .. } => "Reconfigure",
            #[cfg(feature = "fault-injection")]
            TunnelSupMsg::Panic { .. } => "Panic",
        }
    }
}

impl Actor for TunnelSupervisorActor {
    type Msg = TunnelSupMsg;
    type State = TunnelSupState;
    type Arguments = TunnelSupArgs;

    async fn pre_start(
        &self,
        me: ActorRef<TunnelSupMsg>,
        args: TunnelSupArgs,
    ) -> Result<TunnelSupState, ActorProcessingErr> {
        let mut slots = BTreeMap::new();
        let specs: Vec<ChildSpec> = args
            .tunnels
            .iter()
            .map(|t| child_spec(t, &args.env, &mut slots))
            .collect();
        let mut sup = Supervisor::new("tunnels", specs, INTENSITY, BACKOFF);
        sup.start_all(&me.get_cell()).await?;
        // Written at start (so `openclaw tunnel status` has an answer at once), then within
        // PERSIST_EVERY of every state change (only when the rows changed).
        me.send_interval(PERSIST_EVERY, || TunnelSupMsg::Persist);
        let mut st = TunnelSupState {
            env: args.env,
            configured: !args.tunnels.is_empty(),
            sup,
            slots,
            specs: args
                .tunnels
                .iter()
                .map(|t| (t.name.clone(), t.clone()))
                .collect(),
            last_written: String::new(),
        };
        // Rows for tunnels whose actor has not published one yet.
        for name in st.specs.keys() {
            if !st
                .env
                .table
                .rows()
                .iter()
                .any(|r| r["name"] == name.as_str())
            {
                let row = serde_json::json!({"name": name, "state": "starting", "restarts": 0});
                st.env.table.set(name, row);
            }
        }
        persist(&mut st);
        Ok(st)
    }

    async fn handle(
        &self,
        me: ActorRef<TunnelSupMsg>,
        msg: TunnelSupMsg,
        st: &mut TunnelSupState,
    ) -> Result<(), ActorProcessingErr> {
        tracing::trace!(actor = "tunnels", msg = msg.kind(), "message");
        match msg {
            TunnelSupMsg::RestartChild(name) => {
                if let Err(e) = st.sup.start(&name, &me.get_cell()).await {
                    tracing::error!(tunnel = %name, error = %e, "tunnel actor restart failed; retrying");
                    me.send_after(BACKOFF.max, move || TunnelSupMsg::RestartChild(name));
                }
            }
            TunnelSupMsg::Restart { name, reply_to } => {
                let found = st
                    .slots
                    .get(&name)
                    .is_some_and(|s| s.cast(TunnelMsg::Restart));
                let _ = reply_to.send(found);
            }
            TunnelSupMsg::Persist => persist(st),
            TunnelSupMsg::Reconfigure { tunnels, reply_to } => {
                let res = reconfigure(&me, st, tunnels).await;
                let _ = reply_to.send(res);
            }
            #[cfg(feature = "fault-injection")]
            TunnelSupMsg::Panic { name, reply_to } => {
                let found = st
                    .slots
                    .get(&name)
                    .is_some_and(|s| s.cast(TunnelMsg::Panic));
                let _ = reply_to.send(found);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        me: ActorRef<TunnelSupMsg>,
        evt: SupervisionEvent,
        st: &mut TunnelSupState,
    ) -> Result<(), ActorProcessingErr> {
        match st
            .sup
            .on_event(&evt, tokio::time::Instant::now().into_std())
        {
            Decision::Restart { name, delay, .. } => {
                st.env.metrics.actor_restart(&name);
                st.env
                    .audit
                    .record(AuditEvent::tunnel_actor_restarted(&name, delay))
                    .await;
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

/// The child spec of tunnel `t`, with a fresh slot recorded in `slots`.
fn child_spec(
    t: &TunnelSpec,
    env: &TunnelEnv,
    slots: &mut BTreeMap<String, Slot<TunnelMsg>>,
) -> ChildSpec {
    let slot = Slot::default();
    slots.insert(t.name.clone(), slot.clone());
    let targs = TunnelArgs {
        spec: t.clone(),
        env: env.clone(),
    };
    ChildSpec::new(
        super::actor_name(&t.name),
        Restart::Permanent,
        Duration::from_secs(5),
        targs,
        Some(slot),
        super::spawn,
    )
}

/// Applies a new tunnel list (see [`TunnelSupMsg::Reconfigure`]).
async fn reconfigure(
    me: &ActorRef<TunnelSupMsg>,
    st: &mut TunnelSupState,
    tunnels: Vec<TunnelSpec>,
) -> serde_json::Value {
    let plan = super::reload_plan(&st.specs, &tunnels);
    for name in plan.removed.iter().chain(&plan.changed) {
        st.sup.remove(&super::actor_name(name)).await;
        st.slots.remove(name);
        st.specs.remove(name);
        st.env.table.remove(name);
        tracing::info!(tunnel = %name, "tunnel stopped by config reload");
    }
    for t in tunnels
        .iter()
        .filter(|t| plan.added.contains(&t.name) || plan.changed.contains(&t.name))
    {
        let spec = child_spec(t, &st.env, &mut st.slots);
        st.sup.add(spec);
        st.specs.insert(t.name.clone(), t.clone());
        match st
            .sup
            .start(&super::actor_name(&t.name), &me.get_cell())
            .await
        {
            Ok(()) => tracing::info!(tunnel = %t.name, "tunnel started by config reload"),
            Err(e) => {
                tracing::error!(tunnel = %t.name, error = %e, "tunnel start failed; retrying");
                let name = super::actor_name(&t.name);
                me.send_after(BACKOFF.max, move || TunnelSupMsg::RestartChild(name));
            }
        }
    }
    st.configured = st.configured || !tunnels.is_empty();
    persist(st);
    serde_json::json!({"added": plan.added, "removed": plan.removed, "changed": plan.changed})
}

fn persist(st: &mut TunnelSupState) {
    if !st.configured {
        return;
    }
    let rows = st.env.table.rows();
    let doc = serde_json::json!({"pid": std::process::id(), "writtenAt": crate::shared::now_ms(), "tunnels": rows});
    let text = doc.to_string();
    if text == st.last_written {
        return;
    }
    st.last_written = text.clone();
    let path = st.env.dir.join("status.json");
    tokio::task::spawn_blocking(move || crate::state::write_private_atomic(&path, text.as_bytes()));
}
