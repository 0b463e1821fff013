//! Every audit event the gateway writes, in one place: [`EVENTS`] lists each event with its
//! fields (the writer adds `ts`, `seq` and `event` to every line), and the typed
//! constructors below are the only way to make one. A test checks that each constructor
//! writes only the fields listed for its event.
//!
//! | event | when |
//! |---|---|
//! | `gateway.start` / `gateway.stop` | the runtime started / stopped (clean: sessions closed in the grace period) |
//! | `actor.failed` / `actor.restarted` | a root child crashed (and when it restarts) / was started again |
//! | `conn.open` / `conn.close` | a WebSocket session began / ended (with close code and frame counts) |
//! | `conn.handshake_timeout` | no `connect` within `handshakeTimeoutMs` |
//! | `conn.denied` | refused before the upgrade (allowlist, forwarding, pre-auth cap, max connections) |
//! | `conn.slow_consumer` | closed 1008: the client stopped reading |
//! | `ratelimit.hit` | first request over the rate limit in a burst |
//! | `session.crashed` | a session actor panicked (only its socket closed) |
//! | `auth.ok` / `auth.fail` | a handshake was accepted / rejected |
//! | `auth.lockout` | a client was locked out after repeated wrong credentials |
//! | `device.pair.requested` / `device.approved` / `device.rejected` / `device.removed` | device pairing |
//! | `config.reload` | a reload (applied, restart-required keys, or the error) |
//! | `tunnel.state` / `tunnel.kill` / `tunnel.actor_restarted` | tunnel life |
//! | `audit.recovered` | a partial last line left by a crash was removed |
//! | `audit.rotated` | first line of a file started by a rotation: where the old one went, its last `seq`, this file's `offset` in the whole log |
//! | `tls.reloaded` / `tls.reload_failed` | a new certificate is served / a bad pair was refused (the old one stays) |
//! | `tls.expiring` | the served certificate expires within 14 days (once a day) |
//! | `tailscale.claim_ready` / `tailscale.claim_exited` / `tailscale.claim_restarted` | the `tailscale serve\|funnel` route claim is live / died / was started again |
//! | `tailscale.route_adopted` | a route an older release left for the gateway port was removed before the claim |
//! | `trace.started` | a per-connection trace began (`openclaw trace`: who traced whom, for how long) |
//! | `gateway.log_level` | the log filter was switched at run time (`gateway.log.level`) |
//! | `token.rotated` | `openclaw token rotate` wrote a new gateway token and asked for a reload (`gateway.reload`) |
//! | `tailscale.whois` | one `tailscale whois` lookup for identity auth (login or error) |
//! | `node.connect` / `node.disconnect` | a node session registered / left (with the invokes its leaving failed) |
//! | `node.pair.requested` / `node.pair.approved` / `node.pair.rejected` / `node.pair.removed` / `node.renamed` | node command-surface approval |
//! | `node.invoke` | one relayed invoke: node, command, caller, duration and outcome (never the payload) |

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

use super::AuditEvent;
use crate::shared::ConnFacts;

