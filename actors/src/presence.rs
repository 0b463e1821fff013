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
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::protocol::frame::raw;
use crate::protocol::scopes::{satisfies, READ};
use crate::session::{Broadcast, SessionMsg, SessionRef};
use crate::shared::{now_ms, ConnFacts, Counters, Facts, Hub, Identity, Registry, VERSION};

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
            PresenceMsg::Tick => {
                let payload = raw(&json!({"ts": now_ms()}));
                broadcast(st, "tick", payload, true, None, None)
            }
            PresenceMsg::Scoped {
                event,
                payload,
                scope,
            } => broadcast(st, event, raw(&payload), true, None, Some(scope)),
            PresenceMsg::FlushPresence => {
                st.flush_scheduled = false;
                let a = &st.args;
                Counters::bump(&a.counters.presence_version);
                let sv = a.counters.state_version();
                #[derive(serde::Serialize)]
                struct Payload {
                    presence: Entries,
                }
                let payload = raw(&Payload {
                    presence: entries(&a.facts, &a.registry),
                });
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
    payload: Box<RawValue>,
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

/// Presence entries: the gateway itself plus every listed authenticated client, oldest
/// first. Each client's entry was serialized once, when it authenticated ([`entry`]), so a
/// `hello-ok` or a `presence` event with n clients listed copies n strings instead of
/// building n maps (issue 15: node hosts reconnecting after a gateway restart each get the
/// whole list).
pub fn entries(facts: &Facts, registry: &Registry) -> Entries {
    Entries {
        me: raw(&SelfEntry {
            host: &facts.hostname,
            mode: "gateway",
            platform: std::env::consts::OS,
            reason: "self",
            ts: facts.started_ms,
            version: VERSION,
        }),
        listed: registry.listed(),
    }
}

/// The presence list, serialized as a JSON array (see [`entries`]).
pub struct Entries {
    me: Box<RawValue>,
    listed: Vec<Arc<RawValue>>,
}

impl serde::Serialize for Entries {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(1 + self.listed.len()))?;
        seq.serialize_element(&self.me)?;
        for e in &self.listed {
            seq.serialize_element(&**e)?;
        }
        seq.end()
    }
}

/// The gateway's own entry (fields in the order a JSON map sorts them, as before).
#[derive(serde::Serialize)]
struct SelfEntry<'a> {
    host: &'a str,
    mode: &'static str,
    platform: &'static str,
    reason: &'static str,
    ts: i64,
    version: &'static str,
}

/// A listed client's entry, serialized once when it authenticates and kept by the registry
/// until it disconnects ([`Registry::list`]).
pub fn entry(i: &Identity, c: &ConnFacts) -> Box<RawValue> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Entry<'a> {
        device_family: Option<&'a str>,
        device_id: Option<&'a str>,
        host: &'a str,
        instance_id: Option<&'a str>,
        ip: std::net::IpAddr,
        mode: &'a str,
        platform: &'a str,
        reason: &'static str,
        roles: [&'a str; 1],
        scopes: &'a [String],
        ts: i64,
        version: &'a str,
    }
    raw(&Entry {
        device_family: i.device_family.as_deref(),
        device_id: i.device_id.as_deref(),
        host: i.display_name.as_deref().unwrap_or(&i.client_id),
        instance_id: i.instance_id.as_deref(),
        ip: c.peer.ip(),
        mode: &i.client_mode,
        platform: &i.platform,
        reason: "connect",
        roles: [&i.role],
        scopes: &i.scopes,
        ts: i.authenticated_at_ms,
        version: &i.client_version,
    })
}

/// Whether a client mode appears in presence.
pub fn is_listed(mode: &str) -> bool {
    !matches!(mode, "cli" | "probe")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(mode: &str, optional: bool) -> Identity {
        let some = |s: &str| optional.then(|| s.to_string());
        Identity {
            client_id: "openclaw-macos".into(),
            client_mode: mode.into(),
            client_version: "1.2.3".into(),
            platform: "darwin".into(),
            device_family: some("Mac"),
            display_name: some("Ann's \"Mac\""),
            instance_id: some("i-1"),
            role: "operator".into(),
            scopes: vec!["operator.read".into(), "operator.write".into()],
            auth_method: "token",
            device_id: some("dev-1"),
            protocol: 4,
            authenticated_at_ms: 1_700_000_000_123,
        }
    }

    /// The entry as it was built before it was cached: a `json!` map.
    fn as_map(i: &Identity, c: &ConnFacts) -> Value {
        json!({
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
        })
    }

    #[test]
    fn a_cached_entry_is_byte_for_byte_the_map_it_replaced() {
        for (peer, optional) in [("127.0.0.1:5000", true), ("[::1]:6000", false)] {
            let c = ConnFacts::direct(peer);
            let i = identity("ui", optional);
            assert_eq!(entry(&i, &c).get(), as_map(&i, &c).to_string(), "{peer}");
        }
    }

    #[test]
    fn entries_list_the_gateway_then_listed_clients_oldest_first() {
        let registry = Registry::new(0, false);
        let join = |id: &str, at: i64, mode: &str| {
            let mut f = ConnFacts::direct("127.0.0.1:5000");
            f.conn_id = id.into();
            f.connected_at_ms = at;
            let stats = registry.register(Arc::new(f));
            let i = identity(mode, true);
            if is_listed(mode) {
                registry.list(&stats, entry(&i, &stats.facts));
            }
            *crate::shared::write(&stats.identity) = Some(i);
        };
        join("late", 20, "ui");
        join("cli", 5, "cli");
        join("early", 10, "webchat");
        join("gone", 15, "ui");
        registry.unregister("gone");
        registry.register(Arc::new(ConnFacts::direct("127.0.0.1:7000"))); // not authenticated
        let list = Entries {
            me: raw(&json!({"mode": "gateway"})),
            listed: registry.listed(),
        };
        let v: Value = serde_json::from_str(&serde_json::to_string(&list).unwrap()).unwrap();
        let modes: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["mode"].as_str().unwrap())
            .collect();
        assert_eq!(modes, ["gateway", "webchat", "ui"]);
        // `system-presence` turns the same list into a `Value`.
        assert_eq!(serde_json::to_value(&list).unwrap(), v);
    }
}
