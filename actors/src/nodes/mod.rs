//! The NodeRegistry actor (PROTOCOL-NODES §2–§4): owns the connected nodes, their approved
//! command surfaces (persisted, see [`store`]) and every pending `node.invoke`. An operator's
//! invoke becomes a `node.invoke.request` event to the node's session; the node's
//! `node.invoke.result` answers the operator. A deadline sends `node.invoke.cancel` and fails
//! the invoke with `TIMEOUT`; a node disconnect fails its invokes at once; late or unknown
//! results are ignored and counted. The rules are pure ([`policy`], [`invokes`], [`store`]).
//!
//! A crash drops the pending table: every waiting operator's reply port is dropped, so its
//! call fails at once with a clear error instead of hanging. The restarted registry reloads
//! the approved surfaces and asks the SessionManager to have every node session announce
//! itself again.

pub mod invokes;
pub mod policy;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::{json, Value};

use crate::audit::{AuditEvent, AuditHandle};
use crate::auth::{AuthMsg, Caller, PairingOp};
use crate::presence::PresenceMsg;
use crate::protocol::errors::{code, ErrorShape};
use crate::protocol::frame;
use crate::protocol::scopes::{satisfies, PAIRING, READ};
use crate::protocol::MAX_PAYLOAD_BYTES;
use crate::session::manager::SessionManagerMsg;
use crate::session::{SessionMsg, SessionRef};
use crate::shared::{lock, now_ms, Counters, Hub};
use crate::wiring::{Peers, Slot};
use invokes::{Entry, Full, Invokes, Taken};
use policy::{InvokeParams, InvokeResult};
use store::{ApprovedNode, SurfaceRequest, SurfaceStore};

/// Close code and reason for a removed node (as the real gateway).
const REMOVED_CLOSE: (u16, &str) = (4001, "device removed");

/// The node registry actor.
pub struct NodeRegistryActor;

/// Start-up arguments.
#[derive(Clone)]
pub struct NodeArgs {
    /// Where `nodes/paired.json` lives.
    pub state_dir: std::path::PathBuf,
    /// Audit producer.
    pub audit: AuditHandle,
    /// The summary `status` reads, and the relay counters.
    pub table: Arc<NodeTable>,
    /// Broadcasts to operators (`node.pair.*`, `node.hostStats`).
    pub presence: Slot<PresenceMsg>,
    /// Asks node sessions to announce themselves after a restart.
    pub sessions: Slot<SessionManagerMsg>,
    /// Removes a node's device pairing (revoking its device token).
    pub auth: Slot<AuthMsg>,
}

/// What a node session announces after `hello-ok`.
#[derive(Debug, Clone)]
pub struct NodeHello {
    /// Node id (= device id).
    pub node_id: String,
    /// Its connection.
    pub conn_id: String,
    /// `client.id`.
    pub client_id: String,
    /// `client.mode`.
    pub client_mode: String,
    /// `client.displayName`.
    pub display_name: Option<String>,
    /// `client.platform`.
    pub platform: String,
    /// `client.version`.
    pub version: String,
    /// `client.deviceFamily`.
    pub device_family: Option<String>,
    /// Declared capabilities.
    pub caps: Vec<String>,
    /// Declared commands.
    pub commands: Vec<String>,
    /// `pathEnv`.
    pub path_env: Option<String>,
    /// Attributed client address.
    pub remote_ip: String,
    /// Loopback without proxy headers (its surface request is `silent`).
    pub local: bool,
    /// When it authenticated.
    pub connected_at_ms: i64,
}

/// A method's answer.
pub type Reply = RpcReplyPort<Result<Value, ErrorShape>>;