/// Each event and the fields it may carry.
pub const EVENTS: &[(&str, &[&str])] = &[
    ("gateway.start", &["pid", "listeners", "authMode"]),
    ("gateway.stop", &["reason", "clean"]),
    ("actor.failed", &["actor", "restartInMs"]),
    ("actor.restarted", &["actor"]),
    ("conn.open", &["connId", "peer"]),
    (
        "conn.close",
        &[
            "connId",
            "peer",
            "durationMs",
            "code",
            "reason",
            "framesIn",
            "framesOut",
            "clientId",
            "clientMode",
            "clientVersion",
            "role",
            "origin",
        ],
    ),
    ("conn.handshake_timeout", &["connId", "peer"]),
    (
        "conn.denied",
        &["peer", "reason", "status", "path", "client", "key"],
    ),
    ("conn.slow_consumer", &["connId", "peer", "queuedBytes"]),
    (
        "ratelimit.hit",
        &["connId", "peer", "key", "method", "path", "retryAfterMs"],
    ),
    ("session.crashed", &["connId", "error"]),
    (
        "auth.ok",
        &[
            "connId",
            "peer",
            "client",
            "user",
            "clientId",
            "clientMode",
            "clientVersion",
            "role",
            "method",
            "scopes",
            "deviceId",
        ],
    ),
    (
        "auth.fail",
        &[
            "connId",
            "peer",
            "client",
            "user",
            "clientId",
            "clientMode",
            "clientVersion",
            "role",
            "reason",
            "code",
            "deviceId",
            "requestId",
            "retryAfterMs",
        ],
    ),
    ("auth.lockout", &["peer", "key", "failures", "lockoutMs"]),
    (
        "device.pair.requested",
        &[
            "deviceId",
            "requestId",
            "remoteIp",
            "role",
            "clientId",
            "connId",
        ],
    ),
    (
        "device.approved",
        &[
            "deviceId",
            "requestId",
            "via",
            "role",
            "remoteIp",
            "byConnId",
            "peer",
        ],
    ),
    ("device.rejected", &["deviceId", "requestId", "byConnId"]),
    ("device.removed", &["deviceId", "byConnId"]),
    (
        "config.reload",
        &[
            "trigger",
            "ok",
            "error",
            "applied",
            "restartRequired",
            "generation",
        ],
    ),
    (
        "tunnel.state",
        &["tunnel", "from", "to", "restarts", "pid", "reason"],
    ),
    ("tunnel.kill", &["tunnel", "reason", "pid"]),
    ("tunnel.actor_restarted", &["actor", "inMs"]),
    ("audit.recovered", &["note"]),
    ("audit.rotated", &["file", "lastSeq", "offset"]),
    (
        "tls.reloaded",
        &["trigger", "oldFingerprint", "newFingerprint"],
    ),
    ("tls.reload_failed", &["trigger", "reason"]),
    ("tls.expiring", &["fingerprint", "notAfter", "daysLeft"]),
    (
        "node.connect",
        &[
            "nodeId",
            "connId",
            "displayName",
            "platform",
            "version",
            "remoteIp",
            "approvalState",
        ],
    ),
    ("node.disconnect", &["nodeId", "connId", "failedInvokes"]),
    (
        "node.pair.requested",
        &["nodeId", "requestId", "remoteIp", "commands"],
    ),
    ("node.pair.approved", &["nodeId", "requestId", "byConnId"]),
    ("node.pair.rejected", &["nodeId", "requestId", "byConnId"]),
    ("node.pair.removed", &["nodeId", "requestId", "byConnId"]),
    ("node.renamed", &["nodeId", "displayName", "byConnId"]),
    (
        "node.invoke",
        &[
            "invokeId",
            "nodeId",
            "command",
            "callerConnId",
            "durationMs",
            "outcome",
        ],
    ),
    ("tailscale.claim_ready", &["mode", "port", "pid", "url"]),
    (
        "tailscale.claim_exited",
        &["status", "lastLine", "restartInMs"],
    ),
    ("tailscale.claim_restarted", &["pid", "restarts"]),
    ("tailscale.route_adopted", &["gatewayPort"]),
    ("tailscale.whois", &["ip", "ok", "login", "error"]),
    ("gateway.log_level", &["filter", "previous", "byConnId"]),
    (
        "trace.started",
        &["traceId", "connIds", "seconds", "byConnId"],
    ),
    ("token.rotated", &["source", "path", "byConnId"]),
];

/// Who a handshake came from, as `auth.ok` / `auth.fail` record it.
#[derive(Debug, Clone, Copy)]
pub struct AuthWho<'a> {
    /// The connection.
    pub conn: &'a ConnFacts,
    /// `client.id`.
    pub client_id: &'a str,
    /// `client.mode`.
    pub client_mode: &'a str,
    /// `client.version`.
    pub client_version: &'a str,
    /// Requested role.
    pub role: &'a str,
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

// === constructors ===

