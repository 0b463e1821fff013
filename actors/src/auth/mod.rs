//! The Auth actor: decides every `connect` (shared secret, device proof, pairing), owns the
//! paired-device store and the pending pairing requests, answers `device.pair.*`, and audits
//! each success and failure. One call per handshake, never per frame. The rules themselves
//! are pure ([`rules`], [`pairing`]).

pub mod devices;
pub mod lockout;
mod pair_ops;
pub mod pairing;
pub mod rules;

use std::net::SocketAddr;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::json;

use crate::audit::AuditEvent;
use crate::protocol::connect::ConnectParams;
use crate::protocol::errors::ErrorShape;
use crate::shared::{now_ms, Shared};
use devices::DeviceStore;
use pairing::PendingRequests;
use rules::{Pairing, Verdict};

/// Registered name of the auth actor.
pub const NAME: &str = "openclaw.auth";

/// The auth actor.
pub struct AuthActor;

/// Start-up arguments.
pub struct AuthArgs {
    /// Shared state (settings, live secrets, audit).
    pub shared: Arc<Shared>,
}

/// What a session needs decided.
#[derive(Debug)]
pub struct AuthRequest {
    /// Connection id.
    pub conn_id: String,
    /// TCP peer.
    pub peer: SocketAddr,
    /// The client: the TCP peer, or who a trusted proxy says it forwards.
    pub client: std::net::IpAddr,
    /// The user a trusted proxy names (auth mode `trusted-proxy`), or why it names none.
    pub proxy_user: Option<Result<String, &'static str>>,
    /// Loopback without proxy headers or `Origin`.
    pub local: bool,
    /// The challenge nonce sent to this connection.
    pub nonce: String,
    /// `Origin` header (a browser: no loopback exemption from the lockout).
    pub origin: Option<String>,
    /// Parsed `connect` params.
    pub params: ConnectParams,
}

/// The answer.
#[derive(Debug, Clone)]
pub enum AuthReply {
    /// Send `hello-ok`.
    Accept {
        /// `none` | `token` | `password`.
        method: &'static str,
        /// Granted scopes.
        scopes: Vec<String>,
        /// Verified device id.
        device_id: Option<String>,
    },
    /// Send `error`, then close 1008 with `close_reason`.
    Reject {
        /// The `res` error.
        error: ErrorShape,
        /// Close reason (≤ 120 bytes after truncation).
        close_reason: String,
    },
}

/// Messages to the auth actor.
pub enum AuthMsg {
    /// Decide a `connect`; audits the outcome.
    Authenticate {
        /// The request.
        request: Box<AuthRequest>,
        /// Where to answer.
        reply_to: RpcReplyPort<AuthReply>,
    },
    /// Answer a `device.pair.*` request (PROTOCOL-NODES §5): list, approve, reject or remove;
    /// persists and audits changes, and replies once the store is on disk.
    Pairing {
        /// What to do.
        op: PairingOp,
        /// Who asks (for the admin check and the audit).
        caller: Caller,
        /// The method's result or error.
        reply_to: RpcReplyPort<Result<serde_json::Value, ErrorShape>>,
    },
    /// Timer: forget idle lockout keys and expired pairing requests.
    Prune,
}

/// A `device.pair.*` operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairingOp {
    /// `device.pair.list`.
    List,
    /// `device.pair.approve {requestId}`.
    Approve {
        /// The pending request.
        request_id: String,
    },
    /// `device.pair.reject {requestId}`.
    Reject {
        /// The pending request.
        request_id: String,
    },
    /// `device.pair.remove {deviceId}`.
    Remove {
        /// The paired device.
        device_id: String,
    },
}

/// The connection asking for a pairing operation.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Its connection id (audited).
    pub conn_id: String,
    /// Its granted scopes (approving a non-operator role needs `operator.admin`).
    pub scopes: Vec<String>,
}

/// State: the device store and the lockout table. Secrets are read from [`Shared::live`] at
/// each handshake, so a reload (or a restart of this actor) always uses the newest ones.
pub struct AuthState {
    shared: Arc<Shared>,
    store: DeviceStore,
    /// Pending pairing requests of non-local devices (memory only, bounded).
    pending: PendingRequests,
    /// Generation of the store; writes of older snapshots are skipped.
    generation: u64,
    /// Last generation written, shared with the writer tasks.
    written: Arc<std::sync::Mutex<u64>>,
    /// Auth-failure lockout.
    lockout: Option<lockout::Lockout>,
}