/// Messages to the node registry.
pub enum NodeMsg {
    /// A node session finished its handshake (or announces itself again after a restart).
    Connected {
        /// What it declared.
        hello: Box<NodeHello>,
        /// Its session, for direct events.
        session: SessionRef,
    },
    /// A node session ended: its pending invokes fail at once.
    Disconnected {
        /// Node id.
        node_id: String,
        /// Connection id.
        conn_id: String,
    },
    /// `node.event` from a node.
    Event {
        /// Caller's node id.
        node_id: String,
        /// Request params.
        params: Option<Value>,
        /// Answer.
        reply_to: Reply,
    },
    /// `node.runnerInventory.update` from a node.
    Inventory {
        /// Caller's node id.
        node_id: String,
        /// Answer.
        reply_to: Reply,
    },
    /// `node.invoke` from an operator.
    Invoke {
        /// Who asks.
        caller: Caller,
        /// Checked params.
        params: InvokeParams,
        /// When the request arrived (the deadline counts from here).
        received: Instant,
        /// Answered when the node answers, fails, disconnects or the deadline passes.
        reply_to: Reply,
    },
    /// `node.invoke.result` from a node.
    Result {
        /// Caller's node id (checked against `result.node_id` by the session).
        node_id: String,
        /// The result.
        result: Box<InvokeResult>,
        /// Answer to the node.
        reply_to: Reply,
    },
    /// Timer: the deadline of invoke `id` passed.
    Deadline {
        /// Invoke id.
        id: String,
    },
    /// `node.list`.
    List {
        /// Answer.
        reply_to: Reply,
    },
    /// `node.describe`.
    Describe {
        /// Node id.
        node_id: String,
        /// Answer.
        reply_to: Reply,
    },
    /// `node.pair.*` and `node.rename`.
    Pair {
        /// What to do.
        op: NodePairOp,
        /// Who asks.
        caller: Caller,
        /// Answer.
        reply_to: Reply,
    },
    /// Test-only: crash the registry.
    #[cfg(feature = "fault-injection")]
    Panic,
}

/// A surface-approval operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodePairOp {
    /// `node.pair.list`.
    List,
    /// `node.pair.approve {requestId}`.
    Approve {
        /// Pending request.
        request_id: String,
    },
    /// `node.pair.reject {requestId}`.
    Reject {
        /// Pending request.
        request_id: String,
    },
    /// `node.pair.remove {nodeId}`.
    Remove {
        /// Node.
        node_id: String,
    },
    /// `node.rename {nodeId, displayName}`.
    Rename {
        /// Node.
        node_id: String,
        /// New name (1..=64 chars).
        display_name: String,
    },
}

/// What `status` shows about nodes, and the relay counters. Written by the registry,
/// read without a round trip.
#[derive(Debug, Default)]
pub struct NodeTable {
    summary: Mutex<Value>,
    /// Invokes relayed to a node.
    pub invokes: AtomicU64,
    /// Invokes that hit their deadline.
    pub timeouts: AtomicU64,
    /// Invokes failed because their node disconnected.
    pub disconnected: AtomicU64,
    /// Results ignored (late, unknown or for another node's invoke).
    pub results_ignored: AtomicU64,
    /// Invokes refused over the per-node or per-caller bound.
    pub over_bound: AtomicU64,
}

/// A connected node.
struct Online {
    hello: NodeHello,
    session: SessionRef,
    host_stats: Option<Value>,
}

/// A pending invoke's reply port and deadline timer.
struct Waiting {
    reply: Reply,
    started: Instant,
    timer: Option<tokio::task::JoinHandle<Result<(), ractor::MessagingErr<NodeMsg>>>>,
}

/// State.
pub struct NodeState {
    args: NodeArgs,
    store: SurfaceStore,
    online: HashMap<String, Online>,
    invokes: Invokes<Waiting>,
    /// Nodes whose surface request was rejected (until they ask again).
    rejected: HashSet<String>,
}

/// Reference to the node registry.
pub type NodeRef = ActorRef<NodeMsg>;

/// Starts the node registry linked to `supervisor`.
pub async fn spawn(args: NodeArgs, supervisor: ActorCell) -> Result<NodeRef, ractor::SpawnErr> {
    Ok(
        Actor::spawn_linked(None, NodeRegistryActor, args, supervisor)
            .await?
            .0,
    )
}

// === impl NodeArgs ===

impl NodeArgs {
    /// The parts of `hub` and the peers the registry uses.
    pub fn from_hub(hub: &Hub, peers: &Peers) -> Self {
        Self {
            state_dir: hub.settings().paths.state_dir.clone(),
            audit: hub.audit.clone(),
            table: hub.nodes.clone(),
            presence: peers.presence.clone(),
            sessions: peers.sessions.clone(),
            auth: peers.auth.clone(),
        }
    }
}

// === impl NodeTable ===

