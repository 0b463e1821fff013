//! Pure pieces of the Tailscale integration (REMOTE-ACCESS-REFERENCE §2): the argv of every
//! `tailscale` command the gateway runs, reading its JSON (stdout may be noisy: the JSON is
//! taken from the first `{` to the last `}`), the adoption rule for a route left by an older
//! release, the login a `whois` names, how errors are classified, the whois cache, and the
//! checks on a request arriving at the managed listener. No I/O; `now` is passed in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

/// `serve` or `funnel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reachable inside the tailnet.
    Serve,
    /// Reachable from the internet (password auth only).
    Funnel,
}

impl Mode {
    /// `serve` / `funnel`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Serve => "serve",
            Mode::Funnel => "funnel",
        }
    }
}

/// What the claim prints once the route is live.
pub const READY_MARKER: &str = "Press Ctrl+C to exit.";

/// `tailscale version`.
pub fn version_argv() -> Vec<String> {
    vec!["version".into()]
}

/// `tailscale status --json`.
pub fn status_argv() -> Vec<String> {
    vec!["status".into(), "--json".into()]
}

/// `tailscale serve status --json`.
pub fn serve_status_argv() -> Vec<String> {
    vec!["serve".into(), "status".into(), "--json".into()]
}

/// `tailscale serve --yes --https=443 --set-path=/ off`: removes an adopted route.
pub fn adopt_argv() -> Vec<String> {
    ["serve", "--yes", "--https=443", "--set-path=/", "off"]
        .map(String::from)
        .to_vec()
}

/// `tailscale serve|funnel --yes --bg=false <port>`: the long-lived claim.
pub fn claim_argv(mode: Mode, port: u16) -> Vec<String> {
    vec![
        mode.as_str().into(),
        "--yes".into(),
        "--bg=false".into(),
        port.to_string(),
    ]
}

/// `tailscale whois --json <ip>` (a bare IP, never ip:port).
pub fn whois_argv(ip: IpAddr) -> Vec<String> {
    vec!["whois".into(), "--json".into(), ip.to_string()]
}

/// The JSON object in noisy output: from the first `{` to the last `}`.
pub fn json_in(out: &str) -> Option<Value> {
    let (a, b) = (out.find('{')?, out.rfind('}')?);
    (a < b)
        .then(|| serde_json::from_str(&out[a..=b]).ok())
        .flatten()
}

/// Whether `tailscale status --json` says the daemon is still starting (wait and ask again).
pub fn still_starting(status: &Value) -> bool {
    matches!(
        status.get("BackendState").and_then(Value::as_str),
        Some("NoState" | "Starting")
    )
}

/// Whether an error text means the local daemon is not up yet (wait and ask again).
pub fn daemon_unreachable(err: &str) -> bool {
    let e = err.to_ascii_lowercase();
    [
        "connection refused",
        "failed to connect to local tailscale",
        "503",
    ]
    .iter()
    .any(|m| e.contains(m))
}

