//! `tunnels: [...]`: SSH tunnels kept up by the gateway or `openclaw tunnel run`.
//! Parsed with the rest of the file (unknown keys rejected), then validated here so every
//! error names `tunnels[i].key`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::load::ConfigError;

/// One tunnel as written in the file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TunnelConfig {
    /// Unique name (letters, digits, `-`, `_`).
    pub name: String,
    /// `local` (`ssh -L`: reach a remote gateway) or `remote` (`ssh -R`: publish this one).
    #[serde(default)]
    pub direction: Option<String>,
    /// `user@host[:port]` or an `~/.ssh/config` alias.
    #[serde(default)]
    pub ssh_target: String,
    /// A `Host` block of `~/.ssh/config` that has a `LocalForward`: its resolved settings
    /// (`ssh -G`) give the target and the forward (instead of sshTarget and the ports).
    #[serde(default)]
    pub ssh_host: Option<String>,
    /// Port on this machine.
    #[serde(default)]
    pub local_port: u16,
    /// Host on the far side (default 127.0.0.1).
    #[serde(default)]
    pub remote_host: Option<String>,
    /// Port on the far side.
    #[serde(default)]
    pub remote_port: u16,
    /// `ssh -i`.
    #[serde(default)]
    pub identity_file: Option<String>,
    /// Pinned known_hosts file (`UserKnownHostsFile`).
    #[serde(default)]
    pub known_hosts_file: Option<String>,
    /// Extra `-o Key=Value` options (override the defaults).
    #[serde(default)]
    pub ssh_options: Option<BTreeMap<String, String>>,
    /// Active health check.
    #[serde(default)]
    pub health_check: Option<HealthCheckConfig>,
    /// Restart backoff.
    #[serde(default)]
    pub backoff: Option<BackoffConfig>,
    /// A failure within this long after the first start is a configuration problem.
    #[serde(default)]
    pub gate_time_ms: Option<u64>,
    /// The far gateway speaks TLS: the `gateway` health probe goes through `wss`.
    #[serde(default)]
    pub tls: Option<bool>,
    /// Pin of the far gateway's certificate for the probe (SHA-256: hex, AA:BB pairs or
    /// `sha256:`); without it the probe does not check the certificate (it sends no secret).
    #[serde(default)]
    pub tls_fingerprint: Option<String>,
}

/// `healthCheck`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheckConfig {
    /// `gateway` (default: WebSocket upgrade and the `connect.challenge` from the far gateway)
    /// or `tcp` (a TCP connect through the forward).
    pub kind: Option<String>,
    /// Between checks (default 5000).
    pub interval_ms: Option<u64>,
    /// Per check (default 2500).
    pub timeout_ms: Option<u64>,
    /// Consecutive failures before ssh is restarted (default 2).
    pub failures: Option<u32>,
}

/// `backoff`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackoffConfig {
    /// First delay (default 250).
    pub initial_ms: Option<u64>,
    /// Cap (default 60000).
    pub max_ms: Option<u64>,
    /// Growth factor (default 2).
    pub multiplier: Option<f64>,
    /// Fraction in [0, 1] taken off at random (default 0.2).
    pub jitter: Option<f64>,
    /// Up this long resets the backoff (default 5000).
    pub reset_after_ms: Option<u64>,
}

/// Direction of the forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `-L localPort:remoteHost:remotePort`.
    Local,
    /// `-R remoteHost:remotePort:127.0.0.1:localPort`.
    Remote,
}

/// Probe kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// TCP connect through the forward.
    Tcp,
    /// WebSocket upgrade and `connect.challenge`.
    Gateway,
}