impl NodeTable {
    /// `status.nodes`: counts, one row per known node, and the relay counters.
    pub fn status(&self) -> Value {
        let mut v = lock(&self.summary).clone();
        if !v.is_object() {
            v = json!({"connected": 0, "paired": 0, "pending": 0, "rows": []});
        }
        let n = |a: &AtomicU64| Counters::get(a);
        v["invokes"] = json!({
            "relayed": n(&self.invokes),
            "timeouts": n(&self.timeouts),
            "disconnected": n(&self.disconnected),
            "resultsIgnored": n(&self.results_ignored),
            "overBound": n(&self.over_bound),
        });
        v
    }
}

impl NodeMsg {
    /// The connection a message concerns (for per-connection tracing), or "".
    pub fn conn_id(&self) -> &str {
        match self {
            NodeMsg::Connected { hello, .. } => &hello.conn_id,
            NodeMsg::Disconnected { conn_id, .. } => conn_id,
            NodeMsg::Invoke { caller, .. } => &caller.conn_id,
            NodeMsg::Pair { caller, .. } => &caller.conn_id,
            _ => "",
        }
    }

    /// Message kind for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            NodeMsg::Connected { .. } => "Connected",
            NodeMsg::Disconnected { .. } => "Disconnected",
            NodeMsg::Event { .. } => "Event",
            NodeMsg::Inventory { .. } => "Inventory",
            NodeMsg::Invoke { .. } => "Invoke",
            NodeMsg::Result { .. } => "Result",
            NodeMsg::Deadline { .. } => "Deadline",
            NodeMsg::List { .. } => "List",
            NodeMsg::Describe { .. } => "Describe",
            NodeMsg::Pair { .. } => "Pair",
            #[cfg(feature = "fault-injection")]
            NodeMsg::Panic => "Panic",
        }
    }
}

impl Actor for NodeRegistryActor {
    type Msg = NodeMsg;
    type State = NodeState;
    type Arguments = NodeArgs;

    async fn pre_start(
        &self,
        me: NodeRef,
        args: NodeArgs,
    ) -> Result<NodeState, ActorProcessingErr> {
        let store = SurfaceStore::load(&args.state_dir);
        // After a restart, node sessions that are still open announce themselves again,
        // to this incarnation (the slot is refilled only once this returns).
        args.sessions.cast(SessionManagerMsg::Rejoin(me));
        let st = NodeState {
            args,
            store,
            online: HashMap::new(),
            invokes: Invokes::default(),
            rejected: HashSet::new(),
        };
        publish(&st);
        Ok(st)
    }

    async fn handle(
        &self,
        me: NodeRef,
        msg: NodeMsg,
        st: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        tracing::trace!(
            actor = "nodes",
            msg = msg.kind(),
            conn_id = msg.conn_id(),
            "message"
        );
        st.args
            .audit
            .trace
            .note(msg.conn_id(), || format!("actor=nodes msg={}", msg.kind()));
        match msg {
            NodeMsg::Connected { hello, session } => connected(st, *hello, session).await,
            NodeMsg::Disconnected { node_id, conn_id } => {
                disconnected(st, &node_id, &conn_id).await
            }
            NodeMsg::Event {
                node_id,
                params,
                reply_to,
            } => {
                let _ = reply_to.send(node_event(st, &node_id, params.as_ref()));
            }
            NodeMsg::Inventory { node_id, reply_to } => {
                let res = match approval_state(st, &node_id) {
                    Some("approved") => Ok(json!({"nodeId": node_id})),
                    _ => Err(ErrorShape::unavailable(
                        "node capability surface is awaiting operator approval; run \
                         `openclaw nodes approve <requestId>` (see `openclaw nodes pending`), \
                         then this node retries automatically",
                    )),
                };
                let _ = reply_to.send(res);
            }
            NodeMsg::Invoke {
                caller,
                params,
                received,
                reply_to,
            } => invoke(&me, st, caller, params, received, reply_to),
            NodeMsg::Result {
                node_id,
                result,
                reply_to,
            } => on_result(st, &node_id, *result, reply_to).await,
            NodeMsg::Deadline { id } => deadline(st, &id).await,
            NodeMsg::List { reply_to } => {
                let nodes = all_nodes(st);
                let _ = reply_to.send(Ok(json!({"ts": now_ms(), "nodes": nodes})));
            }
            NodeMsg::Describe { node_id, reply_to } => {
                let res = match node_json(st, &node_id) {
                    Some(mut v) => {
                        v["ts"] = json!(now_ms());
                        Ok(v)
                    }
                    None => Err(policy::unknown_node()),
                };
                let _ = reply_to.send(res);
            }
            NodeMsg::Pair {
                op,
                caller,
                reply_to,
            } => {
                let res = pair(st, op, &caller).await;
                let _ = reply_to.send(res);
            }
            #[cfg(feature = "fault-injection")]
            NodeMsg::Panic => panic!("fault injection: node registry panic requested"),
        }
        Ok(())
    }
}

