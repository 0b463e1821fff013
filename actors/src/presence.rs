//! The Presence actor: knows which sessions are authenticated, sends each of them the
//! gateway-wide events (`tick` every `tickIntervalMs`, `presence` when the set of listed
//! clients changes, `shutdown`), and keeps `stateVersion.presence`. Each session stamps its
//! own per-connection `seq`. Presence changes are coalesced (at most one broadcast per
//! 250 ms) so a burst of connects does not cost O(n²) messages; short-lived `cli`/`probe`
//! clients are not listed in presence at all.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::{json, Value};

use crate::session::{Broadcast, SessionMsg, SessionRef};
use crate::shared::{now_ms, read, Shared, VERSION};

/// Registered name of the presence actor.
pub const NAME: &str = "openclaw.presence";
/// Delay that coalesces presence broadcasts.
pub const PRESENCE_COALESCE: Duration = Duration::from_millis(250);

/// The presence actor.
pub struct PresenceActor;

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
    /// Send `event` to everyone (e.g. `shutdown`).
    Broadcast {
        /// Event name.
        event: &'static str,
        /// Payload.
        payload: Value,
    },
}

/// State.
pub struct PresenceState {
    shared: Arc<Shared>,
    sessions: HashMap<String, (SessionRef, bool)>,
    flush_scheduled: bool,
}

/// Reference to the presence actor.
pub type PresenceRef = ActorRef<PresenceMsg>;

impl PresenceMsg {
    /// Message kind for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            PresenceMsg::Join { .. } => "Join",
            PresenceMsg::Leave { .. } => "Leave",
            PresenceMsg::Tick => "Tick",
            PresenceMsg::FlushPresence => "FlushPresence",
            PresenceMsg::Broadcast { .. } => "Broadcast",
        }
    }
}

impl Actor for PresenceActor {
    type Msg = PresenceMsg;
    type State = PresenceState;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        me: ActorRef<PresenceMsg>,
        shared: Arc<Shared>,
    ) -> Result<PresenceState, ActorProcessingErr> {
        me.send_interval(shared.settings.tick_interval, || PresenceMsg::Tick);
        Ok(PresenceState {
            shared,
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
            } => {
                st.sessions.insert(conn_id, (session, listed));
                if listed {
                    schedule_flush(&me, st);
                }
            }
            PresenceMsg::Leave { conn_id } => {
                if let Some((_, true)) = st.sessions.remove(&conn_id) {
                    schedule_flush(&me, st);
                }
            }
            PresenceMsg::Tick => broadcast(st, "tick", json!({"ts": now_ms()}), true, None),
            PresenceMsg::FlushPresence => {
                st.flush_scheduled = false;
                st.shared.presence_version.fetch_add(1, Ordering::Relaxed);
                let sv = st.shared.state_version();
                let payload = json!({"presence": entries(&st.shared)});
                broadcast(st, "presence", payload, true, Some(sv));
            }
            PresenceMsg::Broadcast { event, payload } => broadcast(st, event, payload, false, None),
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
) {
    let b = Arc::new(Broadcast {
        event,
        payload,
        drop_if_slow,
        state_version: sv,
    });
    // A session that is gone just fails the cast; its Leave is on the way.
    for (s, _) in st.sessions.values() {
        let _ = s.cast(SessionMsg::Event(b.clone()));
    }
}

/// Presence entries: the gateway itself plus every listed authenticated client.
pub fn entries(shared: &Shared) -> Vec<Value> {
    let mut v = vec![json!({
        "host": shared.hostname,
        "mode": "gateway",
        "reason": "self",
        "version": VERSION,
        "platform": std::env::consts::OS,
        "ts": shared.started_ms,
    })];
    for c in shared.connections() {
        let id = read(&c.identity);
        let Some(i) = id.as_ref() else { continue };
        if !is_listed(&i.client_mode) {
            continue;
        }
        v.push(json!({
            "host": i.display_name.clone().unwrap_or_else(|| i.client_id.clone()),
            "ip": c.peer.ip().to_string(),
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
