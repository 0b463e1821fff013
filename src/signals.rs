//! The one place that owns process signals: SIGINT and SIGTERM stop the gateway, SIGHUP
//! reloads its config (the Reloader actor does the work; see `gateway_cmd::serve`).

use tokio::signal::unix::{signal, Signal, SignalKind};

/// What a signal asks the gateway to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// SIGINT or SIGTERM (named).
    Stop(&'static str),
    /// SIGHUP.
    Reload,
}

/// The signals the gateway handles, installed once.
pub struct Signals {
    term: Option<Signal>,
    int: Option<Signal>,
    hup: Option<Signal>,
}

// === impl Signals ===

impl Signals {
    /// Installs the handlers; a handler that cannot be installed is logged and never fires.
    pub fn install() -> Self {
        let get = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(signal = name, error = %e, "cannot listen for this signal");
                None
            }
        };
        Self {
            term: get(SignalKind::terminate(), "SIGTERM"),
            int: get(SignalKind::interrupt(), "SIGINT"),
            hup: get(SignalKind::hangup(), "SIGHUP"),
        }
    }

    /// Waits for the next signal.
    pub async fn next(&mut self) -> Ask {
        async fn recv(s: &mut Option<Signal>) {
            match s {
                Some(s) => {
                    if s.recv().await.is_none() {
                        std::future::pending::<()>().await
                    }
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.term) => Ask::Stop("SIGTERM"),
            _ = recv(&mut self.int) => Ask::Stop("SIGINT"),
            _ = recv(&mut self.hup) => Ask::Reload,
        }
    }
}
