//! The RateLimiter actor: owns the request rate limit's table ([`crate::guard::limiter`]).
//! Sessions check their key in place (one shard lock, no round trip: a message per request
//! would cost more than the check); this actor does the upkeep — pruning idle keys every
//! [`PRUNE_EVERY`] so memory follows the live client count — and applies new limits from
//! reloads. A crash loses nothing: the table lives in [`Shared`], and the restarted actor
//! resumes pruning.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::guard::limiter::RateConfig;
use crate::shared::Shared;

/// Registered name.
pub const NAME: &str = "openclaw.ratelimiter";

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
    type State = Arc<Shared>;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        me: ActorRef<RateLimiterMsg>,
        shared: Arc<Shared>,
    ) -> Result<Arc<Shared>, ActorProcessingErr> {
        me.send_interval(PRUNE_EVERY, || RateLimiterMsg::Prune);
        Ok(shared)
    }

    async fn handle(
        &self,
        _me: ActorRef<RateLimiterMsg>,
        msg: RateLimiterMsg,
        shared: &mut Arc<Shared>,
    ) -> Result<(), ActorProcessingErr> {
        tracing::trace!(actor = "ratelimiter", msg = msg.kind(), "message");
        match msg {
            RateLimiterMsg::Prune => {
                let removed = shared.limiter.prune(Instant::now());
                if removed > 0 {
                    tracing::debug!(
                        removed,
                        keys = shared.limiter.len(),
                        "pruned idle rate-limit keys"
                    );
                }
            }
            RateLimiterMsg::Reconfigure(Some(cfg)) => shared.limiter.reconfigure(cfg),
            RateLimiterMsg::Reconfigure(None) => {
                // Far in the future every bucket is full: everything without a connection goes.
                shared
                    .limiter
                    .prune(Instant::now() + Duration::from_secs(86_400 * 365));
            }
        }
        Ok(())
    }
}
