//! Explicit wiring: how actors find each other. Every long-lived actor is reached through a
//! typed [`Slot`] that its supervisor fills when it starts the actor and refills after each
//! restart, so a holder always talks to the current incarnation. No actor looks a name up in
//! ractor's process-global registry; names are for logs. Because nothing is global, two
//! gateways can run in one process, each with its own tree and its own [`Peers`].

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorRef, Message, RpcReplyPort};

use crate::auth::AuthMsg;
use crate::config::reloader::ReloaderMsg;
use crate::guard::limiter_actor::RateLimiterMsg;
use crate::nodes::NodeMsg;
use crate::presence::PresenceMsg;
use crate::session::manager::SessionManagerMsg;
use crate::shared::{read, write};
use crate::tailscale::TailscaleMsg;
use crate::tls::reloader::TlsReloaderMsg;
use crate::tunnel::supervisor::TunnelSupMsg;

/// The current reference to one actor, or nothing while it is (re)starting. Cloning shares
/// the slot.
pub struct Slot<M>(Arc<RwLock<Option<ActorRef<M>>>>);

/// The slots of a gateway's long-lived actors, filled by the root. Each actor's `Args` takes
/// only the slots it talks to.
#[derive(Clone, Default, Debug)]
pub struct Peers {
    /// The Auth actor.
    pub auth: Slot<AuthMsg>,
    /// The SessionManager.
    pub sessions: Slot<SessionManagerMsg>,
    /// The Presence actor.
    pub presence: Slot<PresenceMsg>,
    /// The RateLimiter actor.
    pub limiter: Slot<RateLimiterMsg>,
    /// The TunnelSupervisor.
    pub tunnels: Slot<TunnelSupMsg>,
    /// The Reloader.
    pub reloader: Slot<ReloaderMsg>,
    /// The TLS reloader (empty when TLS is off).
    pub tls: Slot<TlsReloaderMsg>,
    /// The NodeRegistry.
    pub nodes: Slot<NodeMsg>,
    /// The Tailscale actor (empty when Tailscale is off).
    pub tailscale: Slot<TailscaleMsg>,
}

/// Why a call through a slot got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The actor is not running (starting, restarting or stopped).
    #[error("not running")]
    Down,
    /// It did not answer in time.
    #[error("timed out")]
    Timeout,
    /// It stopped before answering.
    #[error("stopped before answering")]
    Dropped,
}

// === impl Slot ===

impl<M> Clone for Slot<M> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<M> Default for Slot<M> {
    fn default() -> Self {
        Self(Arc::new(RwLock::new(None)))
    }
}

impl<M> std::fmt::Debug for Slot<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = read(&self.0).as_ref().map(|r| r.get_id());
        f.debug_tuple("Slot").field(&id).finish()
    }
}

impl<M: Message> Slot<M> {
    /// Points the slot at `r` (the supervisor, after each start).
    pub fn set(&self, r: ActorRef<M>) {
        *write(&self.0) = Some(r);
    }

    /// The current reference, if the actor has started.
    pub fn get(&self) -> Option<ActorRef<M>> {
        read(&self.0).clone()
    }

    /// Sends `msg` without waiting; `false` when the actor is not running.
    pub fn cast(&self, msg: M) -> bool {
        self.get().is_some_and(|r| r.cast(msg).is_ok())
    }

    /// Asks and waits up to `timeout` for the answer.
    pub async fn call<R: Send + 'static>(
        &self,
        msg: impl FnOnce(RpcReplyPort<R>) -> M,
        timeout: Duration,
    ) -> Result<R, CallError> {
        let r = self.get().ok_or(CallError::Down)?;
        match r.call(msg, Some(timeout)).await {
            Ok(CallResult::Success(v)) => Ok(v),
            Ok(CallResult::Timeout) => Err(CallError::Timeout),
            Ok(CallResult::SenderError) => Err(CallError::Dropped),
            Err(_) => Err(CallError::Down),
        }
    }
}