/// `approved`, `pending-approval`, `pending-reapproval` or `unapproved` for a connected
/// node; `approved` for an offline approved one; `None` for an unknown id.
fn approval_state(st: &NodeState, node_id: &str) -> Option<&'static str> {
    let Some(o) = st.online.get(node_id) else {
        return st
            .store
            .approved
            .contains_key(node_id)
            .then_some("approved");
    };
    let (allowed, _) = policy::split_surface(&o.hello.commands);
    Some(if st.store.covers(node_id, &o.hello.caps, &allowed) {
        "approved"
    } else if st.rejected.contains(node_id) {
        "unapproved"
    } else if st.store.approved.contains_key(node_id) {
        "pending-reapproval"
    } else {
        "pending-approval"
    })
}

/// The caps and commands a node may be invoked with now: its declared surface within the
/// policy and within what was approved.
fn exposed(st: &NodeState, o: &Online) -> (Vec<String>, Vec<String>) {
    let (allowed, _) = policy::split_surface(&o.hello.commands);
    match st.store.approved.get(&o.hello.node_id) {
        Some(a) => (
            o.hello
                .caps
                .iter()
                .filter(|c| a.caps.contains(c))
                .cloned()
                .collect(),
            allowed
                .into_iter()
                .filter(|c| a.commands.contains(c))
                .collect(),
        ),
        None => (Vec::new(), Vec::new()),
    }
}

async fn connected(st: &mut NodeState, hello: NodeHello, session: SessionRef) {
    let id = hello.node_id.clone();
    let (allowed, withheld) = policy::split_surface(&hello.commands);
    if !withheld.is_empty() {
        tracing::info!(node_id = %id, ?withheld, "node command surface withheld by gateway policy");
    }
    let rejoin = st
        .online
        .get(&id)
        .is_some_and(|o| o.hello.conn_id == hello.conn_id);
    st.rejected.remove(&id);
    let covered = st.store.covers(&id, &hello.caps, &allowed);
    if !covered {
        let ask = SurfaceRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            node_id: id.clone(),
            client_id: hello.client_id.clone(),
            client_mode: hello.client_mode.clone(),
            display_name: hello.display_name.clone(),
            platform: hello.platform.clone(),
            version: hello.version.clone(),
            device_family: hello.device_family.clone(),
            caps: {
                let mut c = hello.caps.clone();
                c.sort();
                c
            },
            required_approve_scopes: policy::required_approve_scopes(&allowed),
            commands: allowed,
            silent: hello.local.then_some(true),
            remote_ip: (!hello.local).then(|| hello.remote_ip.clone()),
            ts: now_ms(),
        };
        let (req, new) = st.store.request(ask);
        if new {
            let ev = AuditEvent::node_pair_requested(
                &id,
                &req.request_id,
                &hello.remote_ip,
                req.commands.len(),
            );
            st.args.audit.record(ev).await;
            tracing::info!(node_id = %id, request_id = %req.request_id, "node command surface awaits approval");
            broadcast(st, "node.pair.requested", json!(req), PAIRING);
        }
    } else {
        st.store.pending.remove(&id);
    }
    let state = if covered {
        "approved"
    } else {
        "pending-approval"
    };
    if !rejoin {
        let ev = AuditEvent::node_connect(&hello, state);
        st.args.audit.record(ev).await;
    }
    let host_stats = st.online.remove(&id).and_then(|o| o.host_stats);
    st.online.insert(
        id,
        Online {
            hello,
            session,
            host_stats,
        },
    );
    publish(st);
}

async fn disconnected(st: &mut NodeState, node_id: &str, conn_id: &str) {
    let failed = st.invokes.drain_conn(conn_id);
    let n = failed.len();
    for (id, e) in failed {
        Counters::bump(&st.args.table.disconnected);
        let msg = format!("node disconnected ({})", e.command);
        finish(
            st,
            &id,
            e,
            Err(policy::node_error("DISCONNECTED", &msg, true)),
            "disconnected",
        )
        .await;
    }
    if st
        .online
        .get(node_id)
        .is_some_and(|o| o.hello.conn_id == conn_id)
    {
        st.online.remove(node_id);
        st.rejected.remove(node_id);
        // A request from a node that left stays until it is approved, rejected or evicted.
        publish(st);
    }
    // Also for a replaced connection of a node that reconnected (the new one stays).
    let ev = AuditEvent::node_disconnect(node_id, conn_id, n);
    st.args.audit.record(ev).await;
}