/// Reference to the auth actor.
pub type AuthRef = ActorRef<AuthMsg>;

impl AuthMsg {
    /// Message kind for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthMsg::Authenticate { .. } => "Authenticate",
            AuthMsg::Pairing { .. } => "Pairing",
            AuthMsg::Prune => "Prune",
        }
    }
}

impl Actor for AuthActor {
    type Msg = AuthMsg;
    type State = AuthState;
    type Arguments = AuthArgs;

    async fn pre_start(
        &self,
        me: ActorRef<AuthMsg>,
        args: AuthArgs,
    ) -> Result<AuthState, ActorProcessingErr> {
        let store = DeviceStore::load(&args.shared.settings.paths.state_dir);
        let lockout = args.shared.live().lockout.map(lockout::Lockout::new);
        me.send_interval(std::time::Duration::from_secs(30), || AuthMsg::Prune);
        Ok(AuthState {
            shared: args.shared,
            store,
            pending: Default::default(),
            generation: 0,
            written: Arc::new(std::sync::Mutex::new(0)),
            lockout,
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<AuthMsg>,
        msg: AuthMsg,
        state: &mut AuthState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AuthMsg::Authenticate { request, reply_to } => {
                tracing::trace!(actor = "auth", msg = "Authenticate", conn_id = %request.conn_id, "message");
                let reply = authenticate(state, &request).await;
                let _ = reply_to.send(reply);
            }
            AuthMsg::Pairing {
                op,
                caller,
                reply_to,
            } => {
                tracing::trace!(actor = "auth", msg = "Pairing", ?op, conn_id = %caller.conn_id, "message");
                pair_ops::handle(state, op, &caller, reply_to).await;
            }
            AuthMsg::Prune => {
                if let Some(l) = state.lockout.as_mut() {
                    l.prune(std::time::Instant::now());
                }
                state.pending.prune(now_ms());
            }
        }
        Ok(())
    }
}

async fn authenticate(state: &mut AuthState, req: &AuthRequest) -> AuthReply {
    let now = std::time::Instant::now();
    let live = state.shared.live();
    if state.lockout.as_ref().map(|l| *l.config()) != live.lockout {
        // A reload changed the lockout rules: start over with the new ones.
        state.lockout = live.lockout.map(lockout::Lockout::new);
    }
    let key = state
        .lockout
        .as_ref()
        .and_then(|l| lockout::key_for(l.config(), req.client, req.origin.as_deref()));
    if let (Some(l), Some(k)) = (state.lockout.as_mut(), key.as_deref()) {
        if let Err(retry) = l.check(k, now) {
            return locked_out(state, req, retry).await;
        }
    }
    let reply = decide_and_audit(state, req, &live).await;
    if let (Some(l), Some(k)) = (state.lockout.as_mut(), key.as_deref()) {
        match &reply {
            (_, true) => {
                if let Some(count) = l.failure(k, now) {
                    let ms = l.config().lockout.as_millis() as u64;
                    let ev = AuditEvent::new("auth.lockout")
                        .with("peer", req.peer.to_string())
                        .with("key", k)
                        .with("failures", count)
                        .with("lockoutMs", ms);
                    tracing::warn!(peer = %req.peer, failures = count, lockout_ms = ms, "client locked out after repeated wrong credentials");
                    state.shared.audit.record(ev).await;
                }
            }
            (AuthReply::Accept { .. }, false) => l.success(k),
            _ => {}
        }
    }
    reply.0
}

/// The `rate_limited` rejection (PROTOCOL §2.7), audited.
async fn locked_out(state: &AuthState, req: &AuthRequest, retry: std::time::Duration) -> AuthReply {
    state
        .shared
        .counters
        .auth_failed
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let retry_ms = retry.as_millis().max(1) as u64;
    let mut error = ErrorShape::new(
        crate::protocol::errors::code::INVALID_REQUEST,
        "unauthorized: too many failed authentication attempts (retry later)",
    )
    .with_details(json!({
        "code": "AUTH_RATE_LIMITED", "authReason": "rate_limited",
        "canRetryWithDeviceToken": false, "recommendedNextStep": "wait_then_retry",
    }));
    error.retryable = Some(true);
    error.retry_after_ms = Some(retry_ms);
    let ev = AuditEvent::new("auth.fail")
        .with("connId", req.conn_id.as_str())
        .with("peer", req.peer.to_string())
        .with("clientId", req.params.client.id.as_str())
        .with("reason", "rate_limited")
        .with("code", "AUTH_RATE_LIMITED")
        .with("retryAfterMs", retry_ms);
    state.shared.audit.record(ev).await;
    let close_reason = error.message.clone();
    AuthReply::Reject {
        error,
        close_reason,
    }
}

/// Runs the rules and audits; the bool says whether a wrong credential was presented.
async fn decide_and_audit(
    state: &mut AuthState,
    req: &AuthRequest,
    live: &crate::shared::Live,
) -> (AuthReply, bool) {
    let p = &req.params;
    let store = &state.store;
    let pairing = |id: &str| {
        if store.devices.contains_key(id) {
            Pairing::Paired
        } else {
            Pairing::Unknown
        }
    };
    let verdict = match (&live.secrets.mode, &live.policy.proxy_auth) {
        (crate::config::AuthMode::TrustedProxy, Some(pa)) => rules::decide_trusted_proxy(
            &live.secrets,
            pa,
            req.proxy_user.as_ref(),
            p,
            &req.nonce,
            req.local,
            pairing,
            now_ms(),
        ),
        _ => rules::decide(&live.secrets, p, &req.nonce, req.local, pairing, now_ms()),
    };
    let mut base = AuditEvent::new("auth")
        .with("connId", req.conn_id.as_str())
        .with("peer", req.peer.to_string())
        .with("clientId", p.client.id.as_str())
        .with("clientMode", p.client.mode.as_str())
        .with("clientVersion", p.client.version.as_str())
        .with("role", p.role());
    if req.client != req.peer.ip() {
        base = base.with("client", req.client.to_string());
    }
    if let Some(Ok(user)) = &req.proxy_user {
        base = base.with("user", user.as_str());
    }
    let shared = state.shared.clone();
    let counters = &shared.counters;
    match verdict {
        Verdict::Accept {
            method,
            scopes,
            device_id,
            approve_device,
        } => {
            if approve_device {
                if let Some(id) = &device_id {
                    pair_ops::approve_silently(state, req, id);
                }
            }
            counters
                .auth_ok
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut ev = base.with("method", method).with("scopes", json!(scopes));
            ev.event = "auth.ok";
            if let Some(id) = &device_id {
                ev = ev.with("deviceId", id.as_str());
            }
            state.shared.audit.record(ev).await;
            (
                AuthReply::Accept {
                    method,
                    scopes,
                    device_id,
                },
                false,
            )
        }
        Verdict::Reject {
            error,
            reason,
            wrong_credential,
        } => {
            counters
                .auth_failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut ev = base
                .with("reason", reason.as_str())
                .with("code", error_code(&error));
            ev.event = "auth.fail";
            state.shared.audit.record(ev).await;
            let close_reason = error.message.clone();
            (
                AuthReply::Reject {
                    error,
                    close_reason,
                },
                wrong_credential,
            )
        }
        Verdict::NeedsPairing { device_id } => {
            counters
                .auth_failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let request_id = pair_ops::request_pairing(state, req, &device_id).await;
            let (error, close_reason) = rules::pairing_required(&device_id, &request_id, p.role());
            let mut ev = base
                .with("reason", "pairing_required")
                .with("code", "PAIRING_REQUIRED")
                .with("deviceId", device_id.as_str())
                .with("requestId", request_id.as_str());
            ev.event = "auth.fail";
            state.shared.audit.record(ev).await;
            (
                AuthReply::Reject {
                    error,
                    close_reason,
                },
                false,
            )
        }
    }
}

fn error_code(e: &ErrorShape) -> String {
    e.details
        .as_ref()
        .and_then(|d| d.get("code"))
        .and_then(|c| c.as_str())
        .unwrap_or(&e.code)
        .to_string()
}
