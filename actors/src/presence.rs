//! The Presence actor: knows which sessions are authenticated, sends each of them the
//! gateway-wide events (`tick` every `tickIntervalMs`, `presence` when the set of listed
//! clients changes, `shutdown`), and keeps `stateVersion.presence`. Each session stamps its
//! own per-connection `seq`. Presence changes are coalesced (at most one broadcast per
//! 250 ms) so a burst of connects does not cost O(n²) messages; short-lived `cli`/`probe`
//! clients are not listed in presence at all.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use serde_json::{json, Value};

use crate::protocol::scopes::{satisfies, READ};
use crate::session::{Broadcast, SessionMsg, SessionRef};
use crate::shared::{now_ms, read, Counters, Facts, Hub, Registry, VERSION};

/// Delay that coalesces presence broadcasts.
pub const PRESENCE_COALESCE: Duration = Duration::from_millis(250);

/// The presence actor.
pub struct PresenceActor;

/// Start-up arguments.
#[derive(Clone)]
pub struct PresenceArgs {
    /// Host name, start time and `tickIntervalMs`.
    pub facts: Arc<Facts>,
    /// The authenticated connections listed in presence.
    pub registry: Arc<Registry>,
    /// `stateVersion.presence`.
    pub counters: Arc<Counters>,
}

/// Messages to the presence actor.
pub enum PresenceMsg {
    /// A session finished its handshake: deliver broadcasts to it from now on.
    Join {
        /// Connection id.
        conn_id: String,
        /// The session.
        session: SessionRef,
        /// Whether the client appears in presence (not `cli`/`probe`).
        listed: bool,
        /// Its granted scopes (scoped events go only to operators that hold the scope).
        scopes: Vec<String>,
        /// A node: it gets only the unscoped broadcasts (`tick`, `shutdown`).
        node: bool,
    },
    /// Send an event to every operator session whose scopes satisfy `scope`.
    Scoped {
        /// Event name.
        event: &'static str,
        /// Payload.
        payload: Value,
        /// Scope required to receive it.
        scope: &'static str,
    },
    /// A session ended.
    Leave {
        /// Connection id.
        conn_id: String,
    },
    /// Timer: send `tick` to everyone.
    Tick,
    /// Timer: send the coalesced `presence` event.
    FlushPresence,
}

/// A joined session.
struct Member {
    session: SessionRef,
    listed: bool,
    scopes: Vec<String>,
    node: bool,
}

/// State.
pub struct PresenceState {
    args: PresenceArgs,
    sessions: HashMap<String, Member>,
    flush_scheduled: bool,
}

/// Reference to the presence actor.
pub type PresenceRef = ActorRef<PresenceMsg>;

/// Starts the presence actor linked to `supervisor`.
pub async fn spawn(
    args: PresenceArgs,
    supervisor: ActorCell,
) -> Result<PresenceRef, ractor::SpawnErr> {
    Ok(Actor::spawn_linked(None, PresenceActor, args, supervisor)
        .await?
        .0)
}

// === impl PresenceArgs ===

impl PresenceArgs {
    /// The parts of `hub` presence uses.
    pub fn from_hub(hub: &Hub) -> Self {
        Self {
            facts: hub.facts.clone(),
            registry: hub.registry.clone(),
            counters: hub.counters.clone(),
        }
    }
}

impl PresenceMsg {
    /// Message kind for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            PresenceMsg::Join { .. } => "Join",
            PresenceMsg::Leave { .. } => "Leave",
            PresenceMsg::Scoped { .. } => "Scoped",
            PresenceMsg::Tick => "Tick",
            PresenceMsg::FlushPresence => "FlushPresence",
        }
    }
}

impl Actor for PresenceActor {
    type Msg = PresenceMsg;
    type State = PresenceState;
    type Arguments = PresenceArgs;