fn node_event(
    st: &mut NodeState,
    node_id: &str,
    params: Option<&Value>,
) -> Result<Value, ErrorShape> {
    let event = params
        .and_then(|p| p.get("event"))
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            ErrorShape::invalid_params("node.event", "must have required property 'event'")
        })?
        .to_string();
    if approval_state(st, node_id) != Some("approved") {
        let mut e = ErrorShape::unavailable(
            "node pairing changed: its command surface is awaiting operator approval",
        )
        .with_details(json!({"code": "PAIRING_CHANGED"}));
        e.retryable = Some(true);
        return Err(e);
    }
    if event != "node.host.stats" {
        return Ok(json!({"ok": true}));
    }
    let p = params.unwrap_or(&Value::Null);
    let mut stats = match p.get("payloadJSON").and_then(Value::as_str) {
        Some(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        None => p.get("payload").cloned().unwrap_or(Value::Null),
    };
    if !stats.is_object() {
        return Ok(
            json!({"ok": true, "event": event, "handled": false, "reason": "invalid payload"}),
        );
    }
    stats["updatedAtMs"] = json!(now_ms());
    if let Some(o) = st.online.get_mut(node_id) {
        o.host_stats = Some(stats.clone());
    }
    broadcast(
        st,
        "node.hostStats",
        json!({"nodeId": node_id, "hostStats": stats}),
        READ,
    );
    Ok(json!({"ok": true, "event": event, "handled": true, "reason": "updated"}))
}

fn bound_error(full: Full, node_id: &str) -> ErrorShape {
    let msg = match full {
        Full::Node(n) => format!(
            "too many invokes pending on node {node_id} (limit {n}); wait for answers before sending more"
        ),
        Full::Caller(n) => format!(
            "this connection has too many node invokes pending (limit {n}); wait for answers before sending more"
        ),
    };
    let mut e = ErrorShape::unavailable(msg).with_details(json!({"code": "TOO_MANY_PENDING"}));
    e.retryable = Some(true);
    e.retry_after_ms = Some(100);
    e
}

fn invoke(
    me: &NodeRef,
    st: &mut NodeState,
    caller: Caller,
    p: InvokeParams,
    received: Instant,
    reply: Reply,
) {
    let refuse = |reply: Reply, e: ErrorShape| {
        let _ = reply.send(Err(e));
    };
    let Some(o) = st.online.get(&p.node_id) else {
        let e = if st.store.approved.contains_key(&p.node_id) {
            policy::not_connected()
        } else {
            policy::unknown_node()
        };
        return refuse(reply, e);
    };
    if approval_state(st, &p.node_id) == Some("pending-approval")
        || approval_state(st, &p.node_id) == Some("unapproved")
    {
        return refuse(reply, policy::awaiting_approval());
    }
    let (_, commands) = exposed(st, o);
    if let Some(e) =
        policy::command_refusal(&p.command, &o.hello.platform, &o.hello.commands, &commands)
    {
        return refuse(reply, e);
    }
    let remaining = p.timeout.saturating_sub(received.elapsed());
    let id = uuid::Uuid::new_v4().to_string();
    let mut ev = json!({
        "id": id,
        "nodeId": p.node_id,
        "command": p.command,
        "paramsJSON": policy::params_json(&p.command, p.params.as_ref(), &uuid::Uuid::new_v4().to_string()),
        "timeoutMs": remaining.as_millis() as u64,
        "idempotencyKey": p.idempotency_key,
    });
    if let Some(k) = &p.session_key {
        ev["sessionKey"] = json!(k);
    }
    let text = frame::event("node.invoke.request", &ev, None, None);
    if text.len() > MAX_PAYLOAD_BYTES {
        let e = ErrorShape::new(
            code::INVALID_REQUEST,
            format!(
                "node.invoke params too large: the request to the node would be {} bytes, over the {MAX_PAYLOAD_BYTES}-byte frame limit; send less data per invoke",
                text.len()
            ),
        );
        return refuse(reply, e);
    }
    let session = o.session.clone();
    let entry = Entry {
        node_id: p.node_id.clone(),
        node_conn: o.hello.conn_id.clone(),
        command: p.command.clone(),
        caller: caller.conn_id.clone(),
        data: Waiting {
            reply,
            started: received,
            timer: None,
        },
    };
    if let Err((full, e)) = st.invokes.insert(id.clone(), entry) {
        Counters::bump(&st.args.table.over_bound);
        return refuse(e.data.reply, bound_error(full, &p.node_id));
    }
    if session.cast(SessionMsg::Direct(text)).is_err() {
        if let Some(e) = st.invokes.take(&id) {
            let _ = e.data.reply.send(Err(ErrorShape::unavailable(
                "UNAVAILABLE: failed to send invoke to node",
            )));
        }
        return;
    }
    Counters::bump(&st.args.table.invokes);
    let timer_id = id.clone();
    let timer = me.send_after(remaining, move || NodeMsg::Deadline { id: timer_id });
    if let Some(e) = st.invokes.by_id_mut(&id) {
        e.data.timer = Some(timer);
    }
}

