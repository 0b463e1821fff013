//! The RateLimiter actor: owns the request rate limit's table ([`super::limiter`]).
//! Sessions and HTTP requests check their key in place through [`check`] (one shard lock, no
//! round trip: a message per request would cost more than the check); this actor does the
//! upkeep — pruning idle keys every [`PRUNE_EVERY`] so memory follows the live client count
//! — and applies new limits from reloads. A crash loses nothing: the table lives outside
//! the actor, and the restarted actor resumes pruning.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};

use super::limiter::{LimitKey, Limiter, RateConfig};
use crate::audit::{AuditEvent, AuditHandle};

/// How often idle keys are dropped.
pub const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// The actor.
pub struct RateLimiterActor;

/// Messages.
pub enum RateLimiterMsg {
    /// Timer: drop idle keys.
    Prune,
    /// New limits from a reload (`None`: the limit is now off; the table is emptied).
    Reconfigure(Option<RateConfig>),
}

/// Reference to the rate limiter.
pub type RateLimiterRef = ActorRef<RateLimiterMsg>;

/// Starts the rate limiter linked to `supervisor`; it tends `limiter`.
pub async fn spawn(
    limiter: Arc<Limiter>,
    supervisor: ActorCell,
) -> Result<RateLimiterRef, ractor::SpawnErr> {
    Ok(
        Actor::spawn_linked(None, RateLimiterActor, limiter, supervisor)
            .await?
            .0,
    )
}

/// Takes one request from `key`'s bucket. Over the limit, the first refusal of a burst is
/// logged and audited (`ratelimit.hit`, with the fields `detail` adds: the connection and
/// method for a WebSocket request, the path for HTTP) and the wait is returned.
pub fn check(
    limiter: &Limiter,
    audit: &AuditHandle,
    key: &LimitKey,
    peer: SocketAddr,
    detail: impl FnOnce(AuditEvent) -> AuditEvent,
) -> Result<(), Duration> {
    let d = match limiter.check(key, Instant::now()) {
        Ok(()) => return Ok(()),
        Err(d) => d,
    };
    let retry = d.retry_after.max(Duration::from_millis(1));
    if d.first {
        // Once per burst: a limited client keeps asking, the audit log need not.
        let text = key.to_string();
        tracing::info!(key = %text, %peer, retry_after_ms = retry.as_millis() as u64, "request rate limit reached");
        audit.record_detached(detail(AuditEvent::ratelimit_hit(peer, &text, retry)));
    }
    Err(retry)
}

impl RateLimiterMsg {
    /// Message kind for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            RateLimiterMsg::Prune => "Prune",
            RateLimiterMsg::Reconfigure(_) => "Reconfigure",
        }
    }
}

impl Actor for RateLimiterActor {
    type Msg = RateLimiterMsg;
    type State = Arc<Limiter>;
    type Arguments = Arc<Limiter>;

    async fn pre_start(
        &self,
        me: ActorRef<RateLimiterMsg>,
        limiter: Arc<Limiter>,
    ) -> Result<Arc<Limiter>, ActorProcessingErr> {
        me.send_interval(PRUNE_EVERY, || RateLimiterMsg::Prune);
        Ok(limiter)
    }

    async fn handle(
        &self,
        _me: ActorRef<RateLimiterMsg>,
        msg: RateLimiterMsg,
        limiter: &mut Arc<Limiter>,
    ) -> Result<(), ActorProcessingErr> {
        tracing::trace!(actor = "ratelimiter", msg = msg.kind(), "message");
        match msg {
            RateLimiterMsg::Prune => {
                let removed = limiter.prune(Instant::now());
                if removed > 0 {
                    tracing::debug!(removed, keys = limiter.len(), "pruned idle rate-limit keys");
                }
            }
            RateLimiterMsg::Reconfigure(Some(cfg)) => limiter.reconfigure(cfg),
            RateLimiterMsg::Reconfigure(None) => {
                // Far in the future every bucket is full: everything without a connection goes.
                limiter.prune(Instant::now() + Duration::from_secs(86_400 * 365));
            }
        }
        Ok(())
    }
}
