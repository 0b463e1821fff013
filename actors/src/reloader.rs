//! The Reloader actor: applies config changes without a restart (SIGHUP, or the config file
//! changing on disk, checked every [`POLL_EVERY`] unless `gateway.reload.mode` is `off`).
//!
//! Live: tokens and passwords (rotation: new connections need the new secret, open ones stay),
//! the IP allowlists, trusted proxies, trusted-proxy auth, the request rate limit and the
//! auth-failure lockout. They are swapped whole in [`Shared::live`]. Everything else (port,
//! bind, auth mode, TLS, tunnels, timeouts, paths) needs a restart: such a change is reported
//! and left alone — the running listeners keep their old settings entirely. An invalid file
//! changes nothing. Every reload, applied or not, is an audit event (`config.reload`).

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::{json, Value};

use crate::audit::AuditEvent;
use crate::auth::rules::Secrets;
use crate::config::{self, AuthMode, Settings};
use crate::shared::{Live, Shared};

/// Registered name.
pub const NAME: &str = "openclaw.reloader";

/// How often the config file is checked for changes.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// The actor.
pub struct ReloaderActor;

/// Messages.
pub enum ReloaderMsg {
    /// Timer: reload if the file's bytes changed.
    Poll,
    /// Reload now (SIGHUP, or a request); the reply gets the outcome.
    Reload {
        /// What asked: `SIGHUP`, `file`, `request`.
        trigger: &'static str,
        /// Optional answer.
        reply_to: Option<RpcReplyPort<Value>>,
    },
}

/// State.
pub struct ReloaderState {
    shared: Arc<Shared>,
    /// SHA-256 of the file bytes last loaded (or seen invalid).
    seen: String,
    /// The file's (mtime, length) when last hashed: the poll reads the file only when its
    /// metadata moved.
    stamp: Option<(std::time::SystemTime, u64)>,
    sighup: Option<tokio::task::JoinHandle<()>>,
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

fn file_hash(shared: &Shared) -> String {
    let raw = std::fs::read(&shared.settings.paths.config_path).unwrap_or_default();
    crate::protocol::device::device_id(&raw)
}

fn file_stamp(shared: &Shared) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(&shared.settings.paths.config_path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl Actor for ReloaderActor {
    type Msg = ReloaderMsg;
    type State = ReloaderState;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        me: ActorRef<ReloaderMsg>,
        shared: Arc<Shared>,
    ) -> Result<ReloaderState, ActorProcessingErr> {
        let watch = shared
            .settings
            .file
            .gateway
            .reload
            .as_ref()
            .and_then(|r| r.mode.as_deref())
            != Some("off");
        if watch {
            me.send_interval(POLL_EVERY, || ReloaderMsg::Poll);
        }
        let sighup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(mut sig) => {
                let me = me.clone();
                Some(tokio::spawn(async move {
                    while sig.recv().await.is_some() {
                        let _ = me.cast(ReloaderMsg::Reload {
                            trigger: "SIGHUP",
                            reply_to: None,
                        });
                    }
                }))
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload by editing the config file");
                None
            }
        };
        Ok(ReloaderState {
            seen: shared.config_hash.clone(),
            stamp: file_stamp(&shared),
            shared,
            sighup,
        })
    }

    async fn post_stop(
        &self,
        _me: ActorRef<ReloaderMsg>,
        st: &mut ReloaderState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = st.sighup.take() {
            t.abort();
        }
        Ok(())
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
                let stamp = file_stamp(&st.shared);
                if stamp == st.stamp {
                    return Ok(());
                }
                st.stamp = stamp;
                let h = file_hash(&st.shared);
                if h != st.seen {
                    st.seen = h;
                    reload(&st.shared, "file").await;
                }
            }
            ReloaderMsg::Reload { trigger, reply_to } => {
                st.stamp = file_stamp(&st.shared);
                st.seen = file_hash(&st.shared);
                let out = reload(&st.shared, trigger).await;
                if let Some(r) = reply_to {
                    let _ = r.send(out);
                }
            }
        }
        Ok(())
    }
}

/// Keys whose change needs a restart, with a comparable rendering of each.
fn restart_keys(s: &Settings) -> Vec<(&'static str, String)> {
    let g = &s.file.gateway;
    vec![
        ("gateway.port", s.port.to_string()),
        (
            "gateway.bind",
            format!("{:?} {:?}", s.bind.mode, s.bind.host),
        ),
        ("gateway.auth.mode", format!("{:?}", s.auth.mode)),
        ("gateway.tls", js(&g.tls)),
        (
            "gateway.tailscale.mode",
            js(&g.tailscale.as_ref().map(|t| &t.mode)),
        ),
        (
            "gateway.handshakeTimeoutMs",
            format!("{:?}", s.handshake_timeout),
        ),
        ("gateway.tickIntervalMs", format!("{:?}", s.tick_interval)),
        ("gateway.shutdownGraceMs", format!("{:?}", s.shutdown_grace)),
        ("tunnels", js(&s.file.tunnels)),
        ("logging", js(&s.file.logging)),
        ("browser", js(&s.file.browser)),
        ("gateway.reload", js(&g.reload)),
    ]
}