async fn on_result(st: &mut NodeState, node_id: &str, r: InvokeResult, reply: Reply) {
    match st.invokes.take_for(&r.id, node_id) {
        Taken::Found(e) => {
            let res = if r.ok {
                let size =
                    policy::response_size_estimate(r.payload_json.as_deref(), r.payload.as_ref());
                if size > MAX_PAYLOAD_BYTES {
                    Err(policy::node_error(
                        "PAYLOAD_TOO_LARGE",
                        &format!("the node's result (~{size} bytes as a response) is over the {MAX_PAYLOAD_BYTES}-byte frame limit; ask for less data per invoke"),
                        true,
                    ))
                } else {
                    Ok(policy::invoke_response(
                        node_id,
                        &e.command,
                        r.payload,
                        r.payload_json,
                    ))
                }
            } else {
                let (c, m) = r
                    .error
                    .unwrap_or_else(|| ("UNAVAILABLE".into(), "node reported failure".into()));
                Err(policy::node_error(&c, &m, true))
            };
            let outcome = match &res {
                Ok(_) => "ok",
                Err(_) if r.ok => "too_large",
                Err(_) => "node_error",
            };
            let id = r.id.clone();
            finish(st, &id, e, res, outcome).await;
            let _ = reply.send(Ok(json!({"ok": true})));
        }
        Taken::Unknown | Taken::OtherNode => {
            Counters::bump(&st.args.table.results_ignored);
            tracing::debug!(node_id, invoke_id = %r.id, "late or unknown node.invoke.result ignored");
            let _ = reply.send(Ok(json!({"ok": true, "ignored": true})));
        }
    }
}

async fn deadline(st: &mut NodeState, id: &str) {
    let Some(e) = st.invokes.take(id) else { return };
    Counters::bump(&st.args.table.timeouts);
    if let Some(o) = st
        .online
        .get(&e.node_id)
        .filter(|o| o.hello.conn_id == e.node_conn)
    {
        let cancel = json!({"invokeId": id, "nodeId": e.node_id});
        let _ = o.session.cast(SessionMsg::Direct(frame::event(
            "node.invoke.cancel",
            &cancel,
            None,
            None,
        )));
    }
    let err = policy::node_error("TIMEOUT", "node invoke timed out", true);
    finish(st, id, e, Err(err), "timeout").await;
}

/// Answers the operator of a finished invoke and audits it (never the payload).
async fn finish(
    st: &NodeState,
    id: &str,
    e: Entry<Waiting>,
    res: Result<Value, ErrorShape>,
    outcome: &str,
) {
    let Waiting {
        reply,
        started,
        timer,
    } = e.data;
    if let Some(t) = timer {
        t.abort();
    }
    let ms = started.elapsed().as_millis() as u64;
    let ev = AuditEvent::node_invoke(id, &e.node_id, &e.command, &e.caller, ms, outcome);
    st.args.audit.record(ev).await;
    let _ = reply.send(res);
}

