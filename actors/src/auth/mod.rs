//! The Auth actor: decides every `connect` (shared secret, device proof, pairing), owns the
//! paired-device store and the pending pairing requests, answers `device.pair.*`, and audits
//! each success and failure. One call per handshake, never per frame. The rules themselves
//! are pure ([`rules`], [`pairing`]).

pub mod devices;
pub mod lockout;
mod pair_ops;
pub mod pairing;
pub mod rules;
pub mod tokens;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::json;

use crate::audit::events::AuthWho;
use crate::audit::{AuditEvent, AuditHandle};
use crate::protocol::connect::ConnectParams;
use crate::protocol::errors::ErrorShape;
use crate::session::manager::SessionManagerMsg;
use crate::shared::{now_ms, ConnFacts, Counters, Hub, Live, LiveConfig, Registry};
use crate::wiring::{Peers, Slot};
use devices::DeviceStore;
use pairing::PendingRequests;
use rules::{Pairing, Verdict};

/// The auth actor.
pub struct AuthActor;

/// Start-up arguments: the parts the Auth actor reads and the actor it talks to.
#[derive(Clone)]
pub struct AuthArgs {
    /// Where the paired-device store lives.
    pub state_dir: std::path::PathBuf,
    /// The secrets, trusted-proxy rules and lockout in force.
    pub live: Arc<LiveConfig>,
    /// `auth.ok` / `auth.failed`.
    pub counters: Arc<Counters>,
    /// Which connections a removed device has open.
    pub registry: Arc<Registry>,
    /// Audit producer.
    pub audit: AuditHandle,
    /// Closes a removed device's connections.
    pub sessions: Slot<SessionManagerMsg>,
    /// Auth failures by reason and lockouts, for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// What a session needs decided.
#[derive(Debug)]
pub struct AuthRequest {
    /// What the upgrade learned (peer, attributed client, proxy user, origin).
    pub conn: Arc<ConnFacts>,
    /// The challenge nonce sent to this connection.
    pub nonce: String,
    /// Parsed `connect` params.
    pub params: ConnectParams,
    /// The Tailscale login `whois` verified for this connection (managed listener, identity
    /// auth on, header and whois agree), if any.
    pub tailscale_user: Option<String>,
}

/// The answer.
#[derive(Debug, Clone)]
pub enum AuthReply {
    /// Send `hello-ok`.
    Accept {
        /// `none` | `token` | `password` | `device-token`.
        method: &'static str,
        /// Granted scopes.
        scopes: Vec<String>,
        /// Verified device id.
        device_id: Option<String>,
        /// The paired device's token for this role and when it was issued (`hello-ok`
        /// `auth.deviceToken` / `auth.issuedAtMs`).
        device_token: Option<(String, i64)>,
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

/// State: the device store and the lockout table. Secrets are read from [`LiveConfig`] at
/// each handshake, so a reload (or a restart of this actor) always uses the newest ones.
pub struct AuthState {
    args: AuthArgs,
    store: DeviceStore,
    /// Pending pairing requests of non-local devices (memory only, bounded).
    pending: PendingRequests,
    /// Generation of the store; writes of older snapshots are skipped.
    generation: u64,
    /// Last generation written, shared with the writer tasks.
    written: Arc<std::sync::Mutex<u64>>,
    /// Auth-failure lockout.
    lockout: Option<lockout::Lockout>,
    /// Device-token key (`None` when it could not be read or created: no tokens then).
    tokens: Option<tokens::TokenKey>,
}

/// Reference to the auth actor.
pub type AuthRef = ActorRef<AuthMsg>;

/// Starts the auth actor linked to `supervisor`.
pub async fn spawn(args: AuthArgs, supervisor: ActorCell) -> Result<AuthRef, ractor::SpawnErr> {
    Ok(Actor::spawn_linked(None, AuthActor, args, supervisor)
        .await?
        .0)
}

// === impl AuthArgs ===

impl AuthArgs {
    /// The parts of `hub` the Auth actor uses.
    pub fn from_hub(hub: &Hub, peers: &Peers) -> Self {
        Self {
            state_dir: hub.settings().paths.state_dir.clone(),
            live: hub.live.clone(),
            counters: hub.counters.clone(),
            registry: hub.registry.clone(),
            audit: hub.audit.clone(),
            sessions: peers.sessions.clone(),
            metrics: hub.metrics.clone(),
        }
    }
}

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
        let store = DeviceStore::load(&args.state_dir);
        let lockout = args.live.get().lockout.map(lockout::Lockout::new);
        me.send_interval(Duration::from_secs(30), || AuthMsg::Prune);
        let tokens = match tokens::TokenKey::load_or_create(&args.state_dir) {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::error!(error = %e, "cannot read or create the device-token key; devices must use the shared secret");
                None
            }
        };
        Ok(AuthState {
            tokens,
            args,
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
                tracing::trace!(actor = "auth", msg = "Authenticate", conn_id = %request.conn.conn_id, "message");
                let reply = authenticate(state, &request).await;
                state.args.audit.trace.note(&request.conn.conn_id, || {
                    let verdict = match &reply {
                        AuthReply::Accept { method, scopes, .. } => {
                            format!("accept method={method} scopes={scopes:?}")
                        }
                        AuthReply::Reject { error, .. } => {
                            format!("reject code={}", error_code(error))
                        }
                    };
                    format!("actor=auth msg=Authenticate {verdict}")
                });
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
                    l.prune(Instant::now());
                }
                state.pending.prune(now_ms());
            }
        }
        Ok(())
    }
}

