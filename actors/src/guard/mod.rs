//! The security layer in front of sessions: who a request comes from (forwarded-header
//! trust), whether it may come in (IP allowlist, pre-auth cap, `maxConnections`), and how
//! often it may ask (request rate limit). Everything here is decided on the HTTP request,
//! before the WebSocket upgrade, from a [`Policy`] snapshot that hot reload swaps whole.

pub mod conncap;
pub mod forwarded;
pub mod ipset;
pub mod limiter;
pub mod limiter_actor;
pub mod preauth;

use std::net::IpAddr;
use std::sync::Arc;

use forwarded::{Attribution, ForwardError, Forwarding};
use ipset::IpSet;
use limiter::{LimitKey, RateConfig};

/// Default cap on unauthenticated connections per client address (PROTOCOL §1).
pub const DEFAULT_MAX_PREAUTH_PER_IP: u32 = 32;

/// `gateway.auth.trustedProxy`, resolved (auth mode `trusted-proxy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAuth {
    /// Header naming the user (lower-case).
    pub user_header: String,
    /// Headers that must be present (lower-case).
    pub required_headers: Vec<String>,
    /// Users allowed in; empty = any.
    pub allow_users: Vec<String>,
    /// Whether a proxy on loopback may vouch for users.
    pub allow_loopback: bool,
    /// Scopes granted to users the proxy names.
    pub identity_scopes: Vec<String>,
}

/// The live-reloadable admission rules.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policy {
    /// `gateway.allowedIPs` ∪ `gateway.tailscale.allowedIPs`; `None`: everyone may connect.
    pub allowed: Option<IpSet>,
    /// Loopback clients pass the allowlist (`gateway.allowLoopback`, default true).
    pub allow_loopback: bool,
    /// `gateway.trustedProxies`.
    pub trusted_proxies: IpSet,
    /// `gateway.allowRealIpFallback`.
    pub allow_real_ip_fallback: bool,
    /// Trusted-proxy auth, when that is the mode.
    pub proxy_auth: Option<ProxyAuth>,
    /// `gateway.rateLimit`; `None`: off.
    pub rate: Option<RateConfig>,
    /// `OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP`.
    pub max_preauth_per_ip: u32,
    /// `gateway.tailscale.auth.allowedUsers`, lower-cased; empty: every verified tailnet user.
    pub tailscale_users: Vec<String>,
    /// `gateway.auth.identityScopes` (extra scopes for a verified Tailscale login).
    pub tailscale_scopes: Option<crate::config::schema::IdentityScopes>,
    /// `gateway.connections`: the caps checked at accept.
    pub connections: conncap::ConnLimits,
}

/// Who an admitted request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// Where it comes from.
    pub attribution: Attribution,
    /// The user a trusted proxy names (trusted-proxy mode), or why it names none.
    pub proxy_user: Option<Result<String, &'static str>>,
}

/// Why a request is refused before the upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Forwarding headers that cannot be trusted (HTTP 403, or 400 when malformed).
    Forwarding(ForwardError),
    /// Client outside the allowlist (HTTP 403).
    NotAllowed(IpAddr),
}

// === impl Policy ===