/// The name the tailnet knows this machine by: `Self.DNSName` without its trailing dot,
/// else `Self.TailscaleIPs[0]`, else the top-level `TailscaleIPs[0]`.
pub fn self_name(status: &Value) -> Option<String> {
    let me = status.get("Self");
    let dns = me
        .and_then(|s| s.get("DNSName"))
        .and_then(Value::as_str)
        .map(|d| d.trim_end_matches('.'))
        .filter(|d| !d.is_empty());
    if let Some(d) = dns {
        return Some(d.to_string());
    }
    let first_ip = |v: Option<&Value>| {
        v.and_then(|v| v.get("TailscaleIPs"))
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    first_ip(me).or_else(|| first_ip(Some(status)))
}

/// Whether `tailscale serve status --json` shows the route an older release left for
/// `gateway_port` (a sole `/` handler proxying to `http://127.0.0.1:<port>` or
/// `http://localhost:<port>` on a `:443` host, with `TCP["443"].HTTPS`): then it is removed
/// (adopted) before the claim.
pub fn adoptable(serve_status: &Value, gateway_port: u16) -> bool {
    let https = serve_status
        .pointer("/TCP/443/HTTPS")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(web) = serve_status.get("Web").and_then(Value::as_object) else {
        return false;
    };
    let targets = [
        format!("http://127.0.0.1:{gateway_port}"),
        format!("http://localhost:{gateway_port}"),
    ];
    https
        && web.iter().any(|(host, v)| {
            let handlers = v.get("Handlers").and_then(Value::as_object);
            host.ends_with(":443")
                && handlers.is_some_and(|h| {
                    h.len() == 1
                        && h.get("/")
                            .and_then(|r| r.get("Proxy"))
                            .and_then(Value::as_str)
                            .is_some_and(|p| targets.iter().any(|t| p.trim_end_matches('/') == t))
                })
        })
}

/// The login a `whois --json` answer names: `UserProfile.LoginName`, then `.Login`,
/// `.login`, then `User.*`, then top-level `LoginName`/`login`.
pub fn whois_login(v: &Value) -> Option<String> {
    let pick = |o: Option<&Value>| {
        let o = o?;
        ["LoginName", "Login", "login"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    pick(v.get("UserProfile"))
        .or_else(|| pick(v.get("User")))
        .or_else(|| pick(Some(v)))
}

/// How a failed `tailscale` command is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The binary is not there.
    Missing,
    /// The daemon refused us (not root, not the operator).
    Permission(String),
    /// Another route owns HTTPS port 443.
    Conflict(String),
    /// Anything else.
    Other(String),
}

/// Classifies an error text.
pub fn classify(err: &str) -> Failure {
    let e = err.to_ascii_lowercase();
    let permission = [
        "permission denied",
        "access denied",
        "operation not permitted",
        "requires root",
        "must be run as root",
        "with sudo",
        "eacces",
    ];
    if permission.iter().any(|m| e.contains(m)) {
        Failure::Permission(err.trim().to_string())
    } else if e.contains("listener already exists for port") {
        Failure::Conflict(err.trim().to_string())
    } else {
        Failure::Other(err.trim().to_string())
    }
}

/// One line saying what went wrong and what to do.
pub fn explain(mode: Mode, step: &str, f: &Failure) -> String {
    let m = mode.as_str();
    match f {
        Failure::Missing => format!(
            "tailscale {m}: the `tailscale` program was not found on PATH; install Tailscale \
             (https://tailscale.com/download) or set gateway.tailscale.mode to \"off\""
        ),
        Failure::Permission(d) => format!(
            "tailscale {m}: `tailscale {step}` was refused ({d}); run `sudo tailscale set \
             --operator=$USER` once so the gateway's user may manage Serve"
        ),
        Failure::Conflict(d) => format!(
            "tailscale {m}: HTTPS port 443 is already owned by a route this gateway did not \
             create ({d}); remove it with `tailscale serve reset` (or `tailscale serve --https=443 off`) \
             and start again"
        ),
        Failure::Other(d) => format!("tailscale {m}: `tailscale {step}` failed: {d}"),
    }
}

/// `whois` results per IP: 60 s after a success, 5 s after a failure.
#[derive(Debug, Default)]
pub struct WhoisCache {
    entries: HashMap<IpAddr, (Option<String>, Instant)>,
}

/// How long a successful lookup is kept.
pub const WHOIS_OK_TTL: Duration = Duration::from_secs(60);
/// How long a failed lookup is kept.
pub const WHOIS_FAIL_TTL: Duration = Duration::from_secs(5);
/// Most IPs cached.
pub const WHOIS_MAX: usize = 4_096;

impl WhoisCache {
    /// The cached login (`Some(None)`: a cached failure), if still fresh at `now`.
    pub fn get(&self, ip: IpAddr, now: Instant) -> Option<Option<String>> {
        let (login, at) = self.entries.get(&ip)?;
        let ttl = if login.is_some() {
            WHOIS_OK_TTL
        } else {
            WHOIS_FAIL_TTL
        };
        (now.saturating_duration_since(*at) < ttl).then(|| login.clone())
    }

    /// Records a lookup at `now`; over [`WHOIS_MAX`] stale entries go first, then the oldest.
    pub fn put(&mut self, ip: IpAddr, login: Option<String>, now: Instant) {
        if self.entries.len() >= WHOIS_MAX && !self.entries.contains_key(&ip) {
            self.entries.retain(|_, (l, at)| {
                let ttl = if l.is_some() {
                    WHOIS_OK_TTL
                } else {
                    WHOIS_FAIL_TTL
                };
                now.saturating_duration_since(*at) < ttl
            });
            if self.entries.len() >= WHOIS_MAX {
                if let Some(old) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| *k)
                {
                    self.entries.remove(&old);
                }
            }
        }
        self.entries.insert(ip, (login, now));
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What the managed listener learned from Tailscale's proxy headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingress {
    /// The client (from `X-Forwarded-For`).
    pub client: IpAddr,
    /// `Tailscale-User-Login`, if sent.
    pub login: Option<String>,
    /// `Tailscale-User-Name`, if sent.
    pub name: Option<String>,
    /// `Tailscale-Funnel-Request` was sent.
    pub funnel: bool,
}

/// Checks a request on the managed listener: a loopback peer (Tailscale's local proxy),
/// `X-Forwarded-For`, `-Proto` and `-Host` all present, a client that is not loopback, and in
/// serve mode no `Tailscale-Funnel-Request`. `Err` is the reason (answered 403
/// `proxy_attribution_required`).
pub fn ingress(
    mode: Mode,
    peer: IpAddr,
    header: &dyn Fn(&str) -> Option<String>,
) -> Result<Ingress, &'static str> {
    if !peer.is_loopback() {
        return Err("managed listener: peer is not Tailscale's local proxy");
    }
    let (xff, proto, host) = (
        header("x-forwarded-for"),
        header("x-forwarded-proto"),
        header("x-forwarded-host"),
    );
    let (Some(xff), Some(_), Some(_)) = (xff, proto, host) else {
        return Err("managed listener: X-Forwarded-For, -Proto and -Host are all required");
    };
    let funnel = header("tailscale-funnel-request").is_some();
    if funnel && mode == Mode::Serve {
        return Err("managed listener: a Funnel request in serve mode");
    }
    // The right-most hop that is not loopback (127.0.0.1 and ::1 are the trusted proxies).
    let client = xff
        .split(',')
        .rev()
        .filter_map(|h| h.trim().parse::<IpAddr>().ok())
        .map(crate::guard::ipset::canonical)
        .find(|ip| !ip.is_loopback())
        .ok_or("managed listener: X-Forwarded-For names no non-loopback client")?;
    let clean = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    Ok(Ingress {
        client,
        login: clean(header("tailscale-user-login")),
        name: clean(header("tailscale-user-name")),
        funnel,
    })
}

/// Whether `login` may come in: `allowed` empty means every verified tailnet user;
/// otherwise a case-insensitive match.
pub fn user_allowed(allowed: &[String], login: &str) -> bool {
    allowed.is_empty() || allowed.iter().any(|a| a.eq_ignore_ascii_case(login))
}

#[cfg(test)]
mod tests;