    async fn pre_start(
        &self,
        me: ActorRef<PresenceMsg>,
        args: PresenceArgs,
    ) -> Result<PresenceState, ActorProcessingErr> {
        me.send_interval(args.facts.settings.tick_interval, || PresenceMsg::Tick);
        Ok(PresenceState {
            args,
            sessions: HashMap::new(),
            flush_scheduled: false,
        })
    }

    async fn handle(
        &self,
        me: ActorRef<PresenceMsg>,
        msg: PresenceMsg,
        st: &mut PresenceState,
    ) -> Result<(), ActorProcessingErr> {
        tracing::trace!(actor = "presence", msg = msg.kind(), "message");
        match msg {
            PresenceMsg::Join {
                conn_id,
                session,
                listed,
                scopes,
                node,
            } => {
                let m = Member {
                    session,
                    listed,
                    scopes,
                    node,
                };
                st.sessions.insert(conn_id, m);
                if listed {
                    schedule_flush(&me, st);
                }
            }
            PresenceMsg::Leave { conn_id } => {
                if st.sessions.remove(&conn_id).is_some_and(|m| m.listed) {
                    schedule_flush(&me, st);
                }
            }
            PresenceMsg::Tick => broadcast(st, "tick", json!({"ts": now_ms()}), true, None, None),
            PresenceMsg::Scoped {
                event,
                payload,
                scope,
            } => broadcast(st, event, payload, true, None, Some(scope)),
            PresenceMsg::FlushPresence => {
                st.flush_scheduled = false;
                let a = &st.args;
                Counters::bump(&a.counters.presence_version);
                let sv = a.counters.state_version();
                let payload = json!({"presence": entries(&a.facts, &a.registry)});
                broadcast(st, "presence", payload, true, Some(sv), Some(READ));
            }
        }
        Ok(())
    }
}

fn schedule_flush(me: &ActorRef<PresenceMsg>, st: &mut PresenceState) {
    if !st.flush_scheduled {
        st.flush_scheduled = true;
        me.send_after(PRESENCE_COALESCE, || PresenceMsg::FlushPresence);
    }
}

fn broadcast(
    st: &mut PresenceState,
    event: &'static str,
    payload: Value,
    drop_if_slow: bool,
    sv: Option<Value>,
    scope: Option<&'static str>,
) {
    let b = Arc::new(Broadcast {
        event,
        payload,
        drop_if_slow,
        state_version: sv,
    });
    // A session that is gone just fails the cast; its Leave is on the way.
    for m in st.sessions.values() {
        let wanted = match scope {
            None => true,
            Some(s) => !m.node && satisfies(&m.scopes, s),
        };
        if wanted {
            let _ = m.session.cast(SessionMsg::Event(b.clone()));
        }
    }
}

/// Presence entries: the gateway itself plus every listed authenticated client.
pub fn entries(facts: &Facts, registry: &Registry) -> Vec<Value> {
    let mut v = vec![json!({
        "host": facts.hostname,
        "mode": "gateway",
        "reason": "self",
        "version": VERSION,
        "platform": std::env::consts::OS,
        "ts": facts.started_ms,
    })];
    for c in registry.connections() {
        let id = read(&c.identity);
        let Some(i) = id.as_ref() else { continue };
        if !is_listed(&i.client_mode) {
            continue;
        }
        v.push(json!({
            "host": i.display_name.clone().unwrap_or_else(|| i.client_id.clone()),
            "ip": c.facts.peer.ip().to_string(),
            "version": i.client_version,
            "platform": i.platform,
            "deviceFamily": i.device_family,
            "mode": i.client_mode,
            "reason": "connect",
            "ts": i.authenticated_at_ms,
            "deviceId": i.device_id,
            "roles": [i.role],
            "scopes": i.scopes,
            "instanceId": i.instance_id,
        }));
    }
    v
}

/// Whether a client mode appears in presence.
pub fn is_listed(mode: &str) -> bool {
    !matches!(mode, "cli" | "probe")
}