impl Policy {
    /// Attributes the request and checks the allowlist. `header` reads one request header.
    pub fn admit(
        &self,
        peer: IpAddr,
        fwd: &Forwarding,
        header: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Admission, Refusal> {
        let attribution = forwarded::attribute(
            peer,
            fwd,
            &self.trusted_proxies,
            self.allow_real_ip_fallback,
        )
        .map_err(Refusal::Forwarding)?;
        let client = attribution.client();
        if let Some(allowed) = &self.allowed {
            let loopback_ok = self.allow_loopback && client.is_loopback();
            if !loopback_ok && !allowed.contains(client) {
                return Err(Refusal::NotAllowed(client));
            }
        }
        let proxy_user = self
            .proxy_auth
            .as_ref()
            .map(|pa| proxy_user(pa, &attribution, header));
        Ok(Admission {
            attribution,
            proxy_user,
        })
    }

    /// The key a client is limited under, or `None` when it is not limited.
    /// Admission on the Tailscale-managed listener, where the client was already attributed
    /// from Tailscale's proxy headers: only the allowlist applies.
    pub fn admit_managed(&self, peer: IpAddr, client: IpAddr) -> Result<Admission, Refusal> {
        if let Some(allowed) = &self.allowed {
            if !allowed.contains(client) {
                return Err(Refusal::NotAllowed(client));
            }
        }
        Ok(Admission {
            attribution: Attribution::Proxied {
                client,
                proxy: peer,
            },
            proxy_user: None,
        })
    }

    /// Extra scopes `gateway.auth.identityScopes` grants a verified Tailscale `login`.
    pub fn tailscale_extra_scopes(&self, login: &str) -> Vec<String> {
        use crate::config::schema::IdentityScopes;
        match &self.tailscale_scopes {
            None => Vec::new(),
            Some(IdentityScopes::All(v)) => v.clone(),
            Some(IdentityScopes::PerLogin(m)) => m
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(login))
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
        }
    }

    pub fn limit_key(&self, a: &Admission) -> Option<LimitKey> {
        let rate = self.rate.as_ref()?;
        if let Some(Ok(user)) = &a.proxy_user {
            return Some(LimitKey::User(Arc::from(user.as_str())));
        }
        let client = a.attribution.client();
        if rate.exempt_loopback && client.is_loopback() && !a.attribution.proxied() {
            return None;
        }
        Some(LimitKey::Ip(ipset::client_key(client)))
    }
}

