//! The supervised actor runtime behind the `openclaw` gateway.
//!
//! # Layout
//!
//! - [`root`]: the root supervisor and the actor tree (one_for_one, permanent children).
//! - [`supervisor`]: the OTP-style supervision helper every supervising actor uses.
//! - [`listener`]: one Listener actor per bound address; accept loop and hyper serving.
//! - [`http`]: `/healthz`, `/readyz`, `/`, and the WebSocket upgrade.
//! - [`session_manager`]: spawns one Session actor per connection (temporary children).
//! - [`session`]: the per-connection actor (handshake, requests, events) and its I/O task.
//! - [`auth`]: the Auth actor (secret, device proof, pairing store, pending pairing requests,
//!   `device.pair.*`) and its pure rules.
//! - [`guard`]: admission before the upgrade (forwarded-header trust, IP allowlist, pre-auth
//!   cap, request rate limit) as pure rules over a hot-reloadable policy.
//! - [`rate_limiter`]: the RateLimiter actor (owns the limiter table's upkeep).
//! - [`reloader`]: the Reloader actor (SIGHUP and config-file changes; live settings swap).
//! - [`presence`]: the Presence actor (tick, presence, shutdown broadcasts).
//! - [`tunnel_supervisor`]: the TunnelSupervisor actor (one Tunnel child per tunnel).
//! - [`tunnel`]: the Tunnel actor, its pure ssh state machine, the ssh process owner, probes.
//! - [`audit`]: the AuditLogger actor and its lossless, group-committed writer thread.
//! - [`methods`]: request handlers and their scope checks.
//! - [`logtail`]: `logs.tail` / `audit.tail` cursor semantics.
//! - [`protocol`]: the wire protocol without I/O (frames, errors, versions, scopes, devices).
//! - [`config`]: the config schema, loading and resolution (flags > env > file > defaults).
//! - [`shared`]: counters and the connection registry read on hot paths without messages.
//! - [`state`]: state-dir files (atomic 0600 writes, runtime token).
//! - [`secret`]: masked secrets and constant-time comparison.
//! - [`gateway`]: start and stop a gateway.

#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod config;
pub mod gateway;
pub mod guard;
pub mod http;
pub mod listener;
pub mod logtail;
pub mod methods;
pub mod presence;
pub mod protocol;
pub mod rate_limiter;
pub mod reloader;
pub mod root;
pub mod secret;
pub mod session;
pub mod session_manager;
pub mod shared;
pub mod state;
pub mod supervisor;
pub mod tunnel;
pub mod tunnel_supervisor;