async fn authenticate(state: &mut AuthState, req: &AuthRequest) -> AuthReply {
    let now = Instant::now();
    let live = state.args.live.get();
    if state.lockout.as_ref().map(|l| *l.config()) != live.lockout {
        // A reload changed the lockout rules: start over with the new ones.
        state.lockout = live.lockout.map(lockout::Lockout::new);
    }
    let c = &req.conn;
    let key = state
        .lockout
        .as_ref()
        .and_then(|l| lockout::key_for(l.config(), c.client, c.origin.as_deref()));
    if let (Some(l), Some(k)) = (state.lockout.as_mut(), key.as_deref()) {
        if let Err(retry) = l.check(k, now) {
            return locked_out(state, req, retry).await;
        }
    }
    let decided = decide(state, req, &live).await;
    if let Some(k) = key.as_deref() {
        note_outcome(state, req, k, &decided, now).await;
    }
    decided.reply
}

/// Feeds the lockout table: a wrong credential counts (and may lock the key out, audited),
/// an acceptance clears the key.
async fn note_outcome(
    state: &mut AuthState,
    req: &AuthRequest,
    k: &str,
    d: &Decided,
    now: Instant,
) {
    let Some(l) = state.lockout.as_mut() else {
        return;
    };
    if d.wrong_credential {
        if let Some(count) = l.failure(k, now) {
            Counters::bump(&state.args.metrics.lockouts);
            let span = l.config().lockout;
            tracing::warn!(peer = %req.conn.peer, failures = count, lockout_ms = span.as_millis() as u64, "client locked out after repeated wrong credentials");
            let ev = AuditEvent::auth_lockout(req.conn.peer, k, count, span);
            state.args.audit.record(ev).await;
        }
    } else if matches!(d.reply, AuthReply::Accept { .. }) {
        l.success(k);
    }
}

/// The `rate_limited` rejection (PROTOCOL §2.7), audited.
async fn locked_out(state: &AuthState, req: &AuthRequest, retry: Duration) -> AuthReply {
    Counters::bump(&state.args.counters.auth_failed);
    state.args.metrics.auth_failure("rate_limited");
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
    let ev = AuditEvent::auth_fail(who(req), "rate_limited", "AUTH_RATE_LIMITED")
        .with("retryAfterMs", retry_ms);
    state.args.audit.record(ev).await;
    reject(error)
}

/// A decision and whether a wrong credential was presented (it counts for the lockout).
struct Decided {
    reply: AuthReply,
    wrong_credential: bool,
}

/// Who asks, for the audit.
fn who(req: &AuthRequest) -> AuthWho<'_> {
    let p = &req.params;
    AuthWho {
        conn: &req.conn,
        client_id: &p.client.id,
        client_mode: &p.client.mode,
        client_version: &p.client.version,
        role: p.role(),
    }
}

/// Send `error`, close with its message.
fn reject(error: ErrorShape) -> AuthReply {
    let close_reason = error.message.clone();
    AuthReply::Reject {
        error,
        close_reason,
    }
}