/// A value rendered for comparison.
fn js<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Reloads the config file and applies what can change live. Returns the outcome (also
/// audited as `config.reload`).
pub async fn reload(shared: &Arc<Shared>, trigger: &'static str) -> Value {
    let env = |k: &str| std::env::var(k).ok();
    let inputs = shared.settings.inputs.clone();
    let resolved = tokio::task::spawn_blocking(move || config::resolve(&inputs, &env))
        .await
        .map_err(|e| config::ConfigError::Refused(format!("reload task failed: {e}")))
        .and_then(|r| r);
    let new = match resolved {
        Ok(s) => s,
        Err(e) => {
            shared
                .counters
                .reloads_failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let msg = e.to_string();
            tracing::error!(trigger, error = %msg, "config reload refused; the running settings stay");
            let ev = AuditEvent::new("config.reload")
                .with("trigger", trigger)
                .with("ok", false)
                .with("error", msg.as_str());
            shared.audit.record(ev).await;
            return json!({"ok": false, "error": msg});
        }
    };
    let old_keys = restart_keys(&shared.settings);
    let new_keys = restart_keys(&new);
    let restart: Vec<&str> = old_keys
        .iter()
        .zip(&new_keys)
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, _)| a.0)
        .collect();
    let cur = shared.live();
    let mut secrets = Secrets {
        mode: cur.secrets.mode,
        token: new.auth.token.clone(),
        password: new.auth.password.clone(),
    };
    if secrets.mode == AuthMode::Token && secrets.token.is_none() {
        secrets.token = cur.secrets.token.clone(); // keep the generated runtime token
    }
    let mut changed = Vec::new();
    if !same_secret(&secrets.token, &cur.secrets.token) {
        changed.push("gateway.auth.token");
    }
    if !same_secret(&secrets.password, &cur.secrets.password) {
        changed.push("gateway.auth.password");
    }
    let (p, q) = (&new.policy, &cur.policy);
    for (key, differs) in [
        (
            "gateway.allowedIPs",
            p.allowed != q.allowed || p.allow_loopback != q.allow_loopback,
        ),
        (
            "gateway.trustedProxies",
            p.trusted_proxies != q.trusted_proxies
                || p.allow_real_ip_fallback != q.allow_real_ip_fallback,
        ),
        ("gateway.auth.trustedProxy", p.proxy_auth != q.proxy_auth),
        ("gateway.rateLimit", p.rate != q.rate),
        (
            "OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP",
            p.max_preauth_per_ip != q.max_preauth_per_ip,
        ),
        ("gateway.auth.rateLimit", new.lockout != cur.lockout),
    ] {
        if differs {
            changed.push(key);
        }
    }
    let generation = cur.generation + u64::from(!changed.is_empty());
    if !changed.is_empty() {
        let rate = new.policy.rate;
        shared.set_live(Live {
            secrets,
            policy: new.policy.clone(),
            lockout: new.lockout,
            generation,
        });
        if let Some(cell) = ractor::registry::where_is(crate::rate_limiter::NAME) {
            let _ = ActorRef::<crate::rate_limiter::RateLimiterMsg>::from(cell)
                .cast(crate::rate_limiter::RateLimiterMsg::Reconfigure(rate));
        }
    }
    shared
        .counters
        .reloads
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if restart.is_empty() {
        tracing::info!(trigger, ?changed, generation, "config reloaded");
    } else {
        tracing::warn!(trigger, ?changed, restart_required = ?restart,
            "config reloaded; some changes need a restart and were not applied (restart the gateway)");
    }
    let ev = AuditEvent::new("config.reload")
        .with("trigger", trigger)
        .with("ok", true)
        .with("applied", json!(changed))
        .with("restartRequired", json!(restart))
        .with("generation", generation);
    shared.audit.record(ev).await;
    json!({"ok": true, "applied": changed, "restartRequired": restart, "generation": generation})
}

fn same_secret(a: &Option<crate::secret::Secret>, b: &Option<crate::secret::Secret>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.matches(b.expose()),
        (None, None) => true,
        _ => false,
    }
}
