//! The TLS reloader actor: watches the certificate, key and CA files (stat every
//! [`POLL_EVERY`], a change must hold still for [`DEBOUNCE`] before it is read; paused by
//! `gateway.reload.mode: "off"`), and reloads on SIGHUP through the config Reloader. Before a
//! pair is served it is parsed and the key checked against the certificate
//! ([`super::material`]); a bad pair is refused, audited, and the old one stays. Serving the
//! new pair is a swap in [`TlsState`], which the listeners' certificate resolver reads at
//! each handshake: open connections are never touched. A certificate within
//! [`EXPIRY_WARNING`] of its notAfter is logged and audited once a day. A crash of this actor
//! loses nothing: the served pair lives in [`TlsState`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::{json, Value};

use super::{fingerprint, TlsState};
use crate::audit::{AuditEvent, AuditHandle};

/// How often the files are checked.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// How long a change must hold still before the files are read (a cert and key written one
/// after the other are read together).
pub const DEBOUNCE: Duration = Duration::from_millis(300);
/// How often the expiry is checked.
pub const EXPIRY_CHECK_EVERY: Duration = Duration::from_secs(86_400);
/// Warn when the served certificate expires within this.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 86_400);

/// The actor.
pub struct TlsReloaderActor;

/// Start-up arguments.
#[derive(Clone)]
pub struct TlsReloaderArgs {
    /// The served pair.
    pub state: Arc<TlsState>,
    /// Audit producer.
    pub audit: AuditHandle,
    /// Poll the files (`false` with `gateway.reload.mode: "off"`; SIGHUP still reloads).
    pub watch: bool,
}

/// Messages.
pub enum TlsReloaderMsg {
    /// Timer: stat the files.
    Poll,
    /// Timer: warn when the certificate is about to expire.
    CheckExpiry,
    /// Reload now (SIGHUP); the reply, if any, gets the outcome.
    Reload {
        /// What asked.
        trigger: &'static str,
        /// The outcome.
        reply_to: Option<RpcReplyPort<Value>>,
    },
}

/// The files' (mtime, length, inode), one per watched file.
type Stamp = Vec<Option<(SystemTime, u64, u64)>>;

/// State.
pub struct TlsReloaderState {
    args: TlsReloaderArgs,
    /// The stamp of the files as last read (or refused).
    read: Stamp,
    /// A change seen and when, waiting for the debounce.
    pending: Option<(Stamp, tokio::time::Instant)>,
}

/// Reference to the TLS reloader.
pub type TlsReloaderRef = ActorRef<TlsReloaderMsg>;

/// Starts the TLS reloader linked to `supervisor`.
pub async fn spawn(
    args: TlsReloaderArgs,
    supervisor: ActorCell,
) -> Result<TlsReloaderRef, ractor::SpawnErr> {
    Ok(
        Actor::spawn_linked(None, TlsReloaderActor, args, supervisor)
            .await?
            .0,
    )
}

impl TlsReloaderMsg {
    /// Message kind for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            TlsReloaderMsg::Poll => "Poll",
            TlsReloaderMsg::CheckExpiry => "CheckExpiry",
            TlsReloaderMsg::Reload { .. } => "Reload",
        }
    }
}

fn files(state: &TlsState) -> Vec<PathBuf> {
    let s = &state.settings;
    let mut v = vec![s.cert_path.clone(), s.key_path.clone()];
    v.extend(s.ca_path.clone());
    v
}

fn stamp(paths: &[PathBuf]) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    paths
        .iter()
        .map(|p: &PathBuf| {
            let m = std::fs::metadata(Path::new(p)).ok()?;
            Some((m.modified().ok()?, m.len(), m.ino()))
        })
        .collect()
}

impl Actor for TlsReloaderActor {
    type Msg = TlsReloaderMsg;
    type State = TlsReloaderState;
    type Arguments = TlsReloaderArgs;