/// Runs the pure rules with the secrets in force.
fn verdict(state: &AuthState, req: &AuthRequest, live: &Live) -> Verdict {
    let (p, c) = (&req.params, &req.conn);
    let pairing = |id: &str| match state.store.devices.get(id) {
        Some(d) => Pairing::Paired {
            token: device_token(state, id, p.role()).map(|(t, _)| t),
            scopes: d.scopes.clone(),
        },
        None => Pairing::Unknown,
    };
    match (&live.secrets.mode, &live.policy.proxy_auth) {
        (crate::config::AuthMode::TrustedProxy, Some(pa)) => rules::decide_trusted_proxy(
            &live.secrets,
            pa,
            c.proxy_user.as_ref(),
            p,
            &req.nonce,
            c.is_local(),
            pairing,
            now_ms(),
        ),
        _ => {
            let ts = req
                .tailscale_user
                .as_ref()
                .map(|login| rules::TailscaleUser {
                    login: login.clone(),
                    allowed: crate::tailscale::parse::user_allowed(
                        &live.policy.tailscale_users,
                        login,
                    ),
                    extra_scopes: live.policy.tailscale_extra_scopes(login),
                });
            rules::decide_with(
                &live.secrets,
                p,
                &req.nonce,
                c.is_local(),
                pairing,
                now_ms(),
                ts.as_ref(),
            )
        }
    }
}

/// Decides, applies the side effects of the verdict (silent approval, a pending pairing
/// request), counts and audits.
async fn decide(state: &mut AuthState, req: &AuthRequest, live: &Live) -> Decided {
    let counters = state.args.counters.clone();
    match verdict(state, req, live) {
        Verdict::Accept {
            method,
            scopes,
            device_id,
            approve_device,
        } => {
            if let (true, Some(id)) = (approve_device, &device_id) {
                pair_ops::approve_silently(state, req, id);
            }
            let device_token = device_id
                .as_deref()
                .and_then(|id| device_token(state, id, req.params.role()));
            Counters::bump(&counters.auth_ok);
            let ev = AuditEvent::auth_ok(who(req), method, &scopes)
                .with_opt("deviceId", device_id.clone())
                .with_opt("user", tailscale_login(req, method));
            state.args.audit.record(ev).await;
            let reply = AuthReply::Accept {
                method,
                scopes,
                device_id,
                device_token,
            };
            Decided {
                reply,
                wrong_credential: false,
            }
        }
        Verdict::Reject {
            error,
            reason,
            wrong_credential,
        } => {
            Counters::bump(&counters.auth_failed);
            state.args.metrics.auth_failure(&reason);
            let ev = AuditEvent::auth_fail(who(req), reason.as_str(), &error_code(&error))
                .with_opt(
                    "user",
                    (reason == "tailscale_user_not_allowed")
                        .then(|| req.tailscale_user.clone())
                        .flatten(),
                );
            state.args.audit.record(ev).await;
            Decided {
                reply: reject(error),
                wrong_credential,
            }
        }
        Verdict::NeedsPairing { device_id } => {
            Counters::bump(&counters.auth_failed);
            state.args.metrics.auth_failure("pairing_required");
            let request_id = pair_ops::request_pairing(state, req, &device_id).await;
            let (error, close_reason) =
                rules::pairing_required(&device_id, &request_id, req.params.role());
            let ev = AuditEvent::auth_fail(who(req), "pairing_required", "PAIRING_REQUIRED")
                .with("deviceId", device_id.as_str())
                .with("requestId", request_id.as_str());
            state.args.audit.record(ev).await;
            let reply = AuthReply::Reject {
                error,
                close_reason,
            };
            Decided {
                reply,
                wrong_credential: false,
            }
        }
    }
}

/// The token of a paired device for `role` and its issue time (the approval time, so a
/// re-approval or removal revokes older tokens). `None`: not paired under that role, or no key.
fn device_token(state: &AuthState, device_id: &str, role: &str) -> Option<(String, i64)> {
    let d = state.store.devices.get(device_id)?;
    if d.role != role {
        return None;
    }
    let issued = d.approved_at_ms;
    Some((
        state.tokens.as_ref()?.token(device_id, role, issued),
        issued,
    ))
}

/// The Tailscale login, for the audit of a `tailscale` acceptance.
fn tailscale_login(req: &AuthRequest, method: &str) -> Option<String> {
    (method == "tailscale")
        .then(|| req.tailscale_user.clone())
        .flatten()
}

fn error_code(e: &ErrorShape) -> String {
    e.details
        .as_ref()
        .and_then(|d| d.get("code"))
        .and_then(|c| c.as_str())
        .unwrap_or(&e.code)
        .to_string()
}