impl AuditEvent {
    /// `gateway.start`.
    pub fn gateway_start(listeners: Vec<String>, auth_mode: &str) -> Self {
        Self::new("gateway.start")
            .with("pid", std::process::id())
            .with("listeners", listeners)
            .with("authMode", auth_mode)
    }

    /// `gateway.stop`.
    pub fn gateway_stop(reason: &str, clean: bool) -> Self {
        Self::new("gateway.stop")
            .with("reason", reason)
            .with("clean", clean)
    }

    /// `actor.failed`: a root child crashed and restarts in `delay`.
    pub fn actor_failed(actor: &str, delay: Duration) -> Self {
        Self::new("actor.failed")
            .with("actor", actor)
            .with("restartInMs", ms(delay))
    }

    /// `actor.restarted`.
    pub fn actor_restarted(actor: &str) -> Self {
        Self::new("actor.restarted").with("actor", actor)
    }

    /// `conn.open`.
    pub fn conn_open(c: &ConnFacts) -> Self {
        Self::new("conn.open")
            .with("connId", c.conn_id.as_str())
            .with("peer", c.peer_str())
    }

    /// `conn.close` (identity and origin fields are added with [`AuditEvent::with`] by the
    /// session, from the fields listed in [`EVENTS`]).
    pub fn conn_close(c: &ConnFacts, duration: Duration, code: u16, reason: String) -> Self {
        Self::new("conn.close")
            .with("connId", c.conn_id.as_str())
            .with("peer", c.peer_str())
            .with("durationMs", ms(duration))
            .with("code", code)
            .with("reason", reason)
    }

    /// `conn.handshake_timeout`.
    pub fn handshake_timeout(c: &ConnFacts) -> Self {
        Self::new("conn.handshake_timeout")
            .with("connId", c.conn_id.as_str())
            .with("peer", c.peer_str())
    }

    /// `conn.denied` before the upgrade.
    pub fn conn_denied(peer: SocketAddr, reason: &str, status: u16) -> Self {
        Self::new("conn.denied")
            .with("peer", peer.to_string())
            .with("reason", reason)
            .with("status", status)
    }

    /// `conn.slow_consumer`: closed 1008 with `queued` bytes still unsent.
    pub fn slow_consumer(c: &ConnFacts, queued: usize) -> Self {
        Self::new("conn.slow_consumer")
            .with("connId", c.conn_id.as_str())
            .with("peer", c.peer_str())
            .with("queuedBytes", queued as u64)
    }

    /// `ratelimit.hit` (`connId` and `method` for a WebSocket request, `path` for HTTP).
    pub fn ratelimit_hit(peer: SocketAddr, key: &str, retry_after: Duration) -> Self {
        Self::new("ratelimit.hit")
            .with("peer", peer.to_string())
            .with("key", key)
            .with("retryAfterMs", ms(retry_after))
    }

    /// `session.crashed`.
    pub fn session_crashed(conn_id: &str, error: String) -> Self {
        Self::new("session.crashed")
            .with("connId", conn_id)
            .with("error", error)
    }

    /// `auth.ok`.
    pub fn auth_ok(who: AuthWho<'_>, method: &str, scopes: &[String]) -> Self {
        Self::auth_base("auth.ok", who)
            .with("method", method)
            .with("scopes", json!(scopes))
    }

    /// `auth.fail` with the rejection `reason` and error `code`.
    pub fn auth_fail(who: AuthWho<'_>, reason: &str, code: &str) -> Self {
        Self::auth_base("auth.fail", who)
            .with("reason", reason)
            .with("code", code)
    }

    fn auth_base(event: &'static str, w: AuthWho<'_>) -> Self {
        let mut ev = Self::new(event)
            .with("connId", w.conn.conn_id.as_str())
            .with("peer", w.conn.peer_str())
            .with("clientId", w.client_id)
            .with("clientMode", w.client_mode)
            .with("clientVersion", w.client_version)
            .with("role", w.role);
        if w.conn.client != w.conn.peer.ip() {
            ev = ev.with("client", w.conn.client.to_string());
        }
        if let Some(Ok(user)) = &w.conn.proxy_user {
            ev = ev.with("user", user.as_str());
        }
        ev
    }