    async fn pre_start(
        &self,
        me: ActorRef<TlsReloaderMsg>,
        args: TlsReloaderArgs,
    ) -> Result<TlsReloaderState, ActorProcessingErr> {
        if args.watch {
            me.send_interval(POLL_EVERY, || TlsReloaderMsg::Poll);
        }
        let _ = me.cast(TlsReloaderMsg::CheckExpiry);
        me.send_interval(EXPIRY_CHECK_EVERY, || TlsReloaderMsg::CheckExpiry);
        Ok(TlsReloaderState {
            read: stamp(&files(&args.state)),
            args,
            pending: None,
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<TlsReloaderMsg>,
        msg: TlsReloaderMsg,
        st: &mut TlsReloaderState,
    ) -> Result<(), ActorProcessingErr> {
        tracing::trace!(actor = "tls-reloader", msg = msg.kind(), "message");
        match msg {
            TlsReloaderMsg::Poll => poll(st).await,
            TlsReloaderMsg::CheckExpiry => check_expiry(&st.args).await,
            TlsReloaderMsg::Reload { trigger, reply_to } => {
                st.pending = None;
                st.read = stamp(&files(&st.args.state));
                let out = reload(&st.args, trigger).await;
                if let Some(r) = reply_to {
                    let _ = r.send(out);
                }
            }
        }
        Ok(())
    }
}

/// A changed stamp waits [`DEBOUNCE`] unchanged, then the pair is read once.
async fn poll(st: &mut TlsReloaderState) {
    let now = tokio::time::Instant::now();
    let seen = stamp(&files(&st.args.state));
    if seen == st.read {
        st.pending = None;
        return;
    }
    match &st.pending {
        Some((s, since)) if *s == seen => {
            if now.duration_since(*since) >= DEBOUNCE {
                st.pending = None;
                st.read = seen;
                reload(&st.args, "file").await;
            }
        }
        _ => st.pending = Some((seen, now)),
    }
}

/// Reads and checks the pair; serves it when it is good and new. Returns the outcome.
pub async fn reload(a: &TlsReloaderArgs, trigger: &'static str) -> Value {
    let s = &a.state.settings;
    let old = a.state.current();
    match s.load() {
        // The same chain (the key must match its leaf, so it is the same key too).
        Ok(m) if m.key.cert == old.key.cert => {
            json!({"ok": true, "changed": false, "fingerprintSha256": fingerprint::display(&m.fingerprint)})
        }
        Ok(m) => {
            let new_fp = m.fingerprint.clone();
            a.state.swap(m);
            tracing::info!(trigger, old = %fingerprint::display(&old.fingerprint),
                new = %fingerprint::display(&new_fp), "TLS certificate reloaded; open connections keep theirs");
            a.audit
                .record(AuditEvent::tls_reloaded(trigger, &old.fingerprint, &new_fp))
                .await;
            json!({"ok": true, "changed": true, "fingerprintSha256": fingerprint::display(&new_fp)})
        }
        Err(e) => {
            a.state.refused();
            let why = e.to_string();
            tracing::warn!(trigger, reason = %why, "TLS reload refused; the served certificate stays");
            a.audit
                .record(AuditEvent::tls_reload_failed(trigger, &why))
                .await;
            json!({"ok": false, "error": why})
        }
    }
}

/// Logs and audits a certificate that expires within [`EXPIRY_WARNING`].
async fn check_expiry(a: &TlsReloaderArgs) {
    let m = a.state.current();
    let Some(not_after) = m.not_after else {
        return;
    };
    let now = crate::shared::now_ms() / 1000;
    let left = not_after - now;
    if left < EXPIRY_WARNING.as_secs() as i64 {
        let days = left.div_euclid(86_400);
        tracing::warn!(fingerprint = %fingerprint::display(&m.fingerprint), days_left = days,
            not_after = %super::date(not_after), "the TLS certificate expires soon; replace it");
        a.audit
            .record(AuditEvent::tls_expiring(&m.fingerprint, not_after, days))
            .await;
    }
}
