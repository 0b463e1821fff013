//! Tunnels from `~/.ssh/config` (`tunnels: [{ name, sshHost: "openclaw-gateway" }]`): the
//! settings ssh itself resolves for a `Host` block (`ssh -G <host>`), read purely here. The
//! block's `LocalForward` is the tunnel's forward (ssh applies it; we add no second `-L`);
//! our safety options still win on the command line, and where they differ from the block's
//! they are listed so `tunnel status` can say what we override and why.

use std::collections::BTreeMap;

/// What `ssh -G <host>` says about a host (keys lower-cased by ssh).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshG {
    /// `hostname`.
    pub hostname: String,
    /// `user`.
    pub user: Option<String>,
    /// `port`.
    pub port: Option<u16>,
    /// `localforward` entries: (listen port, target host, target port).
    pub local_forwards: Vec<(u16, String, u16)>,
    /// Every other `key value` line (first value wins, as in ssh).
    pub other: BTreeMap<String, String>,
}

/// Parses `ssh -G` output.
pub fn parse_ssh_g(out: &str) -> SshG {
    let mut g = SshG::default();
    for line in out.lines() {
        let Some((k, v)) = line.trim().split_once(' ') else {
            continue;
        };
        let v = v.trim();
        match k {
            "hostname" => g.hostname = v.to_string(),
            "user" => g.user = Some(v.to_string()),
            "port" => g.port = v.parse().ok(),
            "localforward" => {
                if let Some(f) = parse_forward(v) {
                    g.local_forwards.push(f);
                }
            }
            _ => {
                g.other
                    .entry(k.to_string())
                    .or_insert_with(|| v.to_string());
            }
        }
    }
    g
}

/// `[bind:]port [host]:hostport` (ssh -G's spelling, brackets optional).
fn parse_forward(v: &str) -> Option<(u16, String, u16)> {
    let (listen, target) = v.split_once(' ')?;
    let port = listen
        .rsplit(':')
        .next()?
        .trim_matches(['[', ']'])
        .parse()
        .ok()?;
    let (host, tport) = target.trim().rsplit_once(':')?;
    let host = host.trim_matches(['[', ']']).to_string();
    Some((port, host, tport.parse().ok()?))
}

/// Our options that differ from the block's, as `Key block→ours (why)` lines.
pub fn overrides(g: &SshG, ours: &BTreeMap<String, String>) -> Vec<String> {
    let why = |k: &str| match k {
        "serveraliveinterval" | "serveralivecountmax" => {
            "a dead link is noticed in under a minute, then the tunnel restarts"
        }
        "exitonforwardfailure" => "a forward that cannot bind fails the tunnel instead of hiding",
        "batchmode" => "never wait for a password prompt nobody will answer",
        "stricthostkeychecking" => "never accept an unknown host key silently",
        "connecttimeout" => "an unreachable host is retried instead of hanging",
        _ => "set by this tunnel's sshOptions",
    };
    ours.iter()
        .filter_map(|(k, v)| {
            let lk = k.to_ascii_lowercase();
            let theirs = g.other.get(&lk)?;
            (!theirs.eq_ignore_ascii_case(v)).then(|| format!("{k} {theirs}→{v} ({})", why(&lk)))
        })
        .collect()
}

/// Host aliases in an ssh config file (`Host` lines; patterns with `*`, `?` or `!` skipped).
pub fn host_aliases(config: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in config.lines() {
        let l = line.trim();
        let Some(rest) = l
            .strip_prefix("Host ")
            .or_else(|| l.strip_prefix("host "))
            .or_else(|| l.strip_prefix("Host\t"))
        else {
            continue;
        };
        for h in rest.split_whitespace() {
            if !h.contains(['*', '?', '!']) && !out.iter().any(|o| o == h) {
                out.push(h.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: &str = "user alice\nhostname 127.0.0.1\nport 2222\nclearallforwardings no\n\
        localforward 18789 [localhost]:18789\nlocalforward [127.0.0.1]:19000 [127.0.0.1]:22\n\
        serveraliveinterval 60\nserveralivecountmax 3\nbatchmode no\n";

    #[test]
    fn ssh_g_output_is_read_like_ssh_reads_it() {
        let g = parse_ssh_g(G);
        assert_eq!(
            (g.hostname.as_str(), g.user.as_deref(), g.port),
            ("127.0.0.1", Some("alice"), Some(2222))
        );
        assert_eq!(
            g.local_forwards,
            vec![
                (18789, "localhost".into(), 18789),
                (19000, "127.0.0.1".into(), 22)
            ]
        );
        let ours = crate::config::tunnels::default_options();
        let o = overrides(&g, &ours);
        assert!(
            o.iter().any(|l| l.starts_with("ServerAliveInterval 60→15")),
            "{o:?}"
        );
        assert!(o.iter().any(|l| l.starts_with("BatchMode no→yes")), "{o:?}");
        assert!(
            !o.iter().any(|l| l.starts_with("ServerAliveCountMax")),
            "same value: not an override"
        );
    }

    #[test]
    fn host_aliases_skip_patterns() {
        let cfg = "Host openclaw-gateway gw2\n  HostName x\nHost *\n  User y\nHost !bad ok-*\nhost lower\n";
        assert_eq!(host_aliases(cfg), ["openclaw-gateway", "gw2", "lower"]);
    }
}