    /// `auth.lockout`.
    pub fn auth_lockout(peer: SocketAddr, key: &str, failures: u32, lockout: Duration) -> Self {
        Self::new("auth.lockout")
            .with("peer", peer.to_string())
            .with("key", key)
            .with("failures", failures)
            .with("lockoutMs", ms(lockout))
    }

    /// `device.pair.requested`.
    pub fn pair_requested(
        device_id: &str,
        request_id: &str,
        remote_ip: &str,
        role: &str,
        client_id: &str,
        conn_id: &str,
    ) -> Self {
        Self::new("device.pair.requested")
            .with("deviceId", device_id)
            .with("requestId", request_id)
            .with("remoteIp", remote_ip)
            .with("role", role)
            .with("clientId", client_id)
            .with("connId", conn_id)
    }

    /// `device.approved` by an operator (`via: owner`).
    pub fn device_approved(
        device_id: &str,
        request_id: &str,
        role: &str,
        remote_ip: &str,
        by_conn_id: &str,
    ) -> Self {
        Self::new("device.approved")
            .with("deviceId", device_id)
            .with("requestId", request_id)
            .with("via", "owner")
            .with("role", role)
            .with("remoteIp", remote_ip)
            .with("byConnId", by_conn_id)
    }

    /// `device.approved` silently for a local client (`via: silent`).
    pub fn device_approved_silently(device_id: &str, peer: SocketAddr) -> Self {
        Self::new("device.approved")
            .with("deviceId", device_id)
            .with("via", "silent")
            .with("peer", peer.to_string())
    }

    /// `device.rejected`.
    pub fn device_rejected(device_id: &str, request_id: &str, by_conn_id: &str) -> Self {
        Self::new("device.rejected")
            .with("deviceId", device_id)
            .with("requestId", request_id)
            .with("byConnId", by_conn_id)
    }

    /// `device.removed`.
    pub fn device_removed(device_id: &str, by_conn_id: &str) -> Self {
        Self::new("device.removed")
            .with("deviceId", device_id)
            .with("byConnId", by_conn_id)
    }

    /// `config.reload` that was refused (the running settings stay).
    pub fn reload_refused(trigger: &str, error: &str) -> Self {
        Self::new("config.reload")
            .with("trigger", trigger)
            .with("ok", false)
            .with("error", error)
    }

    /// `config.reload` that was read: what applied, what needs a restart.
    pub fn reload_applied(
        trigger: &str,
        applied: &[&str],
        restart: &[&str],
        generation: u64,
    ) -> Self {
        Self::new("config.reload")
            .with("trigger", trigger)
            .with("ok", true)
            .with("applied", json!(applied))
            .with("restartRequired", json!(restart))
            .with("generation", generation)
    }

    /// `tunnel.state`: a transition `from` → `to`.
    pub fn tunnel_state(tunnel: &str, from: &str, to: &str, restarts: u64) -> Self {
        Self::new("tunnel.state")
            .with("tunnel", tunnel)
            .with("from", from)
            .with("to", to)
            .with("restarts", restarts)
    }

    /// `tunnel.kill`.
    pub fn tunnel_kill(tunnel: &str, reason: &str) -> Self {
        Self::new("tunnel.kill")
            .with("tunnel", tunnel)
            .with("reason", reason)
    }

    /// `tunnel.actor_restarted`: a crashed tunnel actor restarts in `delay`.
    pub fn tunnel_actor_restarted(actor: &str, delay: Duration) -> Self {
        Self::new("tunnel.actor_restarted")
            .with("actor", actor)
            .with("inMs", ms(delay))
    }

    /// `audit.recovered`.
    pub fn audit_recovered() -> Self {
        Self::new("audit.recovered").with("note", "partial last line removed after a crash")
    }

    /// `audit.rotated`: the previous file is now `file` and ends with `last_seq`; this
    /// file's first byte is at `offset` in the whole log (see `audit::read`).
    pub fn audit_rotated(file: &str, last_seq: u64, offset: u64) -> Self {
        Self::new("audit.rotated")
            .with("file", file)
            .with("lastSeq", last_seq)
            .with("offset", offset)
    }