/// The `node.list` entry of a known node (connected, approved, or both).
fn node_json(st: &NodeState, node_id: &str) -> Option<Value> {
    let online = st.online.get(node_id);
    let approved = st.store.approved.get(node_id);
    if online.is_none() && approved.is_none() {
        return None;
    }
    let state = approval_state(st, node_id)?;
    let mut v = match (online, approved) {
        (Some(o), _) => {
            let h = &o.hello;
            let (caps, commands) = exposed(st, o);
            json!({
                "nodeId": node_id,
                "displayName": approved.and_then(|a| a.display_name.clone()).or_else(|| h.display_name.clone()),
                "platform": h.platform, "version": h.version,
                "clientId": h.client_id, "clientMode": h.client_mode,
                "deviceFamily": h.device_family,
                "caps": caps, "commands": commands,
                "remoteIp": h.remote_ip,
                "pathEnv": h.path_env,
                "connectedAtMs": h.connected_at_ms,
                "lastConnectedAtMs": h.connected_at_ms,
                "lastSeenAtMs": h.connected_at_ms,
                "lastSeenReason": "connect",
                "hostStats": o.host_stats,
                "connected": true,
            })
        }
        (None, Some(a)) => json!({
            "nodeId": node_id,
            "displayName": a.display_name,
            "platform": a.platform, "version": a.version,
            "clientId": a.client_id, "clientMode": a.client_mode,
            "deviceFamily": a.device_family,
            "caps": a.caps, "commands": a.commands,
            "remoteIp": a.remote_ip,
            "connected": false,
        }),
        (None, None) => return None,
    };
    v["approvalState"] = json!(state);
    v["paired"] = json!(approved.is_some());
    v["nodePluginTools"] = json!([]);
    v["sessionHost"] = json!(false);
    v["pendingInvokes"] = json!(st.invokes.on_node(node_id));
    if let Some(a) = approved {
        v["approvedAtMs"] = json!(a.approved_at_ms);
    }
    if let Some(r) = st.store.pending.get(node_id) {
        v["pendingRequestId"] = json!(r.request_id);
    }
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, x| !x.is_null());
    }
    Some(v)
}

fn all_nodes(st: &NodeState) -> Vec<Value> {
    let mut ids: Vec<&String> = st.online.keys().chain(st.store.approved.keys()).collect();
    ids.sort();
    ids.dedup();
    ids.into_iter().filter_map(|id| node_json(st, id)).collect()
}

/// Refreshes the `status` summary.
fn publish(st: &NodeState) {
    let rows: Vec<Value> = all_nodes(st)
        .into_iter()
        .map(|n| {
            json!({
                "nodeId": n["nodeId"], "displayName": n["displayName"], "platform": n["platform"],
                "remoteIp": n["remoteIp"], "approvalState": n["approvalState"],
                "connected": n["connected"], "connectedAtMs": n["connectedAtMs"],
            })
        })
        .collect();
    *lock(&st.args.table.summary) = json!({
        "connected": st.online.len(),
        "paired": st.store.approved.len(),
        "pending": st.store.pending.len(),
        "rows": rows,
    });
}

/// Sends an event to every operator session whose scopes satisfy `scope`.
fn broadcast(st: &NodeState, event: &'static str, payload: Value, scope: &'static str) {
    st.args.presence.cast(PresenceMsg::Scoped {
        event,
        payload,
        scope,
    });
}

/// Sends `node.pair.resolved` to operators and directly to the node (no `seq`).
fn resolved(st: &NodeState, request_id: &str, node_id: &str, decision: &str) {
    let payload =
        json!({"requestId": request_id, "nodeId": node_id, "decision": decision, "ts": now_ms()});
    if let Some(o) = st.online.get(node_id) {
        let _ = o.session.cast(SessionMsg::Direct(frame::event(
            "node.pair.resolved",
            &payload,
            None,
            None,
        )));
    }
    broadcast(st, "node.pair.resolved", payload, PAIRING);
}

/// Writes the approved surfaces (0600) before the method answers.
async fn persist(st: &NodeState) -> Result<(), ErrorShape> {
    let (path, bytes) = (st.store.path().to_path_buf(), st.store.snapshot());
    let res = tokio::task::spawn_blocking(move || SurfaceStore::persist(&path, &bytes)).await;
    match res {
        Ok(Ok(())) => Ok(()),
        other => {
            tracing::error!(path = %st.store.path().display(), "could not persist approved nodes: {other:?}");
            Err(ErrorShape::unavailable(format!(
                "could not write {}; check the state directory's permissions and free space",
                st.store.path().display()
            )))
        }
    }
}