/// A validated tunnel with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelSpec {
    /// Name.
    pub name: String,
    /// Direction.
    pub direction: Direction,
    /// `user@host` or alias (port split off).
    pub target: String,
    /// SSH port from `user@host:port`.
    pub ssh_port: Option<u16>,
    /// Local port.
    pub local_port: u16,
    /// Far host.
    pub remote_host: String,
    /// Far port.
    pub remote_port: u16,
    /// Identity file.
    pub identity_file: Option<String>,
    /// Known hosts file.
    pub known_hosts_file: Option<String>,
    /// `-o` options after defaults and overrides.
    pub options: BTreeMap<String, String>,
    /// Probe kind; `None` for remote tunnels (nothing to probe locally).
    pub probe: Option<ProbeKind>,
    /// Probe interval.
    pub probe_interval: Duration,
    /// Probe timeout.
    pub probe_timeout: Duration,
    /// Failures before restart.
    pub probe_failures: u32,
    /// Backoff first delay.
    pub backoff_initial: Duration,
    /// Backoff cap.
    pub backoff_max: Duration,
    /// Backoff factor.
    pub backoff_multiplier: f64,
    /// Backoff jitter.
    pub backoff_jitter: f64,
    /// Stable period that resets the backoff.
    pub reset_after: Duration,
    /// Gate time for the first start.
    pub gate_time: Duration,
    /// Probe through TLS: `Some(pin)` (lowercase hex, or `None` for no certificate check).
    pub probe_tls: Option<Option<String>>,
    /// From an `~/.ssh/config` block (`sshHost`): ssh applies the block's `LocalForward`, so
    /// no `-L` is added.
    pub forward_from_config: bool,
    /// The block's settings our options override, with why (for `tunnel status`).
    pub overrides: Vec<String>,
}

/// `tls` / `tlsFingerprint`: only for the `gateway` probe; the pin must parse.
fn probe_tls(
    t: &TunnelConfig,
    probe: Option<ProbeKind>,
    at: &str,
    file: &Path,
) -> Result<Option<Option<String>>, ConfigError> {
    let pin = match &t.tls_fingerprint {
        Some(fp) => Some(
            crate::tls::fingerprint::normalize(fp)
                .map_err(|e| err(file, format!("{at}.tlsFingerprint"), e.to_string()))?,
        ),
        None => None,
    };
    let on = t.tls.unwrap_or(false) || pin.is_some();
    match (on, probe) {
        (false, _) => Ok(None),
        (true, Some(ProbeKind::Gateway)) => Ok(Some(pin)),
        (true, _) => Err(err(
            file,
            format!("{at}.tls"),
            "applies to the gateway health probe of a local tunnel (healthCheck.kind \"gateway\")",
        )),
    }
}

