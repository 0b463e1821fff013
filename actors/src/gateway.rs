//! Starting and stopping a gateway: the runtime's entry point for the binary and tests.

use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::Actor;

use crate::audit::{self, AuditEvent};
use crate::auth::rules::Secrets;
use crate::config::{AuthMode, Settings};
use crate::root::{RootActor, RootArgs, RootMsg, RootRef, NAME};
use crate::shared::{lock, Shared};
use crate::state;

/// A running gateway.
pub struct Gateway {
    /// The root supervisor.
    pub root: RootRef,
    /// Its task; ends when the root stops (after shutdown or escalation).
    pub join: tokio::task::JoinHandle<()>,
    /// Shared state (listeners, counters).
    pub shared: Arc<Shared>,
}

/// Start-up failure, with a message for the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// Prepares the state dir and runtime token, then starts the actor tree.
pub async fn start(settings: Settings) -> Result<Gateway, StartError> {
    let state_dir = settings.paths.state_dir.clone();
    state::ensure_private_dir(&state_dir).map_err(|e| {
        StartError(format!(
            "cannot create state dir {}: {e} (set OPENCLAW_STATE_DIR)",
            state_dir.display()
        ))
    })?;
    let mut token = settings.auth.token.clone();
    let mut token_path = None;
    if settings.auth.mode == AuthMode::Token && token.is_none() {
        let (t, p, _fresh) = state::ensure_runtime_token(&state_dir).map_err(|e| {
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
    let (handle, audit_args) = audit::channel(settings.audit_file.clone());
    let shared = Arc::new(Shared::new(settings, handle, token_path, secrets));
    let args = RootArgs {
        shared: shared.clone(),
        audit: audit_args,
    };
    let (root, join) = Actor::spawn(Some(NAME.to_string()), RootActor, args)
        .await
        .map_err(|e| StartError(startup_reason(&e)))?;
    let ev = AuditEvent::new("gateway.start")
        .with("pid", std::process::id())
        .with("listeners", shared.listener_urls())
        .with("authMode", shared.auth_mode_name());
    shared.audit.record(ev).await;
    Ok(Gateway { root, join, shared })
}

/// Asks the root for a graceful shutdown; `true` when everything closed within the grace.
pub async fn shutdown(root: &RootRef, shared: &Shared, reason: &str) -> bool {
    let grace = shared.settings.shutdown_grace;
    let res = root
        .call(
            |reply_to| RootMsg::Shutdown {
                reason: reason.to_string(),
                reply_to,
            },
            Some(grace + Duration::from_secs(20)),
        )
        .await;
    matches!(res, Ok(CallResult::Success(true)))
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
    /// Graceful shutdown and wait for the root to end; `true` when everything closed
    /// within the grace period.
    pub async fn stop(self, reason: &str) -> bool {
        let clean = shutdown(&self.root, &self.shared, reason).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.join).await;
        clean
    }

    /// Bound addresses.
    pub fn listeners(&self) -> Vec<std::net::SocketAddr> {
        lock(&self.shared.listeners).clone()
    }

    /// The token clients must present (token mode), for printing its location only.
    pub fn runtime_token_path(&self) -> Option<&std::path::Path> {
        self.shared.runtime_token_path.as_deref()
    }
}