/// The user a trusted proxy vouches for (PROTOCOL §5 `trusted-proxy`).
fn proxy_user(
    pa: &ProxyAuth,
    a: &Attribution,
    header: &dyn Fn(&str) -> Option<String>,
) -> Result<String, &'static str> {
    let Attribution::Proxied { proxy, .. } = *a else {
        return Err("trusted_proxy_not_proxied");
    };
    if proxy.is_loopback() && !pa.allow_loopback {
        return Err("trusted_proxy_loopback_not_allowed");
    }
    if pa.required_headers.iter().any(|h| header(h).is_none()) {
        return Err("trusted_proxy_missing_header");
    }
    let user = header(&pa.user_header)
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .ok_or("trusted_proxy_user_missing")?;
    if !pa.allow_users.is_empty() && !pa.allow_users.iter().any(|u| u == &user) {
        return Err("trusted_proxy_user_not_allowed");
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn no_headers(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn allowlist_table() {
        let mut p = Policy {
            allowed: Some(IpSet::parse(&["198.18.0.0/24", "2001:db8::/32"]).unwrap()),
            allow_loopback: true,
            ..Default::default()
        };
        let direct = Forwarding::default();
        let cases = [
            ("198.18.0.7", true),
            ("198.18.1.7", false),
            ("2001:db8::9", true),
            ("2001:db9::9", false),
            ("127.0.0.1", true),
            ("::1", true),
        ];
        for (peer, ok) in cases {
            assert_eq!(
                p.admit(ip(peer), &direct, &no_headers).is_ok(),
                ok,
                "{peer}"
            );
        }
        p.allow_loopback = false;
        assert_eq!(
            p.admit(ip("127.0.0.1"), &direct, &no_headers).unwrap_err(),
            Refusal::NotAllowed(ip("127.0.0.1"))
        );
        // The allowlist applies to the attributed client, not to the proxy.
        p.allow_loopback = true;
        p.trusted_proxies = IpSet::parse(&["127.0.0.1"]).unwrap();
        let via = |c: &str| Forwarding {
            xff: vec![c.to_string()],
            ..Default::default()
        };
        assert!(p
            .admit(ip("127.0.0.1"), &via("198.18.0.9"), &no_headers)
            .is_ok());
        assert_eq!(
            p.admit(ip("127.0.0.1"), &via("203.0.113.1"), &no_headers)
                .unwrap_err(),
            Refusal::NotAllowed(ip("203.0.113.1"))
        );
        // A proxied "loopback" client is what the proxy saw, not this machine: still loopback
        // by address, so allowLoopback decides.
        assert!(p
            .admit(ip("127.0.0.1"), &via("127.0.0.1"), &no_headers)
            .is_ok());
    }

    #[test]
    fn no_allowlist_admits_everyone() {
        let p = Policy::default();
        assert!(p
            .admit(ip("203.0.113.1"), &Forwarding::default(), &no_headers)
            .is_ok());
    }

    #[test]
    fn limit_keys() {
        let rate = RateConfig {
            exempt_loopback: true,
            ..Default::default()
        };
        let p = Policy {
            rate: Some(rate),
            trusted_proxies: IpSet::parse(&["127.0.0.1"]).unwrap(),
            ..Default::default()
        };
        let adm = |peer: &str, xff: Option<&str>| {
            let f = Forwarding {
                xff: xff.map(|x| vec![x.to_string()]).unwrap_or_default(),
                ..Default::default()
            };
            p.admit(ip(peer), &f, &no_headers).unwrap()
        };
        assert_eq!(
            p.limit_key(&adm("127.0.0.1", None)),
            None,
            "exempt loopback"
        );
        assert_eq!(
            p.limit_key(&adm("127.0.0.1", Some("198.18.0.4"))),
            Some(LimitKey::Ip(ip("198.18.0.4")))
        );
        assert_eq!(
            p.limit_key(&adm("2001:db8::1", None)),
            Some(LimitKey::Ip(ip("2001:db8::")))
        );
        let off = Policy::default();
        assert_eq!(off.limit_key(&adm("198.18.0.4", None)), None, "limiter off");
    }

    #[test]
    fn trusted_proxy_users() {
        let pa = ProxyAuth {
            user_header: "x-auth-user".into(),
            required_headers: vec!["x-auth-proof".into()],
            allow_users: vec!["alice".into()],
            allow_loopback: true,
            identity_scopes: vec!["operator.read".into()],
        };
        let p = Policy {
            trusted_proxies: IpSet::parse(&["127.0.0.1", "10.0.0.1"]).unwrap(),
            proxy_auth: Some(pa),
            rate: Some(RateConfig::default()),
            ..Default::default()
        };
        let via = Forwarding {
            xff: vec!["198.18.0.4".into()],
            ..Default::default()
        };
        type H = &'static [(&'static str, &'static str)];
        let cases: [(&str, &Forwarding, H, Result<&str, &str>); 5] = [
            (
                "127.0.0.1",
                &via,
                &[("x-auth-user", "alice"), ("x-auth-proof", "1")],
                Ok("alice"),
            ),
            (
                "127.0.0.1",
                &via,
                &[("x-auth-user", "bob"), ("x-auth-proof", "1")],
                Err("trusted_proxy_user_not_allowed"),
            ),
            (
                "127.0.0.1",
                &via,
                &[("x-auth-user", "alice")],
                Err("trusted_proxy_missing_header"),
            ),
            (
                "127.0.0.1",
                &via,
                &[("x-auth-proof", "1")],
                Err("trusted_proxy_user_missing"),
            ),
            (
                "10.0.0.1",
                &Forwarding::default(),
                &[("x-auth-user", "alice"), ("x-auth-proof", "1")],
                Err("trusted_proxy_not_proxied"),
            ),
        ];
        for (peer, f, headers, want) in cases {
            let h = |n: &str| {
                headers
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            };
            let a = p.admit(ip(peer), f, &h).unwrap();
            assert_eq!(a.proxy_user, Some(want.map(str::to_string)), "{headers:?}");
            if want.is_ok() {
                assert_eq!(p.limit_key(&a), Some(LimitKey::User("alice".into())));
            }
        }
        let mut strict = p.clone();
        strict.proxy_auth.as_mut().unwrap().allow_loopback = false;
        let h = |n: &str| (n == "x-auth-user" || n == "x-auth-proof").then(|| "alice".to_string());
        let a = strict.admit(ip("127.0.0.1"), &via, &h).unwrap();
        assert_eq!(
            a.proxy_user,
            Some(Err("trusted_proxy_loopback_not_allowed"))
        );
    }
}
