//! The supervised actor runtime behind the `openclaw` gateway.
//!
//! # Layout
//!
//! The actor tree, with each actor module next to its pure logic:
//!
//! - [`root`]: the root supervisor; its children are a list of child specs (data).
//! - [`supervisor`]: the OTP-style supervision helper every supervisor uses, and the one
//!   [`supervisor::Backoff`] rule (also used by the tunnels).
//! - [`wiring`]: typed slots through which actors reach each other ([`wiring::Peers`]).
//! - [`shared`]: state read without messages, split by purpose (facts, registry, counters,
//!   live config, tunnel table).
//! - [`audit`]: the AuditLogger actor, its lossless group-committed [`audit::writer`]
//!   thread (private, with the pure all-or-nothing batch plan in `audit::commit`), and
//!   [`audit::events`], the list of every event and its fields.
//! - [`auth`]: the Auth actor (secret, device proof, device tokens, pairing store, pending
//!   pairing requests, `device.pair.*`) and its pure rules.
//! - [`guard`]: admission before the upgrade (forwarded-header trust, IP allowlist,
//!   pre-auth cap, request rate limit) as pure rules, and the RateLimiter actor
//!   ([`guard::limiter_actor`]) beside the limiter table.
//! - [`config`]: the config schema, loading, resolution (flags > env > file > defaults),
//!   the pure reload [`config::plan`], and the Reloader actor ([`config::reloader`]).
//! - [`presence`]: the Presence actor (tick, presence broadcasts).
//! - [`listener`]: one Listener actor per bound address, and [`listener::http`]
//!   (`/healthz`, `/readyz`, `/`, the WebSocket upgrade).
//! - [`session`]: the SessionManager ([`session::manager`]), the per-connection Session
//!   (a light actor: one task over a typed mailbox), its socket halves and writer task
//!   ([`session::io`]), the handshake, and the method table
//!   ([`session::methods`]) with `logs.tail` cursors ([`session::logtail`]).
//! - [`nodes`]: the NodeRegistry actor (connected nodes, approved command surfaces, the
//!   `node.invoke` relay) and its pure rules ([`nodes::policy`], [`nodes::invokes`],
//!   [`nodes::store`]).
//! - [`tunnel`]: the TunnelSupervisor ([`tunnel::supervisor`]), the Tunnel actor, its pure
//!   ssh state machine, the ssh process owner, probes.
//! - [`tls`]: TLS on the gateway port: the served pair and its checks, self-signed
//!   generation, fingerprints and client pinning, and the TlsReloader actor
//!   ([`tls::reloader`]).
//! - [`protocol`]: the wire protocol without I/O (frames, errors, versions, scopes, devices).
//! - [`state`]: state-dir files (atomic 0600 writes, runtime token).
//! - [`secret`]: masked secrets and constant-time comparison.
//! - [`gateway`]: start and stop a gateway (several may run in one process).
//! - `fuzzing` (hidden): the fuzz entry points shared by `fuzz/` and the corpus replay test.

#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod guard;
pub mod listener;
pub mod metrics;
pub mod nodes;
pub mod presence;
pub mod protocol;
pub mod root;
pub mod secret;
pub mod session;
pub mod shared;
pub mod state;
pub mod supervisor;
pub mod tailscale;
pub mod tls;
pub mod trace;
pub mod tunnel;
pub mod wiring;