    /// `tls.reloaded`: new handshakes get `new` (fingerprints as lowercase hex).
    pub fn tls_reloaded(trigger: &str, old: &str, new: &str) -> Self {
        Self::new("tls.reloaded")
            .with("trigger", trigger)
            .with("oldFingerprint", format!("sha256:{old}"))
            .with("newFingerprint", format!("sha256:{new}"))
    }

    /// `tls.reload_failed`: the pair was refused and the served one stays.
    pub fn tls_reload_failed(trigger: &str, reason: &str) -> Self {
        Self::new("tls.reload_failed")
            .with("trigger", trigger)
            .with("reason", reason)
    }

    /// `tls.expiring`: `not_after` in seconds since the epoch.
    pub fn tls_expiring(fingerprint: &str, not_after: i64, days_left: i64) -> Self {
        Self::new("tls.expiring")
            .with("fingerprint", format!("sha256:{fingerprint}"))
            .with("notAfter", not_after * 1000)
            .with("daysLeft", days_left)
    }

    /// `node.connect`.
    pub fn node_connect(h: &crate::nodes::NodeHello, approval_state: &str) -> Self {
        Self::new("node.connect")
            .with("nodeId", h.node_id.as_str())
            .with("connId", h.conn_id.as_str())
            .with_opt("displayName", h.display_name.clone())
            .with("platform", h.platform.as_str())
            .with("version", h.version.as_str())
            .with("remoteIp", h.remote_ip.as_str())
            .with("approvalState", approval_state)
    }

    /// `node.disconnect`: `failed` pending invokes failed with `DISCONNECTED`.
    pub fn node_disconnect(node_id: &str, conn_id: &str, failed: usize) -> Self {
        Self::new("node.disconnect")
            .with("nodeId", node_id)
            .with("connId", conn_id)
            .with("failedInvokes", failed)
    }

    /// `node.pair.requested`: a node's command surface awaits approval.
    pub fn node_pair_requested(
        node_id: &str,
        request_id: &str,
        remote_ip: &str,
        commands: usize,
    ) -> Self {
        Self::new("node.pair.requested")
            .with("nodeId", node_id)
            .with("requestId", request_id)
            .with("remoteIp", remote_ip)
            .with("commands", commands)
    }

    /// `node.pair.approved` / `node.pair.rejected` / `node.pair.removed`.
    pub fn node_pair_decided(
        event: &'static str,
        node_id: &str,
        request_id: &str,
        by_conn_id: &str,
    ) -> Self {
        debug_assert!(event.starts_with("node.pair."));
        Self::new(event)
            .with("nodeId", node_id)
            .with("requestId", request_id)
            .with("byConnId", by_conn_id)
    }

    /// `node.renamed`.
    pub fn node_renamed(node_id: &str, display_name: &str, by_conn_id: &str) -> Self {
        Self::new("node.renamed")
            .with("nodeId", node_id)
            .with("displayName", display_name)
            .with("byConnId", by_conn_id)
    }

    /// `node.invoke`: `outcome` is `ok`, `node_error`, `timeout`, `disconnected` or `too_large`.
    pub fn node_invoke(
        invoke_id: &str,
        node_id: &str,
        command: &str,
        caller_conn_id: &str,
        duration_ms: u64,
        outcome: &str,
    ) -> Self {
        Self::new("node.invoke")
            .with("invokeId", invoke_id)
            .with("nodeId", node_id)
            .with("command", command)
            .with("callerConnId", caller_conn_id)
            .with("durationMs", duration_ms)
            .with("outcome", outcome)
    }

    /// `trace.started`: a per-connection trace began (who traced whom).
    pub fn trace_started(
        trace_id: u64,
        conn_ids: &[String],
        seconds: u64,
        by_conn_id: &str,
    ) -> Self {
        Self::new("trace.started")
            .with("traceId", trace_id)
            .with("connIds", json!(conn_ids))
            .with("seconds", seconds)
            .with("byConnId", by_conn_id)
    }

