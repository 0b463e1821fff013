//! `gateway.bind` / `--bind`: the bind mode turned into listen addresses (PROTOCOL §6 "Bind
//! modes"), and the machine facts that decision needs ([`HostInfo`], fakeable in tests).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use super::load::ConfigError;
use super::resolve::{invalid, Inputs, Source};
use super::schema::FileConfig;

/// `gateway.bind` / `--bind`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindPlan {
    /// `loopback` | `lan` | `tailnet` | `custom` | `auto`.
    pub mode: &'static str,
    /// The mode's address, for `custom` (and the tailnet address found, for `tailnet`).
    pub host: Option<IpAddr>,
    /// Whether any listener is reachable from another machine.
    pub exposed: bool,
    /// Said once at start-up (tailnet without a tailnet address).
    pub warning: Option<String>,
    /// Where the mode came from.
    pub source: Source,
}

/// What start-up needs to know about this machine (fakeable in tests).
pub struct HostInfo {
    /// Addresses on local interfaces.
    pub addrs: Box<dyn Fn() -> Vec<IpAddr>>,
    /// Running inside a container (for `bind: "auto"`).
    pub in_container: Box<dyn Fn() -> bool>,
}

/// The plan, the listen addresses, and those of them that may be skipped when the address
/// family is unavailable.
pub(super) type Listen = (BindPlan, Vec<SocketAddr>, Vec<SocketAddr>);

/// Builds the [`Listen`] of each mode for one port and one source of the mode.
struct Listeners {
    port: u16,
    source: Source,
}

// === impl HostInfo ===

impl HostInfo {
    /// This machine: interface addresses from `getifaddrs`, container markers on disk.
    pub fn real() -> Self {
        Self {
            addrs: Box::new(|| {
                nix::ifaddrs::getifaddrs()
                    .map(|it| {
                        it.filter_map(|i| {
                            let a = i.address?;
                            a.as_sockaddr_in()
                                .map(|v| IpAddr::V4(v.ip()))
                                .or_else(|| a.as_sockaddr_in6().map(|v| IpAddr::V6(v.ip())))
                        })
                        .collect()
                    })
                    .unwrap_or_default()
            }),
            in_container: Box::new(|| {
                Path::new("/.dockerenv").exists()
                    || Path::new("/run/.containerenv").exists()
                    || std::env::var_os("container").is_some()
            }),
        }
    }
}

impl fmt::Debug for HostInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HostInfo")
    }
}

// === impl Listeners ===

impl Listeners {
    fn v4(&self, ip: Ipv4Addr) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(ip), self.port)
    }

    fn v6(&self, ip: Ipv6Addr) -> SocketAddr {
        SocketAddr::new(IpAddr::V6(ip), self.port)
    }

    fn plan(&self, mode: &'static str, host: Option<IpAddr>, exposed: bool) -> BindPlan {
        BindPlan {
            mode,
            host,
            exposed,
            warning: None,
            source: self.source.clone(),
        }
    }

    /// 127.0.0.1 and [::1] (the latter optional).
    fn loopback(&self, mode: &'static str) -> Listen {
        (
            self.plan(mode, None, false),
            vec![self.v4(Ipv4Addr::LOCALHOST), self.v6(Ipv6Addr::LOCALHOST)],
            vec![self.v6(Ipv6Addr::LOCALHOST)],
        )
    }

    /// Every interface: 0.0.0.0 and [::] (the latter optional).
    fn lan(&self, mode: &'static str) -> Listen {
        (
            self.plan(mode, None, true),
            vec![
                self.v4(Ipv4Addr::UNSPECIFIED),
                self.v6(Ipv6Addr::UNSPECIFIED),
            ],
            vec![self.v6(Ipv6Addr::UNSPECIFIED)],
        )
    }

    /// The first Tailscale address (100.64.0.0/10) among `addrs` plus loopback; loopback only,
    /// with a warning, when there is none.
    fn tailnet(&self, addrs: Vec<IpAddr>) -> Listen {
        let tailnet: ipnet::Ipv4Net = "100.64.0.0/10".parse().expect("constant CIDR");
        let found = addrs.into_iter().find_map(|a| match a {
            IpAddr::V4(v) if tailnet.contains(&v) => Some(v),
            _ => None,
        });
        match found {
            Some(ip) => (
                self.plan("tailnet", Some(IpAddr::V4(ip)), true),
                vec![
                    self.v4(ip),
                    self.v4(Ipv4Addr::LOCALHOST),
                    self.v6(Ipv6Addr::LOCALHOST),
                ],
                vec![self.v6(Ipv6Addr::LOCALHOST)],
            ),
            None => {
                let mut listen = self.loopback("tailnet");
                listen.0.warning = Some(
                    "bind mode \"tailnet\": no Tailscale address (100.64.0.0/10) on any \
                     interface; listening on loopback only (is tailscaled up?)"
                        .into(),
                );
                listen
            }
        }
    }

    /// One address; a specific non-loopback one also keeps the loopback listener local
    /// clients expect.
    fn custom(&self, ip: IpAddr) -> Listen {
        let at = SocketAddr::new(ip, self.port);
        if ip.is_unspecified() {
            (self.plan("custom", Some(ip), true), vec![at], Vec::new())
        } else if ip.is_loopback() {
            (self.plan("custom", Some(ip), false), vec![at], Vec::new())
        } else {
            (
                self.plan("custom", Some(ip), true),
                vec![at, self.v4(Ipv4Addr::LOCALHOST)],
                Vec::new(),
            )
        }
    }
}

