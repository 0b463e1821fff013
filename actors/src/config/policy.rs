//! Resolution of the admission rules ([`crate::guard::Policy`]): allowlists, trusted
//! proxies, trusted-proxy auth, the request rate limit in both of its spellings, and the
//! pre-auth cap. Shared by start-up and hot reload.

use std::path::Path;
use std::time::Duration;

use super::load::ConfigError;
use super::resolve::{invalid, AuthMode, AuthSettings};
use super::schema::FileConfig;
use crate::guard::conncap::ConnLimits;
use crate::guard::ipset::IpSet;
use crate::guard::limiter::RateConfig;
use crate::guard::{Policy, ProxyAuth, DEFAULT_MAX_PREAUTH_PER_IP};
use crate::protocol::scopes;

fn ip_list(list: Option<&[String]>, key: &str, cfg: &Path) -> Result<IpSet, ConfigError> {
    IpSet::parse(list.unwrap_or(&[])).map_err(|e| {
        invalid(
            cfg,
            &format!("{key}[{}]", e.index),
            format!(
                "{:?} is not an IP address or CIDR (e.g. \"192.168.1.7\", \"10.0.0.0/8\", \
                 \"fd00::/8\")",
                e.entry
            ),
        )
    })
}

/// Resolves the policy. `exposed`: some listener is beyond loopback (turns the request rate
/// limit on by default).
pub fn resolve_policy(
    file: &FileConfig,
    cfg: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    auth: &AuthSettings,
    exposed: bool,
) -> Result<Policy, ConfigError> {
    let g = &file.gateway;
    let mut allowed = ip_list(g.allowed_ips.as_deref(), "gateway.allowedIPs", cfg)?;
    let ts = ip_list(
        g.tailscale.as_ref().and_then(|t| t.allowed_ips.as_deref()),
        "gateway.tailscale.allowedIPs",
        cfg,
    )?;
    if !ts.is_empty() {
        let mut all = allowed.to_strings();
        all.extend(ts.to_strings());
        allowed = IpSet::parse(&all).expect("already parsed");
    }
    let trusted_proxies = ip_list(g.trusted_proxies.as_deref(), "gateway.trustedProxies", cfg)?;
    let proxy_auth = if auth.mode == AuthMode::TrustedProxy {
        Some(resolve_proxy_auth(file, cfg, &trusted_proxies)?)
    } else {
        None
    };
    let max_preauth_per_ip = match env("OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP") {
        Some(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                ConfigError::Refused(format!(
                    "env OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP={v:?} is not a positive number; \
                     unset it for the default ({DEFAULT_MAX_PREAUTH_PER_IP})"
                ))
            })?,
        None => DEFAULT_MAX_PREAUTH_PER_IP,
    };
    Ok(Policy {
        allowed: (!allowed.is_empty()).then_some(allowed),
        allow_loopback: g.allow_loopback.unwrap_or(true),
        trusted_proxies,
        allow_real_ip_fallback: g.allow_real_ip_fallback.unwrap_or(false),
        proxy_auth,
        rate: resolve_rate(file, cfg, exposed)?,
        max_preauth_per_ip,
        tailscale_users: g
            .tailscale
            .as_ref()
            .and_then(|t| t.auth.as_ref())
            .and_then(|a| a.allowed_users.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|u| u.trim().to_ascii_lowercase())
            .filter(|u| !u.is_empty())
            .collect(),
        tailscale_scopes: g.auth.identity_scopes.clone(),
        connections: resolve_connections(g.connections.as_ref(), cfg)?,
    })
}

fn resolve_proxy_auth(
    file: &FileConfig,
    cfg: &Path,
    trusted: &IpSet,
) -> Result<ProxyAuth, ConfigError> {
    let a = &file.gateway.auth;
    if trusted.is_empty() {
        return Err(invalid(
            cfg,
            "gateway.trustedProxies",
            "auth mode trusted-proxy needs the proxy's address here (e.g. [\"127.0.0.1\"])".into(),
        ));
    }
    let tp = a.trusted_proxy.clone().unwrap_or_default();
    let user_header = tp
        .user_header
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            invalid(
                cfg,
                "gateway.auth.trustedProxy.userHeader",
                "auth mode trusted-proxy needs the header that names the user (e.g. \
                 \"x-forwarded-user\")"
                    .into(),
            )
        })?;
    let identity_scopes = match a.identity_scopes.clone() {
        None => vec![scopes::READ.to_string()],
        Some(super::schema::IdentityScopes::All(v)) => v,
        Some(super::schema::IdentityScopes::PerLogin(_)) => {
            return Err(invalid(
                cfg,
                "gateway.auth.identityScopes",
                "auth mode trusted-proxy takes a list of scopes here (per-login maps are for \
                 Tailscale identity auth)"
                    .into(),
            ))
        }
    };
    Ok(ProxyAuth {
        user_header,
        required_headers: tp
            .required_headers
            .unwrap_or_default()
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect(),
        allow_users: tp.allow_users.unwrap_or_default(),
        allow_loopback: tp.allow_loopback.unwrap_or(false),
        identity_scopes,
    })
}