    /// `gateway.log_level`: the log filter was switched at run time.
    pub fn log_level(filter: &str, previous: &str, by_conn_id: &str) -> Self {
        Self::new("gateway.log_level")
            .with("filter", filter)
            .with("previous", previous)
            .with("byConnId", by_conn_id)
    }

    /// `token.rotated`: `openclaw token rotate` wrote a new gateway token (`source`:
    /// `runtimeFile` or `config`, at `path`) and asked for the reload that applies it.
    pub fn token_rotated(source: &str, path: &str, by_conn_id: &str) -> Self {
        Self::new("token.rotated")
            .with("source", source)
            .with("path", path)
            .with("byConnId", by_conn_id)
    }

    /// `tailscale.claim_ready`.
    pub fn tailscale_claim_ready(mode: &str, port: u16, pid: u32, url: Option<&str>) -> Self {
        Self::new("tailscale.claim_ready")
            .with("mode", mode)
            .with("port", port)
            .with("pid", pid)
            .with_opt("url", url)
    }

    /// `tailscale.claim_exited`: restarted after `restart_in`.
    pub fn tailscale_claim_exited(status: &str, last: Option<&str>, restart_in: Duration) -> Self {
        Self::new("tailscale.claim_exited")
            .with("status", status)
            .with_opt("lastLine", last)
            .with("restartInMs", restart_in.as_millis() as u64)
    }

    /// `tailscale.claim_restarted`.
    pub fn tailscale_claim_restarted(pid: u32, restarts: u64) -> Self {
        Self::new("tailscale.claim_restarted")
            .with("pid", pid)
            .with("restarts", restarts)
    }

    /// `tailscale.route_adopted`.
    pub fn tailscale_route_adopted(gateway_port: u16) -> Self {
        Self::new("tailscale.route_adopted").with("gatewayPort", gateway_port)
    }

    /// `tailscale.whois`.
    pub fn tailscale_whois(ip: std::net::IpAddr, login: Option<&str>, error: Option<&str>) -> Self {
        Self::new("tailscale.whois")
            .with("ip", ip.to_string())
            .with("ok", login.is_some())
            .with_opt("login", login)
            .with_opt("error", error)
    }