/// Turns the bind mode into listen addresses (PROTOCOL §6 "Bind modes").
pub(super) fn resolve_bind(
    inputs: &Inputs,
    file: &FileConfig,
    cfg: &Path,
    port: u16,
    host: &HostInfo,
) -> Result<Listen, ConfigError> {
    let (bind, source) = bind_mode(inputs, file, cfg);
    // `--bind 10.0.0.5` is `custom` with that address.
    let literal = bind.parse::<IpAddr>().ok();
    if literal.is_none() && bind != "custom" && file.gateway.custom_bind_host.is_some() {
        return Err(invalid(
            cfg,
            "gateway.customBindHost",
            format!("is set, but the bind mode is {bind:?} ({source}); use bind \"custom\" or remove it"),
        ));
    }
    let at = Listeners { port, source };
    Ok(match bind.as_str() {
        "loopback" => at.loopback("loopback"),
        "lan" => at.lan("lan"),
        "auto" if (host.in_container)() => at.lan("auto"),
        "auto" => at.loopback("auto"),
        "tailnet" => at.tailnet((host.addrs)()),
        _ if literal.is_some() || bind == "custom" => {
            at.custom(custom_host(literal, file, cfg, &at.source)?)
        }
        other => {
            return Err(ConfigError::Refused(format!(
                "bind mode {other:?} ({}) is not one of loopback, lan, tailnet, custom, \
                 auto, or an IP address",
                at.source
            )))
        }
    })
}

/// The bind mode (trimmed) and where it came from: `--bind`, then `gateway.bind`, then
/// `loopback`.
fn bind_mode(inputs: &Inputs, file: &FileConfig, cfg: &Path) -> (String, Source) {
    match (&inputs.bind, &file.gateway.bind) {
        (Some(b), _) => (b.trim().to_string(), Source::Flag("--bind")),
        (None, Some(b)) => (
            b.trim().to_string(),
            Source::File(cfg.to_path_buf(), "gateway.bind"),
        ),
        _ => ("loopback".to_string(), Source::Default),
    }
}

/// The address of a `custom` bind: the literal `--bind` address, else
/// `gateway.customBindHost`.
fn custom_host(
    literal: Option<IpAddr>,
    file: &FileConfig,
    cfg: &Path,
    source: &Source,
) -> Result<IpAddr, ConfigError> {
    if let Some(ip) = literal {
        return Ok(ip);
    }
    let Some(h) = file.gateway.custom_bind_host.as_deref() else {
        return Err(ConfigError::Refused(format!(
            "bind mode \"custom\" ({source}) needs an address: set gateway.customBindHost \
             in {} or pass --bind <IP>",
            cfg.display()
        )));
    };
    h.trim()
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
        .map_err(|_| {
            invalid(
                cfg,
                "gateway.customBindHost",
                format!("{h:?} is not an IP address (e.g. \"192.168.1.10\" or \"::1\")"),
            )
        })
}
