//! The Reloader actor: applies config changes without a restart, when asked (SIGHUP, which
//! the binary's signal module turns into [`ReloaderMsg::Reload`]) or when the config file
//! changes on disk (checked every [`POLL_EVERY`] unless `gateway.reload.mode` is `off`).
//!
//! What a change means is the pure [`plan`]: tokens and passwords (rotation: new connections
//! need the new secret, open ones stay), the IP allowlists, trusted proxies, trusted-proxy
//! auth, the request rate limit and the auth-failure lockout apply live — swapped whole in
//! [`LiveConfig`] with the file as loaded, so `config.get` and `status` agree. Everything
//! else (port, bind, auth mode, TLS, tunnels, timeouts, paths) needs a restart: it is
//! reported and left alone. An invalid file changes nothing. Every reload, applied or not,
//! is an audit event (`config.reload`). A gateway running on its generated runtime token
//! re-reads `<stateDir>/gateway.token` at each explicit reload (SIGHUP, `gateway.reload`),
//! which is how `openclaw token rotate` applies a rotated token file.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::{json, Value};

use super::plan::plan;
use super::{AuthMode, ConfigError, Settings};
use crate::audit::{AuditEvent, AuditHandle};
use crate::auth::rules::Secrets;
use crate::guard::limiter_actor::RateLimiterMsg;
use crate::secret::Secret;
use crate::shared::{Counters, Facts, Hub, Live, LiveConfig};
use crate::tls::reloader::TlsReloaderMsg;
use crate::wiring::{Peers, Slot};

/// How often the config file is checked for changes.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// The actor.
pub struct ReloaderActor;

/// Start-up arguments.
#[derive(Clone)]
pub struct ReloaderArgs {
    /// The settings as started (inputs to re-resolve, the file's path, restart-only keys).
    pub facts: Arc<Facts>,
    /// Where the new settings go.
    pub live: Arc<LiveConfig>,
    /// `reloads` / `reloadsFailed`.
    pub counters: Arc<Counters>,
    /// Audit producer.
    pub audit: AuditHandle,
    /// Told about new rate limits.
    pub limiter: Slot<RateLimiterMsg>,
    /// Told to re-read the certificate on SIGHUP (and other explicit reloads).
    pub tls: Slot<TlsReloaderMsg>,
    /// Applies a changed `logging.level`.
    pub log: Arc<crate::shared::LogControl>,
    /// Applies changed `tunnels`.
    pub tunnels: Slot<crate::tunnel::supervisor::TunnelSupMsg>,
}

/// Messages.
pub enum ReloaderMsg {
    /// Timer: reload if the file's bytes changed.
    Poll,
    /// Reload now (SIGHUP, or a request); the reply gets the outcome.
    Reload {
        /// What asked: `SIGHUP`, `request`.
        trigger: &'static str,
        /// The outcome, as audited.
        reply_to: RpcReplyPort<Value>,
    },
}

/// State.
pub struct ReloaderState {
    args: ReloaderArgs,
    /// SHA-256 of the file bytes last loaded (or seen invalid).
    seen: String,
    /// The file's (mtime, length) when last hashed: the poll reads the file only when its
    /// metadata moved.
    stamp: Option<(SystemTime, u64)>,
}

/// Reference to the reloader.
pub type ReloaderRef = ActorRef<ReloaderMsg>;

/// Starts the reloader linked to `supervisor`.
pub async fn spawn(
    args: ReloaderArgs,
    supervisor: ActorCell,
) -> Result<ReloaderRef, ractor::SpawnErr> {
    Ok(Actor::spawn_linked(None, ReloaderActor, args, supervisor)
        .await?
        .0)
}

// === impl ReloaderArgs ===

impl ReloaderArgs {
    /// The parts of `hub` the reloader uses.
    pub fn from_hub(hub: &Hub, peers: &Peers) -> Self {
        Self {
            facts: hub.facts.clone(),
            live: hub.live.clone(),
            counters: hub.counters.clone(),
            audit: hub.audit.clone(),
            limiter: peers.limiter.clone(),
            tls: peers.tls.clone(),
            log: hub.log.clone(),
            tunnels: peers.tunnels.clone(),
        }
    }