    /// The fields [`EVENTS`] lists for this event (empty for an unlisted one).
    pub fn allowed_fields(&self) -> &'static [&'static str] {
        EVENTS
            .iter()
            .find(|(n, _)| *n == self.event)
            .map_or(&[], |(_, f)| *f)
    }

    /// Adds an optional field when present.
    pub fn with_opt(self, key: &'static str, value: Option<impl Into<Value>>) -> Self {
        match value {
            Some(v) => self.with(key, v),
            None => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> ConnFacts {
        ConnFacts {
            conn_id: "c1".into(),
            peer: "127.0.0.1:5000".parse().unwrap(),
            client: "10.0.0.9".parse().unwrap(),
            forwarded: true,
            origin: None,
            proxy_user: Some(Ok("alice".into())),
            user_agent: None,
            connected_at_ms: 0,
            tailscale: None,
            peer_text: Default::default(),
        }
    }

    fn node_hello() -> crate::nodes::NodeHello {
        crate::nodes::NodeHello {
            node_id: "n".into(),
            conn_id: "c".into(),
            client_id: "node-host".into(),
            client_mode: "node".into(),
            display_name: Some("peer".into()),
            platform: "linux".into(),
            version: "1".into(),
            device_family: None,
            caps: vec![],
            commands: vec![],
            path_env: None,
            remote_ip: "127.0.0.1".into(),
            local: true,
            connected_at_ms: 0,
        }
    }

    #[test]
    fn every_constructor_writes_only_listed_fields_of_a_listed_event() {
        let c = conn();
        let who = AuthWho {
            conn: &c,
            client_id: "cli",
            client_mode: "cli",
            client_version: "1",
            role: "operator",
        };
        let d = Duration::from_millis(5);
        let peer = c.peer;
        let all = [
            AuditEvent::gateway_start(vec![], "token"),
            AuditEvent::gateway_stop("SIGTERM", true),
            AuditEvent::actor_failed("auth", d),
            AuditEvent::actor_restarted("auth"),
            AuditEvent::conn_open(&c),
            AuditEvent::conn_close(&c, d, 1000, String::new())
                .with("clientId", "x")
                .with("origin", "o"),
            AuditEvent::handshake_timeout(&c),
            AuditEvent::conn_denied(peer, "allowlist", 403)
                .with("path", "/")
                .with("client", "1.2.3.4"),
            AuditEvent::slow_consumer(&c, 10),
            AuditEvent::ratelimit_hit(peer, "ip:1", d).with("method", "health"),
            AuditEvent::session_crashed("c1", "boom".into()),
            AuditEvent::auth_ok(who, "token", &["operator.read".into()]).with("deviceId", "d"),
            AuditEvent::auth_fail(who, "token_mismatch", "AUTH_TOKEN_MISMATCH")
                .with("retryAfterMs", 5u64),
            AuditEvent::auth_lockout(peer, "ip:1", 10, d),
            AuditEvent::pair_requested("d", "r", "1.2.3.4", "node", "cli", "c1"),
            AuditEvent::device_approved("d", "r", "node", "1.2.3.4", "c1"),
            AuditEvent::device_approved_silently("d", peer),
            AuditEvent::device_rejected("d", "r", "c1"),
            AuditEvent::device_removed("d", "c1"),
            AuditEvent::reload_refused("SIGHUP", "bad"),
            AuditEvent::reload_applied("file", &["gateway.rateLimit"], &[], 1),
            AuditEvent::tunnel_state("t", "starting", "up", 0).with("pid", 1u32),
            AuditEvent::tunnel_kill("t", "probe").with("pid", 1u32),
            AuditEvent::tunnel_actor_restarted("tunnel.t", d),
            AuditEvent::audit_recovered(),
            AuditEvent::audit_rotated("audit.jsonl.1", 41, 8192),
            AuditEvent::tls_reloaded("file", "aa", "bb"),
            AuditEvent::tls_reload_failed("SIGHUP", "bad"),
            AuditEvent::tls_expiring("aa", 1, 2),
            AuditEvent::node_connect(&node_hello(), "approved"),
            AuditEvent::node_disconnect("n", "c1", 2),
            AuditEvent::node_pair_requested("n", "r", "1.2.3.4", 13),
            AuditEvent::node_pair_decided("node.pair.approved", "n", "r", "c1"),
            AuditEvent::node_pair_decided("node.pair.rejected", "n", "r", "c1"),
            AuditEvent::node_pair_decided("node.pair.removed", "n", "", "c1"),
            AuditEvent::node_renamed("n", "x", "c1"),
            AuditEvent::node_invoke("i", "n", "system.which", "c1", 5, "ok"),
            AuditEvent::tailscale_claim_ready("serve", 1, 2, Some("https://gw/")),
            AuditEvent::tailscale_claim_exited("exit 1", Some("x"), d),
            AuditEvent::tailscale_claim_restarted(2, 1),
            AuditEvent::tailscale_route_adopted(18789),
            AuditEvent::tailscale_whois(peer.ip(), Some("a@b"), None),
            AuditEvent::log_level("debug", "info", "c1"),
            AuditEvent::trace_started(1, &["c2".into()], 60, "c1"),
            AuditEvent::token_rotated("runtimeFile", "/s/gateway.token", "c1"),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for ev in &all {
            let allowed = ev.allowed_fields();
            assert!(!allowed.is_empty(), "{} is not in EVENTS", ev.event);
            for (k, _) in ev.fields() {
                assert!(allowed.contains(&k), "{}: field {k} not listed", ev.event);
            }
            seen.insert(ev.event);
        }
        for (name, _) in EVENTS {
            assert!(seen.contains(name), "no constructor tested for {name}");
        }
        let ok = &all[11];
        assert_eq!(ok.get("client").unwrap(), "10.0.0.9");
        assert_eq!(ok.get("user").unwrap(), "alice");
    }
}
