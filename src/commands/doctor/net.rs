//! Doctor's pure network checks: LISTEN sockets from `/proc/net/tcp*`, the gateway port
//! (`listening`), the CDP range (`cdp`) and firewall listings that mention the port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::report::Check;

/// A listening TCP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    /// Local address (`0.0.0.0`/`::` = every interface).
    pub addr: IpAddr,
    /// Local port.
    pub port: u16,
}

/// The LISTEN sockets (state `0A`) in the text of `/proc/net/tcp` or `/proc/net/tcp6`.
/// Addresses are the kernel's words in host byte order; IPv4-mapped IPv6 addresses come back
/// as IPv4. Lines that do not parse are skipped.
pub fn parse_proc_net_tcp(text: &str) -> Vec<Listen> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let _slot = f.next()?;
            let local = f.next()?;
            let _remote = f.next()?;
            if f.next()? != "0A" {
                return None;
            }
            let (a, p) = local.split_once(':')?;
            Some(Listen {
                addr: hex_addr(a)?,
                port: u16::from_str_radix(p, 16).ok()?,
            })
        })
        .collect()
}

fn hex_addr(h: &str) -> Option<IpAddr> {
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::to_ne_bytes);
    match h.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(h)?))),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(h.get(i * 8..i * 8 + 8)?)?);
            }
            Some(Ipv6Addr::from(b).to_canonical())
        }
        _ => None,
    }
}

/// The distinct addresses listening on `port`, loopback first.
pub fn addrs_on(listens: &[Listen], port: u16) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = listens
        .iter()
        .filter(|l| l.port == port)
        .map(|l| l.addr)
        .collect();
    v.sort_by_key(|a| (!a.is_loopback(), a.is_ipv6(), *a));
    v.dedup();
    v
}

/// `127.0.0.1`, `[::1]`, `0.0.0.0 (all interfaces)`.
pub fn show_addr(a: &IpAddr) -> String {
    let s = match a {
        IpAddr::V4(v) => v.to_string(),
        IpAddr::V6(v) => format!("[{v}]"),
    };
    if a.is_unspecified() {
        format!("{s} (all interfaces)")
    } else {
        s
    }
}

fn show_addrs(addrs: &[IpAddr]) -> String {
    addrs.iter().map(show_addr).collect::<Vec<_>>().join(", ")
}

/// Check 1: something listens on the gateway port; anything beyond loopback without TLS
/// is a warning.
pub fn listening(port: u16, addrs: &[IpAddr], tls: bool) -> Check {
    if addrs.is_empty() {
        return Check::fail(
            "listening",
            format!("nothing listens on port {port}"),
            "start the gateway: openclaw gateway (or check gateway.port / OPENCLAW_GATEWAY_PORT)",
        );
    }
    let exposed: Vec<IpAddr> = addrs.iter().copied().filter(|a| !a.is_loopback()).collect();
    let found = format!("port {port} on {}", show_addrs(addrs));
    match (exposed.is_empty(), tls) {
        (true, _) => Check::ok("listening", format!("{found} (loopback only)")),
        (false, true) => Check::ok("listening", format!("{found} (TLS on)")),
        (false, false) => Check::warn(
            "listening",
            if exposed.len() == addrs.len() {
                format!("{found}: reachable beyond loopback without TLS")
            } else {
                format!(
                    "{found}: {} is reachable beyond loopback without TLS",
                    show_addrs(&exposed)
                )
            },
            "bind loopback (gateway.bind: \"loopback\") and come in over an SSH tunnel or Tailscale serve, or set gateway.tls.enabled: true",
        ),
    }
}

/// Check 9: the CDP ports `first..=last` listen on loopback only.
pub fn cdp(first: u16, last: u16, listens: &[Listen]) -> Check {
    let mut hits: Vec<Listen> = listens
        .iter()
        .copied()
        .filter(|l| (first..=last).contains(&l.port))
        .collect();
    hits.sort_by_key(|l| (l.port, l.addr));
    hits.dedup();
    let show = |ls: &[&Listen]| {
        ls.iter()
            .map(|l| format!("{} on {}", l.port, show_addr(&l.addr)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let exposed: Vec<&Listen> = hits.iter().filter(|l| !l.addr.is_loopback()).collect();
    if !exposed.is_empty() {
        return Check::fail(
            "cdp",
            format!(
                "CDP port(s) reachable beyond loopback: {} (CDP is full control of the browser)",
                show(&exposed)
            ),
            format!("start the browser with --remote-debugging-address=127.0.0.1 (or stop it); never expose ports {first}–{last}"),
        );
    }
    if hits.is_empty() {
        Check::ok("cdp", format!("nothing listens on {first}–{last}"))
    } else {
        let all: Vec<&Listen> = hits.iter().collect();
        Check::ok("cdp", format!("{} (loopback only)", show(&all)))
    }
}

// === firewall ===

/// The lines of a firewall listing that mention `port` as a number of its own (not a part
/// of a longer number): `--dport 18789`, `18789/tcp`, `dport { 80, 18789 }`.
pub fn rules_mentioning(text: &str, port: u16) -> Vec<String> {
    let p = port.to_string();
    text.lines()
        .map(str::trim)
        .filter(|l| {
            l.match_indices(&p).any(|(i, _)| {
                let before = l[..i].chars().next_back();
                let after = l[i + p.len()..].chars().next();
                !before.is_some_and(|c| c.is_ascii_alphanumeric())
                    && !after.is_some_and(|c| c.is_ascii_digit())
            })
        })
        .map(str::to_string)
        .collect()
}

/// Check 6: `(tool, Ok(listing) | Err(why it was skipped))` for iptables, nft, ufw.
pub fn firewall(port: u16, sources: &[(&str, Result<String, String>)]) -> Check {
    let mut read = Vec::new();
    let mut skipped = Vec::new();
    let mut hits = Vec::new();
    for (tool, r) in sources {
        match r {
            Ok(text) => {
                read.push(*tool);
                hits.extend(
                    rules_mentioning(text, port)
                        .into_iter()
                        .map(|l| format!("{tool}: {l}")),
                );
            }
            Err(why) => skipped.push(format!("{tool}: {why}")),
        }
    }
    if read.is_empty() {
        return Check::skip(
            "firewall",
            format!("no firewall listing readable ({})", skipped.join("; ")),
        );
    }
    // tools that exist but could not be read (permissions) are worth a note
    let unread: Vec<&String> = skipped
        .iter()
        .filter(|s| !s.ends_with(": not installed"))
        .collect();
    let note = match unread.is_empty() {
        true => String::new(),
        false => format!(
            "; not readable: {}",
            unread
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    if hits.is_empty() {
        return Check::ok(
            "firewall",
            format!("no {} rules mention port {port}{note}", read.join("/")),
        );
    }
    let n = hits.len();
    hits.truncate(5);
    Check::warn(
        "firewall",
        format!(
            "{n} rule(s) mention port {port} (first {} below){note}",
            hits.len()
        ),
        "make sure these rules admit only the hosts you mean; the gateway is meant to be reached over loopback, SSH or Tailscale",
    )
    .with_lines(hits)
}
