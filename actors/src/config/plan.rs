//! The reload plan: which changes between two resolved [`Settings`] apply live and which need
//! a restart. Pure: it compares typed values (secrets in constant time, never printed) and
//! does no I/O, so the reloader only has to act on the answer.

use super::schema::GatewayConfig;
use super::Settings;
use crate::secret::Secret;

/// What a reload would change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Keys that apply live (in this order): "gateway.auth.token", "gateway.auth.password",
    /// "gateway.allowedIPs", "gateway.trustedProxies", "gateway.auth.trustedProxy",
    /// "gateway.rateLimit", "OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP", "gateway.auth.rateLimit",
    /// "gateway.tailscale.auth.allowedUsers", "gateway.auth.identityScopes",
    /// "gateway.connections", "logging.level", "tunnels".
    pub apply: Vec<&'static str>,
    /// Keys that changed but need a restart: "gateway.port", "gateway.bind",
    /// "gateway.auth.mode", "gateway.tls", "gateway.tailscale.mode",
    /// "gateway.handshakeTimeoutMs", "gateway.tickIntervalMs", "gateway.shutdownGraceMs",
    /// "tunnels", "logging", "browser", "gateway.reload", "audit" (in this order).
    pub restart: Vec<&'static str>,
}

/// Compares the settings in force (`old`) with freshly resolved ones (`new`).
///
/// Tokens and passwords are compared as configured (file, env or flag); a runtime token
/// generated at start-up is not in [`Settings`], so keeping it is the caller's business.
pub fn plan(old: &Settings, new: &Settings) -> Plan {
    Plan {
        apply: changed(live_keys(old, new)),
        restart: changed(restart_keys(old, new)),
    }
}

/// The keys whose flag is set, in table order.
fn changed<const N: usize>(table: [(&'static str, bool); N]) -> Vec<&'static str> {
    table
        .into_iter()
        .filter_map(|(key, differs)| differs.then_some(key))
        .collect()
}

/// Live keys, each with whether it differs.
fn live_keys(old: &Settings, new: &Settings) -> [(&'static str, bool); 13] {
    let (p, q) = (&new.policy, &old.policy);
    [
        (
            "gateway.auth.token",
            !same_secret(&new.auth.token, &old.auth.token),
        ),
        (
            "gateway.auth.password",
            !same_secret(&new.auth.password, &old.auth.password),
        ),
        (
            "gateway.allowedIPs",
            p.allowed != q.allowed || p.allow_loopback != q.allow_loopback,
        ),
        (
            "gateway.trustedProxies",
            p.trusted_proxies != q.trusted_proxies
                || p.allow_real_ip_fallback != q.allow_real_ip_fallback,
        ),
        ("gateway.auth.trustedProxy", p.proxy_auth != q.proxy_auth),
        ("gateway.rateLimit", p.rate != q.rate),
        (
            "OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP",
            p.max_preauth_per_ip != q.max_preauth_per_ip,
        ),
        ("gateway.auth.rateLimit", new.lockout != old.lockout),
        (
            "gateway.tailscale.auth.allowedUsers",
            p.tailscale_users != q.tailscale_users,
        ),
        (
            "gateway.auth.identityScopes",
            p.tailscale_scopes != q.tailscale_scopes,
        ),
        ("gateway.connections", p.connections != q.connections),
        ("logging.level", old.log_level != new.log_level),
        ("tunnels", old.tunnels != new.tunnels),
    ]
}

/// Restart keys, each with whether it differs.
fn restart_keys(old: &Settings, new: &Settings) -> [(&'static str, bool); 13] {
    let (a, b) = (&old.file.gateway, &new.file.gateway);
    [
        ("gateway.port", old.port != new.port),
        (
            "gateway.bind",
            old.bind.mode != new.bind.mode || old.bind.host != new.bind.host,
        ),
        ("gateway.auth.mode", old.auth.mode != new.auth.mode),
        ("gateway.tls", a.tls != b.tls),
        (
            "gateway.tailscale.mode",
            tailscale_mode(a) != tailscale_mode(b),
        ),
        (
            "gateway.tailscale.auth.enabled",
            old.tailscale.as_ref().map(|t| t.identity_auth)
                != new.tailscale.as_ref().map(|t| t.identity_auth)
                && tailscale_mode(a) == tailscale_mode(b),
        ),
        (
            "gateway.handshakeTimeoutMs",
            old.handshake_timeout != new.handshake_timeout,
        ),
        (
            "gateway.tickIntervalMs",
            old.tick_interval != new.tick_interval,
        ),
        (
            "gateway.shutdownGraceMs",
            old.shutdown_grace != new.shutdown_grace,
        ),
        (
            "logging",
            logging_rest(&old.file) != logging_rest(&new.file),
        ),
        ("browser", old.file.browser != new.file.browser),
        ("gateway.reload", a.reload != b.reload),
        ("audit", old.audit_rotation != new.audit_rotation),
    ]
}

/// The `logging` section without `level` (which applies live): the log file.
fn logging_rest(f: &super::FileConfig) -> Option<String> {
    f.logging.as_ref().and_then(|l| l.file.clone())
}

/// `gateway.tailscale.mode`: an absent `gateway.tailscale` and one without `mode` are the
/// same.
fn tailscale_mode(g: &GatewayConfig) -> Option<&str> {
    g.tailscale.as_ref().and_then(|t| t.mode.as_deref())
}

/// Both unset, or both set to the same value (compared in constant time).
fn same_secret(a: &Option<Secret>, b: &Option<Secret>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.matches(b.expose()),
        (None, None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
