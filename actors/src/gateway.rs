//! Starting and stopping a gateway: the runtime's entry point for the binary and tests.
//! Nothing here is process-global, so one process may run several gateways (the in-process
//! test harness does).

use std::net::SocketAddr;
use std::time::Duration;

use ractor::Actor;
use serde_json::{json, Value};

use crate::audit::{self, AuditEvent};
use crate::auth::rules::Secrets;
use crate::config::reloader::ReloaderMsg;
use crate::config::{AuthMode, Settings};
use crate::root::{RootActor, RootArgs, RootMsg, RootRef};
use crate::shared::Hub;
use crate::state;
use crate::tls::TlsState;
use crate::wiring::Peers;

/// A running gateway.
pub struct Gateway {
    /// The root supervisor.
    pub root: RootRef,
    /// Its task; ends when the root stops (after shutdown or escalation).
    pub join: tokio::task::JoinHandle<()>,
    /// Shared state (listeners, counters, live config).
    pub hub: Hub,
    /// The typed references to the long-lived actors (kept current across restarts).
    pub peers: Peers,
}

/// Start-up failure, with a message for the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// Prepares the state dir and runtime token, then starts the actor tree.
pub async fn start(settings: Settings) -> Result<Gateway, StartError> {
    let (secrets, token_path) = prepare_state(&settings)?;
    let tls = prepare_tls(&settings)?;
    let (handle, audit_args) =
        audit::channel_with(settings.audit_file.clone(), settings.audit_rotation);
    let hub = Hub::new(settings, handle, token_path, secrets, tls);
    let peers = Peers::default();
    let args = RootArgs {
        hub: hub.clone(),
        peers: peers.clone(),
        audit: audit_args,
    };
    let (root, join) = Actor::spawn(None, RootActor, args)
        .await
        .map_err(|e| StartError(startup_reason(&e)))?;
    hub.registry
        .started
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let ev = AuditEvent::gateway_start(hub.registry.listener_urls(), hub.facts.auth_mode_name());
    hub.audit.record(ev).await;
    Ok(Gateway {
        root,
        join,
        hub,
        peers,
    })
}

/// The state dir exists (0700) and, in token mode without a configured token, the runtime
/// token is generated or reused.
fn prepare_state(settings: &Settings) -> Result<(Secrets, Option<std::path::PathBuf>), StartError> {
    let state_dir = &settings.paths.state_dir;
    state::ensure_private_dir(state_dir).map_err(|e| {
        StartError(format!(
            "cannot create state dir {}: {e} (set OPENCLAW_STATE_DIR)",
            state_dir.display()
        ))
    })?;
    let mut token = settings.auth.token.clone();
    let mut token_path = None;
    if settings.auth.mode == AuthMode::Token && token.is_none() {
        let (t, p, _fresh) = state::ensure_runtime_token(state_dir).map_err(|e| {
            StartError(format!(
                "cannot write the runtime token into {}: {e}",
                state_dir.display()
            ))
        })?;
        token = Some(t);
        token_path = Some(p);
    }
    let secrets = Secrets {
        mode: settings.auth.mode,
        token,
        password: settings.auth.password.clone(),
    };
    Ok((secrets, token_path))
}

/// With `gateway.tls.enabled`: the served pair, generated first when allowed.
fn prepare_tls(settings: &Settings) -> Result<Option<std::sync::Arc<TlsState>>, StartError> {
    let Some(t) = &settings.tls else {
        return Ok(None);
    };
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let first = t.prepare(&hostname).map_err(StartError)?;
    Ok(Some(TlsState::new(t.clone(), first)))
}

fn startup_reason(e: &ractor::SpawnErr) -> String {
    // SpawnErr wraps the child's error text; keep just the innermost message.
    let s = e.to_string();
    s.rsplit("Actor panicked during startup ")
        .next()
        .unwrap_or(&s)
        .trim_matches(|c| c == '\'' || c == '"')
        .to_string()
}

// === impl Gateway ===

impl Gateway {
    /// Asks the root for a graceful shutdown; `true` when everything closed within the
    /// grace period. The root stops afterwards (see [`Gateway::stop`] to also wait for it).
    pub async fn shutdown(&self, reason: &str) -> bool {
        let grace = self.hub.settings().shutdown_grace;
        let res = self
            .root
            .call(
                |reply_to| RootMsg::Shutdown {
                    reason: reason.to_string(),
                    reply_to,
                },
                Some(grace + Duration::from_secs(20)),
            )
            .await;
        matches!(res, Ok(ractor::rpc::CallResult::Success(true)))
    }

    /// Graceful shutdown and wait for the root to end; `true` when everything closed
    /// within the grace period.
    pub async fn stop(self, reason: &str) -> bool {
        let clean = self.shutdown(reason).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.join).await;
        clean
    }

    /// Reloads the config now (`trigger`: `SIGHUP`, `request`…) and returns the outcome,
    /// as audited in `config.reload`.
    pub async fn reload(&self, trigger: &'static str) -> Value {
        let asked = self
            .peers
            .reloader
            .call(
                |reply_to| ReloaderMsg::Reload { trigger, reply_to },
                Duration::from_secs(30),
            )
            .await;
        asked.unwrap_or_else(|e| json!({"ok": false, "error": format!("reloader {e}")}))
    }

    /// Bound addresses.
    pub fn listeners(&self) -> Vec<SocketAddr> {
        self.hub.registry.listeners()
    }

    /// The token clients must present (token mode), for printing its location only.
    pub fn runtime_token_path(&self) -> Option<&std::path::Path> {
        self.hub.facts.runtime_token_path.as_deref()
    }
}