/// `gateway.rateLimit`, or the seed's `gateway.auth.rateLimit {maxRequests, windowMs}`
/// spelling of the same setting. On when configured; on with defaults when the gateway is
/// exposed beyond loopback; off otherwise.
fn resolve_rate(
    file: &FileConfig,
    cfg: &Path,
    exposed: bool,
) -> Result<Option<RateConfig>, ConfigError> {
    let g = &file.gateway;
    let d = RateConfig::default();
    let seed = g
        .auth
        .rate_limit
        .as_ref()
        .filter(|r| r.max_requests.is_some());
    if let (Some(main), Some(seed)) = (&g.rate_limit, seed) {
        let differs = main
            .max_requests
            .is_some_and(|m| Some(m) != seed.max_requests)
            || (main.window_ms.is_some()
                && seed.window_ms.is_some()
                && main.window_ms != seed.window_ms);
        if differs {
            return Err(invalid(
                cfg,
                "gateway.auth.rateLimit.maxRequests",
                "the request rate limit is set twice with different values (also \
                 gateway.rateLimit); keep one"
                    .into(),
            ));
        }
    }
    let (enabled, max_requests, window_ms, max_connections, exempt, key) =
        match (&g.rate_limit, seed) {
            (Some(r), _) => (
                r.enabled.unwrap_or(true),
                r.max_requests.or(seed.and_then(|s| s.max_requests)),
                r.window_ms.or(seed.and_then(|s| s.window_ms)),
                r.max_connections,
                r.exempt_loopback,
                "gateway.rateLimit",
            ),
            (None, Some(s)) => (
                s.enabled.unwrap_or(true),
                s.max_requests,
                s.window_ms,
                None,
                None,
                "gateway.auth.rateLimit",
            ),
            (None, None) => (exposed, None, None, None, None, "gateway.rateLimit"),
        };
    if !enabled {
        return Ok(None);
    }
    let positive = |v: Option<u64>, field: &str, dflt: u64| -> Result<u64, ConfigError> {
        match v {
            Some(0) => Err(invalid(
                cfg,
                &format!("{key}.{field}"),
                "must be at least 1".into(),
            )),
            Some(n) => Ok(n),
            None => Ok(dflt),
        }
    };
    Ok(Some(RateConfig {
        max_requests: positive(
            max_requests.map(u64::from),
            "maxRequests",
            u64::from(d.max_requests),
        )?
        .min(u64::from(u32::MAX)) as u32,
        window: Duration::from_millis(positive(
            window_ms,
            "windowMs",
            d.window.as_millis() as u64,
        )?),
        max_connections: positive(
            max_connections.map(u64::from),
            "maxConnections",
            u64::from(d.max_connections),
        )?
        .min(u64::from(u32::MAX)) as u32,
        exempt_loopback: exempt.unwrap_or(d.exempt_loopback),
    }))
}

/// `gateway.connections`: zero is refused (it would lock everyone out).
fn resolve_connections(
    c: Option<&super::schema::ConnectionsConfig>,
    cfg: &Path,
) -> Result<ConnLimits, ConfigError> {
    let d = ConnLimits::default();
    let Some(c) = c else { return Ok(d) };
    let positive = |v: Option<u32>, key: &str| match v {
        Some(0) => Err(ConfigError::Invalid {
            file: cfg.to_path_buf(),
            path: format!("gateway.connections.{key}"),
            msg: "must be at least 1 (remove the key for the default)".into(),
        }),
        v => Ok(v),
    };
    Ok(ConnLimits {
        max: positive(c.max, "max")?,
        per_address: positive(c.per_address, "perAddress")?.unwrap_or(d.per_address),
        loopback_reserve: c.loopback_reserve.unwrap_or(d.loopback_reserve),
    })
}