/// The ssh options every tunnel gets unless overridden.
pub fn default_options() -> BTreeMap<String, String> {
    [
        ("ExitOnForwardFailure", "yes"),
        ("BatchMode", "yes"),
        ("ServerAliveInterval", "15"),
        ("ServerAliveCountMax", "3"),
        ("ConnectTimeout", "10"),
        ("StrictHostKeyChecking", "yes"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn err(file: &Path, path: String, msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_path_buf(),
        path,
        msg: msg.into(),
    }
}

fn ok_word(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `ssh -G <host>`: the settings ssh resolves for an `~/.ssh/config` alias.
pub fn ssh_g(host: &str) -> Result<String, String> {
    let out = std::process::Command::new(crate::tunnel::ssh_program())
        .args(["-G", "--", host])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ssh -G {host}`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`ssh -G {host}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Validates every tunnel and applies defaults (`sshHost` tunnels ask `ssh -G`).
pub fn validate(tunnels: &[TunnelConfig], file: &Path) -> Result<Vec<TunnelSpec>, ConfigError> {
    validate_with(tunnels, file, &ssh_g)
}

/// [`validate`] with the `ssh -G` runner passed in.
pub fn validate_with(
    tunnels: &[TunnelConfig],
    file: &Path,
    ssh_g: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Vec<TunnelSpec>, ConfigError> {
    let mut out: Vec<TunnelSpec> = Vec::new();
    for (i, t) in tunnels.iter().enumerate() {
        let at = format!("tunnels[{i}]");
        let resolved = match &t.ssh_host {
            Some(h) => Some(from_ssh_config(t, h, &at, file, ssh_g)?),
            None => None,
        };
        let mut spec = validate_one(resolved.as_ref().map_or(t, |r| &r.0), &at, file)?;
        if let Some((_, g)) = &resolved {
            spec.forward_from_config = true;
            spec.overrides = super::ssh_config::overrides(g, &spec.options);
        }
        if out.iter().any(|o| o.name == spec.name) {
            return Err(err(
                file,
                format!("tunnels[{i}].name"),
                format!("{:?} is used twice; names must be unique", spec.name),
            ));
        }
        if let Some(o) = out.iter().find(|o| {
            o.direction == Direction::Local
                && spec.direction == Direction::Local
                && o.local_port == spec.local_port
        }) {
            return Err(err(
                file,
                format!("tunnels[{i}].localPort"),
                format!("{} is already used by tunnel {:?}", spec.local_port, o.name),
            ));
        }
        out.push(spec);
    }
    Ok(out)
}

/// A `sshHost` tunnel as if written out: target = the alias (ssh reads its block), ports
/// from the block's first `LocalForward`; and what `ssh -G` said.
fn from_ssh_config(
    t: &TunnelConfig,
    host: &str,
    at: &str,
    file: &Path,
    ssh_g: &dyn Fn(&str) -> Result<String, String>,
) -> Result<(TunnelConfig, super::ssh_config::SshG), ConfigError> {
    let key = format!("{at}.sshHost");
    if !t.ssh_target.is_empty() {
        return Err(err(file, key, "use either sshHost or sshTarget, not both"));
    }
    if t.direction.as_deref().is_some_and(|d| d != "local") {
        return Err(err(
            file,
            key,
            "takes the block's LocalForward: direction must be \"local\"",
        ));
    }
    if host.is_empty() || host.starts_with('-') || host.chars().any(char::is_whitespace) {
        return Err(err(file, key, "must be a Host alias from ~/.ssh/config"));
    }
    let g = super::ssh_config::parse_ssh_g(&ssh_g(host).map_err(|e| err(file, key.clone(), e))?);
    let Some((local, remote_host, remote)) = g.local_forwards.first().cloned() else {
        return Err(err(
            file,
            key,
            format!(
                "the Host block {host:?} has no LocalForward; add `LocalForward 18789 \
                 localhost:18789` to it, or use sshTarget, localPort and remotePort"
            ),
        ));
    };
    for (name, given, from_block) in [
        ("localPort", t.local_port, local),
        ("remotePort", t.remote_port, remote),
    ] {
        if given != 0 && given != from_block {
            return Err(err(
                file,
                format!("{at}.{name}"),
                format!("the Host block {host:?} forwards {local} → {remote_host}:{remote}; remove {name} (it comes from the block)"),
            ));
        }
    }
    let mut c = t.clone();
    c.ssh_target = host.to_string();
    c.local_port = local;
    c.remote_port = remote;
    c.remote_host = Some(remote_host);
    Ok((c, g))
}

/// Validates one tunnel (`at` is its key path, `tunnels[i]`) and applies defaults.
fn validate_one(t: &TunnelConfig, at: &str, file: &Path) -> Result<TunnelSpec, ConfigError> {
    if !ok_word(&t.name) {
        return Err(err(
            file,
            format!("{at}.name"),
            "use letters, digits, '-' and '_'",
        ));
    }
    let direction = parse_direction(t.direction.as_deref(), at, file)?;
    if t.ssh_target.is_empty() {
        return Err(err(
            file,
            format!("{at}.sshTarget"),
            "is required (user@host[:port] or an ~/.ssh/config alias), or use sshHost",
        ));
    }
    let (target, ssh_port) =
        split_target(&t.ssh_target).map_err(|m| err(file, format!("{at}.sshTarget"), m))?;
    check_ports(t, at, file)?;
    let remote_host = parse_remote_host(t.remote_host.as_deref(), at, file)?;
    let options = merge_options(t.ssh_options.clone().unwrap_or_default(), at, file)?;
    let h = t.health_check.clone().unwrap_or_default();
    let probe = probe_kind(direction, h.kind.as_deref(), at, file)?;
    let ms = |v: Option<u64>, d: u64, min: u64, key: &str| millis(v, d, min, at, key, file);
    let b = t.backoff.clone().unwrap_or_default();
    let spec = TunnelSpec {
        name: t.name.clone(),
        direction,
        target,
        ssh_port,
        local_port: t.local_port,
        remote_host,
        remote_port: t.remote_port,
        identity_file: t.identity_file.clone(),
        known_hosts_file: t.known_hosts_file.clone(),
        options,
        probe,
        probe_interval: ms(h.interval_ms, 5_000, 50, "healthCheck.intervalMs")?,
        probe_timeout: ms(h.timeout_ms, 2_500, 10, "healthCheck.timeoutMs")?,
        probe_failures: h.failures.unwrap_or(2).max(1),
        backoff_initial: ms(b.initial_ms, 250, 0, "backoff.initialMs")?,
        backoff_max: ms(b.max_ms, 60_000, 1, "backoff.maxMs")?,
        backoff_multiplier: b.multiplier.unwrap_or(2.0),
        backoff_jitter: b.jitter.unwrap_or(0.2),
        reset_after: ms(b.reset_after_ms, 5_000, 0, "backoff.resetAfterMs")?,
        gate_time: ms(t.gate_time_ms, 2_000, 0, "gateTimeMs")?,
        probe_tls: probe_tls(t, probe, at, file)?,
        forward_from_config: false,
        overrides: Vec::new(),
    };
    check_backoff(&spec, at, file)?;
    Ok(spec)
}

/// `direction`: `local` (the default) or `remote`.
fn parse_direction(
    direction: Option<&str>,
    at: &str,
    file: &Path,
) -> Result<Direction, ConfigError> {
    match direction.unwrap_or("local") {
        "local" => Ok(Direction::Local),
        "remote" => Ok(Direction::Remote),
        other => Err(err(
            file,
            format!("{at}.direction"),
            format!("{other:?} is not \"local\" or \"remote\""),
        )),
    }
}

/// `localPort` and `remotePort` must not be 0.
fn check_ports(t: &TunnelConfig, at: &str, file: &Path) -> Result<(), ConfigError> {
    for (key, port) in [("localPort", t.local_port), ("remotePort", t.remote_port)] {
        if port == 0 {
            return Err(err(file, format!("{at}.{key}"), "must be 1-65535"));
        }
    }
    Ok(())
}

/// `remoteHost` (default 127.0.0.1): a host name or address ssh cannot read as an option.
fn parse_remote_host(host: Option<&str>, at: &str, file: &Path) -> Result<String, ConfigError> {
    let remote_host = host.map_or_else(|| "127.0.0.1".to_string(), str::to_string);
    if remote_host.is_empty()
        || remote_host.chars().any(|c| c.is_whitespace() || c == '/')
        || remote_host.starts_with('-')
    {
        return Err(err(
            file,
            format!("{at}.remoteHost"),
            "must be a host name or address",
        ));
    }
    Ok(remote_host)
}

/// [`default_options`] with the tunnel's `sshOptions` checked and laid over them (keys
/// compared case-insensitively).
fn merge_options(
    overrides: BTreeMap<String, String>,
    at: &str,
    file: &Path,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut options = default_options();
    for (k, v) in overrides {
        check_option(&k, &v, format!("{at}.sshOptions.{k}"), file)?;
        options.retain(|ok, _| !ok.eq_ignore_ascii_case(&k));
        options.insert(k, v);
    }
    Ok(options)
}

/// One `sshOptions` entry: a plain option name and one line of value, never one that turns
/// host-key checking off or runs a command.
fn check_option(k: &str, v: &str, path: String, file: &Path) -> Result<(), ConfigError> {
    if !k.chars().all(|c| c.is_ascii_alphanumeric()) || v.contains(['\n', '\r']) || v.is_empty() {
        return Err(err(
            file,
            path,
            "keys are ssh_config option names, values one non-empty line",
        ));
    }
    let lk = k.to_ascii_lowercase();
    if lk == "stricthostkeychecking" && !v.eq_ignore_ascii_case("yes") {
        return Err(err(
            file,
            path,
            "host-key checking stays on; pin the host key with knownHostsFile instead",
        ));
    }
    if lk == "userknownhostsfile" && v.trim() == "/dev/null" {
        return Err(err(
            file,
            path,
            "a /dev/null known_hosts turns host-key checking off; use knownHostsFile",
        ));
    }
    if matches!(
        lk.as_str(),
        "localcommand" | "permitlocalcommand" | "proxycommand" | "remotecommand"
    ) {
        return Err(err(
            file,
            path,
            "command options are not allowed in a tunnel (use an ~/.ssh/config alias)",
        ));
    }
    Ok(())
}

/// `healthCheck.kind` (default `gateway`); remote tunnels have nothing to probe locally, but
/// a bad kind is still refused.
fn probe_kind(
    direction: Direction,
    kind: Option<&str>,
    at: &str,
    file: &Path,
) -> Result<Option<ProbeKind>, ConfigError> {
    let probe = match (direction, kind) {
        (Direction::Remote, None) => None,
        (_, None | Some("gateway")) => Some(ProbeKind::Gateway),
        (_, Some("tcp")) => Some(ProbeKind::Tcp),
        (_, Some(other)) => {
            return Err(err(
                file,
                format!("{at}.healthCheck.kind"),
                format!("{other:?} is not \"tcp\" or \"gateway\""),
            ))
        }
    };
    Ok(if direction == Direction::Remote {
        None
    } else {
        probe
    })
}

/// A duration in ms at `{at}.{key}`: `v`, or `default`; at least `min`.
fn millis(
    v: Option<u64>,
    default: u64,
    min: u64,
    at: &str,
    key: &str,
    file: &Path,
) -> Result<Duration, ConfigError> {
    let v = v.unwrap_or(default);
    if v < min {
        return Err(err(
            file,
            format!("{at}.{key}"),
            format!("must be at least {min} ms"),
        ));
    }
    Ok(Duration::from_millis(v))
}

/// Backoff factor, jitter and the initial delay against the cap.
fn check_backoff(spec: &TunnelSpec, at: &str, file: &Path) -> Result<(), ConfigError> {
    if !(1.0..=10.0).contains(&spec.backoff_multiplier) {
        return Err(err(
            file,
            format!("{at}.backoff.multiplier"),
            "must be between 1 and 10",
        ));
    }
    if !(0.0..=1.0).contains(&spec.backoff_jitter) {
        return Err(err(
            file,
            format!("{at}.backoff.jitter"),
            "must be between 0 and 1",
        ));
    }
    if spec.backoff_initial > spec.backoff_max {
        return Err(err(
            file,
            format!("{at}.backoff.initialMs"),
            "must not exceed backoff.maxMs",
        ));
    }
    Ok(())
}

/// Splits `user@host[:port]` / `alias`; refuses anything ssh could read as an option.
pub fn split_target(t: &str) -> Result<(String, Option<u16>), String> {
    if t.is_empty() || t.starts_with('-') || t.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{t:?} is not user@host[:port] or an ~/.ssh/config alias"
        ));
    }
    match t.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
            let p: u16 = port
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{port:?} in {t:?} is not a port"))?;
            Ok((
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                Some(p),
            ))
        }
        _ => Ok((t.to_string(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> TunnelConfig {
        TunnelConfig {
            name: "a".into(),
            ssh_target: "me@host1".into(),
            local_port: 18789,
            remote_port: 18789,
            ..Default::default()
        }
    }

    #[test]
    fn ssh_host_takes_target_and_forward_from_the_block() {
        let g = |host: &str| -> Result<String, String> {
            match host {
                "openclaw-gateway" => Ok("hostname 10.0.0.5\nuser alice\nport 22\n\
                    localforward 18789 [localhost]:18789\nserveraliveinterval 60\n\
                    serveralivecountmax 3\n"
                    .into()),
                "plain" => Ok("hostname 10.0.0.6\n".into()),
                _ => Err(format!("`ssh -G {host}` failed")),
            }
        };
        let t = |v: serde_json::Value| serde_json::from_value::<TunnelConfig>(v).unwrap();
        let run = |c: TunnelConfig| {
            validate_with(&[c], Path::new("cfg.json"), &g)
                .map(|mut v| v.remove(0))
                .map_err(|e| e.to_string())
        };
        let s = run(t(
            serde_json::json!({"name": "gw", "sshHost": "openclaw-gateway"}),
        ))
        .unwrap();
        assert_eq!(
            (
                s.target.as_str(),
                s.local_port,
                s.remote_host.as_str(),
                s.remote_port
            ),
            ("openclaw-gateway", 18789, "localhost", 18789)
        );
        assert!(s.forward_from_config);
        assert!(
            s.overrides
                .iter()
                .any(|o| o.starts_with("ServerAliveInterval 60→15")),
            "{:?}",
            s.overrides
        );
        let argv = crate::tunnel::ssh::argv(&s);
        assert!(
            !argv.iter().any(|a| a == "-L"),
            "no second forward: {argv:?}"
        );
        assert!(
            argv.contains(&"ServerAliveInterval=15".to_string())
                && argv.last().unwrap() == "openclaw-gateway"
        );
        let errors = [
            (
                serde_json::json!({"name": "x", "sshHost": "plain"}),
                "has no LocalForward",
            ),
            (
                serde_json::json!({"name": "x", "sshHost": "openclaw-gateway", "sshTarget": "a@b"}),
                "either sshHost or sshTarget",
            ),
            (
                serde_json::json!({"name": "x", "sshHost": "openclaw-gateway", "localPort": 1234}),
                "tunnels[0].localPort",
            ),
            (
                serde_json::json!({"name": "x", "sshHost": "nope"}),
                "`ssh -G nope` failed",
            ),
            (
                serde_json::json!({"name": "x", "sshHost": "-oProxyCommand=x"}),
                "must be a Host alias",
            ),
            (
                serde_json::json!({"name": "x", "localPort": 1, "remotePort": 2}),
                "tunnels[0].sshTarget`: is required",
            ),
        ];
        for (v, want) in errors {
            let e = run(t(v.clone())).unwrap_err();
            assert!(e.contains(want), "{v}: {e}");
        }
    }

    fn check(t: TunnelConfig) -> Result<TunnelSpec, String> {
        validate(&[t], Path::new("cfg.json"))
            .map(|mut v| v.remove(0))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_target_forms() {
        let s = check(base()).unwrap();
        assert_eq!(
            (s.direction, s.target.as_str(), s.ssh_port),
            (Direction::Local, "me@host1", None)
        );
        assert_eq!(s.probe, Some(ProbeKind::Gateway));
        assert_eq!(s.options["ExitOnForwardFailure"], "yes");
        assert_eq!(s.remote_host, "127.0.0.1");
        assert_eq!(
            split_target("me@h:2222").unwrap(),
            ("me@h".into(), Some(2222))
        );
        assert_eq!(split_target("alias").unwrap(), ("alias".into(), None));
        let mut r = base();
        r.direction = Some("remote".into());
        assert_eq!(check(r).unwrap().probe, None);
    }

    #[test]
    fn error_table() {
        type Mutate = Box<dyn Fn(&mut TunnelConfig)>;
        let cases: Vec<(Mutate, &str)> = vec![
            (Box::new(|t| t.name = "bad name".into()), "tunnels[0].name"),
            (
                Box::new(|t| t.direction = Some("sideways".into())),
                "tunnels[0].direction",
            ),
            (
                Box::new(|t| t.ssh_target = "-oProxyCommand=x".into()),
                "tunnels[0].sshTarget",
            ),
            (
                Box::new(|t| t.ssh_target = "me@h:notaport".into()),
                "tunnels[0].sshTarget",
            ),
            (Box::new(|t| t.local_port = 0), "tunnels[0].localPort"),
            (
                Box::new(|t| {
                    t.ssh_options = Some([("StrictHostKeyChecking".into(), "no".into())].into())
                }),
                "host-key checking stays on",
            ),
            (
                Box::new(|t| {
                    t.ssh_options = Some([("UserKnownHostsFile".into(), "/dev/null".into())].into())
                }),
                "/dev/null",
            ),
            (
                Box::new(|t| {
                    t.ssh_options = Some([("ProxyCommand".into(), "nc %h %p".into())].into())
                }),
                "command options",
            ),
            (
                Box::new(|t| {
                    t.health_check = Some(HealthCheckConfig {
                        kind: Some("icmp".into()),
                        ..Default::default()
                    })
                }),
                "healthCheck.kind",
            ),
            (
                Box::new(|t| {
                    t.backoff = Some(BackoffConfig {
                        jitter: Some(2.0),
                        ..Default::default()
                    })
                }),
                "backoff.jitter",
            ),
            (
                Box::new(|t| {
                    t.backoff = Some(BackoffConfig {
                        initial_ms: Some(9),
                        max_ms: Some(5),
                        ..Default::default()
                    })
                }),
                "backoff.initialMs",
            ),
        ];
        for (mutate, want) in cases {
            let mut t = base();
            mutate(&mut t);
            let e = check(t).unwrap_err();
            assert!(
                e.contains(want) && e.contains("cfg.json"),
                "{e} should contain {want}"
            );
        }
        let dup = validate(&[base(), base()], Path::new("c"))
            .unwrap_err()
            .to_string();
        assert!(dup.contains("tunnels[1].name"), "{dup}");
        let mut b = base();
        b.name = "b".into();
        let clash = validate(&[base(), b], Path::new("c"))
            .unwrap_err()
            .to_string();
        assert!(clash.contains("tunnels[1].localPort"), "{clash}");
    }

    #[test]
    fn overrides_replace_defaults_case_insensitively() {
        let mut t = base();
        t.ssh_options = Some([("serveraliveinterval".into(), "5".into())].into());
        let s = check(t).unwrap();
        assert_eq!(
            s.options.get("serveraliveinterval").map(String::as_str),
            Some("5")
        );
        assert!(!s.options.contains_key("ServerAliveInterval"));
    }
}