    fn stamp(&self) -> Option<(SystemTime, u64)> {
        let m = std::fs::metadata(&self.facts.settings.paths.config_path).ok()?;
        Some((m.modified().ok()?, m.len()))
    }

    fn hash(&self) -> String {
        super::load::file_hash(&self.facts.settings.paths.config_path)
    }
}

impl ReloaderMsg {
    /// Message kind for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            ReloaderMsg::Poll => "Poll",
            ReloaderMsg::Reload { .. } => "Reload",
        }
    }
}

impl Actor for ReloaderActor {
    type Msg = ReloaderMsg;
    type State = ReloaderState;
    type Arguments = ReloaderArgs;

    async fn pre_start(
        &self,
        me: ActorRef<ReloaderMsg>,
        args: ReloaderArgs,
    ) -> Result<ReloaderState, ActorProcessingErr> {
        let mode = args.facts.settings.file.gateway.reload.as_ref();
        if mode.and_then(|r| r.mode.as_deref()) != Some("off") {
            me.send_interval(POLL_EVERY, || ReloaderMsg::Poll);
        }
        Ok(ReloaderState {
            seen: args.live.get().file_hash.clone(),
            stamp: args.stamp(),
            args,
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<ReloaderMsg>,
        msg: ReloaderMsg,
        st: &mut ReloaderState,
    ) -> Result<(), ActorProcessingErr> {
        tracing::trace!(actor = "reloader", msg = msg.kind(), "message");
        match msg {
            ReloaderMsg::Poll => {
                let stamp = st.args.stamp();
                if stamp == st.stamp {
                    return Ok(());
                }
                st.stamp = stamp;
                let h = st.args.hash();
                if h != st.seen {
                    st.seen = h;
                    reload(&st.args, "file").await;
                }
            }
            ReloaderMsg::Reload { trigger, reply_to } => {
                // The certificate files too (their own actor; absent when TLS is off).
                st.args.tls.cast(TlsReloaderMsg::Reload {
                    trigger,
                    reply_to: None,
                });
                st.stamp = st.args.stamp();
                st.seen = st.args.hash();
                let out = reload(&st.args, trigger).await;
                let _ = reply_to.send(out);
            }
        }
        Ok(())
    }
}

/// Reloads the config file and applies what can change live. Returns the outcome (also
/// audited as `config.reload`).
pub async fn reload(a: &ReloaderArgs, trigger: &'static str) -> Value {
    match resolve(a).await {
        Ok((new, runtime)) => apply(a, trigger, new, runtime).await,
        Err(e) => {
            Counters::bump(&a.counters.reloads_failed);
            let msg = e.to_string();
            tracing::error!(trigger, error = %msg, "config reload refused; the running settings stay");
            a.audit
                .record(AuditEvent::reload_refused(trigger, &msg))
                .await;
            json!({"ok": false, "error": msg})
        }
    }
}

/// Resolves the settings again from the same inputs, off the actor (it reads files). When
/// the running token is the generated runtime token and the config still names none, the
/// runtime token file is read again too (`openclaw token rotate` rewrites it).
async fn resolve(a: &ReloaderArgs) -> Result<(Settings, Option<Secret>), ConfigError> {
    let env = |k: &str| std::env::var(k).ok();
    let inputs = a.facts.settings.inputs.clone();
    let runtime_path = a.facts.runtime_token_path.clone();
    tokio::task::spawn_blocking(move || {
        let s = super::resolve(&inputs, &env)?;
        let runtime = runtime_path
            .filter(|_| s.auth.mode == AuthMode::Token && s.auth.token.is_none())
            .and_then(|p| crate::state::load_runtime_token(&p));
        Ok((s, runtime))
    })
    .await
    .map_err(|e| ConfigError::Refused(format!("reload task failed: {e}")))?
}

/// Applies a changed `tunnels` list: only the changed tunnels restart. `openclaw tunnel run
/// NAME…` (no listeners) keeps to the tunnels it was started with.
async fn apply_tunnels(a: &ReloaderArgs) {
    let mut tunnels = a.live.get().settings.tunnels.clone();
    let boot = &a.facts.settings;
    if boot.listen.is_empty() {
        tunnels.retain(|t| boot.tunnels.iter().any(|b| b.name == t.name));
    }
    let res = a
        .tunnels
        .call(
            |reply_to| crate::tunnel::supervisor::TunnelSupMsg::Reconfigure { tunnels, reply_to },
            Duration::from_secs(30),
        )
        .await;
    match res {
        Ok(v) => tracing::info!(changes = %v, "tunnels reconfigured by config reload"),
        Err(e) => {
            tracing::error!(error = %e, "tunnels not reconfigured: the tunnel supervisor {e}")
        }
    }
}

/// Applies a changed `logging.level` to the running process (not over `RUST_LOG`).
fn apply_log_level(a: &ReloaderArgs, level: &str) {
    if a.log
        .env_override
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        tracing::warn!(
            level,
            "logging.level changed, but RUST_LOG was set at start and wins; not applied"
        );
        return;
    }
    match a.log.set(&crate::shared::LogControl::level_filter(level)) {
        Ok(prev) => tracing::info!(level, previous = %prev, "log level changed by config reload"),
        Err(e) => tracing::warn!(level, error = %e, "logging.level not applied"),
    }
}

/// Swaps in the new live settings: what applies live is planned against the settings last
/// loaded, what needs a restart against the settings the process started with.
///
/// `runtime` is the runtime token file's current value (see [`resolve`]): a rotated file
/// replaces the generated token in force and is reported as `gateway.auth.token`.
async fn apply(
    a: &ReloaderArgs,
    trigger: &'static str,
    new: Settings,
    runtime: Option<Secret>,
) -> Value {
    let cur = a.live.get();
    let mut applied = plan(&cur.settings, &new).apply;
    let restart = plan(&a.facts.settings, &new).restart;
    let mut secrets = Secrets {
        mode: cur.secrets.mode,
        token: new.auth.token.clone(),
        password: new.auth.password.clone(),
    };
    if secrets.mode == AuthMode::Token && secrets.token.is_none() {
        // the generated runtime token: the file's value when it is still usable, else the
        // one in force
        secrets.token = runtime.or_else(|| cur.secrets.token.clone());
        let rotated = !same_token(&secrets.token, &cur.secrets.token);
        if rotated && !applied.contains(&"gateway.auth.token") {
            applied.insert(0, "gateway.auth.token");
        }
    }
    let generation = cur.generation + u64::from(!applied.is_empty());
    let rate_changed = new.policy.rate != cur.policy.rate;
    let rate = new.policy.rate;
    a.live.set(Live {
        file_hash: super::load::file_hash(&new.paths.config_path),
        secrets,
        policy: new.policy.clone(),
        lockout: new.lockout,
        generation,
        restart_pending: restart.clone(),
        settings: Arc::new(new),
    });
    if rate_changed {
        a.limiter.cast(RateLimiterMsg::Reconfigure(rate));
    }
    if applied.contains(&"logging.level") {
        apply_log_level(a, &a.live.get().settings.log_level);
    }
    if applied.contains(&"tunnels") {
        apply_tunnels(a).await;
    }
    Counters::bump(&a.counters.reloads);
    if restart.is_empty() {
        tracing::info!(trigger, changed = ?applied, generation, "config reloaded");
    } else {
        tracing::warn!(trigger, changed = ?applied, restart_required = ?restart,
            "config reloaded; some changes need a restart and were not applied (restart the gateway)");
    }
    let ev = AuditEvent::reload_applied(trigger, &applied, &restart, generation);
    a.audit.record(ev).await;
    json!({"ok": true, "applied": applied, "restartRequired": restart, "generation": generation})
}

/// Whether two optional tokens are equal (constant time when both are set).
fn same_token(a: &Option<Secret>, b: &Option<Secret>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x.matches(y.expose()),
        (None, None) => true,
        _ => false,
    }
}