async fn pair(st: &mut NodeState, op: NodePairOp, caller: &Caller) -> Result<Value, ErrorShape> {
    let invalid = |m: &str| ErrorShape::new(code::INVALID_REQUEST, m);
    let now = now_ms();
    match op {
        NodePairOp::List => {
            let paired: Vec<&ApprovedNode> = st.store.approved.values().collect();
            Ok(json!({"pending": st.store.pending_list(), "paired": paired}))
        }
        NodePairOp::Approve { request_id } => {
            let req = st
                .store
                .find_request(&request_id)
                .ok_or_else(|| invalid("unknown requestId"))?;
            if let Some(s) = req
                .required_approve_scopes
                .iter()
                .find(|s| !satisfies(&caller.scopes, s))
            {
                return Err(ErrorShape::missing_scope(s));
            }
            let req = st
                .store
                .take_request(&request_id)
                .ok_or_else(|| invalid("unknown requestId"))?;
            let node_id = req.node_id.clone();
            let record = req.approve(st.store.approved.get(&node_id), now);
            st.store.approved.insert(node_id.clone(), record.clone());
            st.rejected.remove(&node_id);
            persist(st).await?;
            let ev = AuditEvent::node_pair_decided(
                "node.pair.approved",
                &node_id,
                &request_id,
                &caller.conn_id,
            );
            st.args.audit.record(ev).await;
            tracing::info!(node_id = %node_id, request_id = %request_id, "node command surface approved");
            resolved(st, &request_id, &node_id, "approved");
            broadcast(
                st,
                "node.runnerInventory.changed",
                json!({"nodeId": node_id}),
                READ,
            );
            publish(st);
            let mut node = json!(record);
            node["lastSeenAtMs"] = json!(now);
            node["lastSeenReason"] = json!("approve");
            Ok(json!({"requestId": request_id, "node": node}))
        }
        NodePairOp::Reject { request_id } => {
            let req = st
                .store
                .take_request(&request_id)
                .ok_or_else(|| invalid("unknown requestId"))?;
            let node_id = req.node_id;
            if st.online.contains_key(&node_id) {
                st.rejected.insert(node_id.clone());
            }
            let ev = AuditEvent::node_pair_decided(
                "node.pair.rejected",
                &node_id,
                &request_id,
                &caller.conn_id,
            );
            st.args.audit.record(ev).await;
            resolved(st, &request_id, &node_id, "rejected");
            publish(st);
            Ok(json!({"requestId": request_id, "nodeId": node_id}))
        }
        NodePairOp::Remove { node_id } => {
            let known = st.store.approved.remove(&node_id).is_some()
                | st.store.pending.remove(&node_id).is_some()
                | st.online.contains_key(&node_id);
            if !known {
                return Err(invalid("unknown nodeId"));
            }
            persist(st).await?;
            let ev =
                AuditEvent::node_pair_decided("node.pair.removed", &node_id, "", &caller.conn_id);
            st.args.audit.record(ev).await;
            tracing::info!(node_id = %node_id, "node removed");
            resolved(st, "", &node_id, "removed");
            // Forget the device pairing too: its device token stops working.
            let (auth, c) = (st.args.auth.clone(), caller.clone());
            let id = node_id.clone();
            let _ = auth
                .call(
                    |reply_to| AuthMsg::Pairing {
                        op: PairingOp::Remove { device_id: id },
                        caller: c,
                        reply_to,
                    },
                    Duration::from_secs(5),
                )
                .await;
            // Its session's Disconnected removes it from `online` and audits the close.
            if let Some(o) = st.online.get(&node_id) {
                let (code, reason) = REMOVED_CLOSE;
                let _ = o.session.cast(SessionMsg::Close {
                    code,
                    reason: reason.into(),
                });
            }
            publish(st);
            Ok(json!({"nodeId": node_id}))
        }
        NodePairOp::Rename {
            node_id,
            display_name,
        } => {
            let name = display_name.trim().to_string();
            if name.is_empty() || name.chars().count() > 64 {
                return Err(ErrorShape::invalid_params(
                    "node.rename",
                    "displayName must be 1 to 64 characters",
                ));
            }
            let a = st
                .store
                .approved
                .get_mut(&node_id)
                .ok_or_else(|| invalid("unknown nodeId"))?;
            a.display_name = Some(name.clone());
            persist(st).await?;
            let ev = AuditEvent::node_renamed(&node_id, &name, &caller.conn_id);
            st.args.audit.record(ev).await;
            publish(st);
            Ok(json!({"nodeId": node_id, "displayName": name}))
        }
    }
}
