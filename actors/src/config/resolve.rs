//! Resolution of the effective settings: flags > env > file > defaults, then validation in
//! one place. Features that are configured but not built refuse start-up instead of running
//! without them.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::bind::resolve_bind;
use super::load::{load_file, ConfigError};
use super::schema::{FileConfig, GatewayMode};
use super::{DEFAULT_PORT, DEFAULT_SHUTDOWN_GRACE_MS, DEFAULT_TOKEN_MIN_LENGTH, DEV_PORT};
use crate::protocol::{HANDSHAKE_TIMEOUT_MS, TICK_INTERVAL_MS, WS_PING_INTERVAL_MS};
use crate::secret::Secret;

pub use super::bind::{BindPlan, HostInfo};

/// What the command line contributed.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `--config PATH`.
    pub config: Option<PathBuf>,
    /// `--profile NAME`.
    pub profile: Option<String>,
    /// `--dev` (profile `dev`, port 19001).
    pub dev: bool,
    /// `--port`.
    pub port: Option<u16>,
    /// `--bind`.
    pub bind: Option<String>,
    /// `--auth`.
    pub auth: Option<String>,
    /// `--token`.
    pub token: Option<Secret>,
    /// `--password`.
    pub password: Option<Secret>,
    /// `--log-level`.
    pub log_level: Option<String>,
    /// `--tailscale off|serve|funnel`.
    pub tailscale: Option<String>,
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A key in the config file.
    File(PathBuf, &'static str),
    /// Built-in default.
    Default,
}

/// State directory, config path and profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `~/.openclaw`, `~/.openclaw-<profile>` or `OPENCLAW_STATE_DIR`.
    pub state_dir: PathBuf,
    /// `--config`, `OPENCLAW_CONFIG_PATH` or `<stateDir>/openclaw.json`.
    pub config_path: PathBuf,
    /// Active profile.
    pub profile: Option<String>,
}

/// Gateway authentication mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// No secret (loopback only).
    None,
    /// Shared token.
    Token,
    /// Shared password.
    Password,
    /// A trusted reverse proxy names the user (`gateway.auth.trustedProxy`).
    TrustedProxy,
}

/// Resolved authentication settings.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The mode.
    pub mode: AuthMode,
    /// Token, when configured (token mode without one generates a runtime token).
    pub token: Option<Secret>,
    /// Password, when configured.
    pub password: Option<Secret>,
    /// Where the secret came from.
    pub source: Source,
}

/// The effective settings of one gateway run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Paths and profile.
    pub paths: Paths,
    /// Whether the config file exists.
    pub config_file_exists: bool,
    /// The parsed file (defaults when absent), for `config.get`.
    pub file: FileConfig,
    /// Listening port (0 = any free port).
    pub port: u16,
    /// Addresses to bind: 127.0.0.1 and [::1].
    pub listen: Vec<SocketAddr>,
    /// Authentication.
    pub auth: AuthSettings,
    /// Handshake timeout.
    pub handshake_timeout: Duration,
    /// `tick` interval.
    pub tick_interval: Duration,
    /// WebSocket ping interval.
    pub ping_interval: Duration,
    /// Shutdown grace.
    pub shutdown_grace: Duration,
    /// Log level filter.
    pub log_level: String,
    /// Gateway log file.
    pub log_file: PathBuf,
    /// Audit log file.
    pub audit_file: PathBuf,
    /// Audit log rotation (`audit.maxBytes`, `audit.keep`).
    pub audit_rotation: crate::audit::Rotation,
    /// Validated tunnels.
    pub tunnels: Vec<super::tunnels::TunnelSpec>,
    /// Auth-failure lockout (`None` when `gateway.auth.rateLimit.enabled` is false).
    pub lockout: Option<crate::auth::lockout::LockoutConfig>,
    /// Bind mode and exposure.
    pub bind: BindPlan,
    /// Listen addresses that may be skipped when the address family is unavailable.
    pub optional_listen: Vec<SocketAddr>,
    /// Admission rules (allowlist, proxies, rate limit, pre-auth cap); hot-reloadable.
    pub policy: crate::guard::Policy,
    /// The command-line inputs, kept for reloads.
    pub inputs: Inputs,
    /// TLS on every listener (`None`: plain HTTP/WS).
    pub tls: Option<crate::tls::TlsSettings>,
    /// Tailscale serve/funnel (`None`: off).
    pub tailscale: Option<super::tailscale::TailscaleSettings>,
}

// === impl Source ===

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(n) => write!(f, "flag {n}"),
            Source::Env(n) => write!(f, "env {n}"),
            Source::File(p, k) => write!(f, "{} key {k}", p.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

/// Resolves state dir and config path. `--dev` means profile `dev`.
pub fn resolve_paths(
    config_flag: Option<&Path>,
    profile: Option<&str>,
    dev: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Paths, ConfigError> {
    let profile = profile
        .map(str::to_string)
        .or(dev.then(|| "dev".to_string()));
    if let Some(p) = &profile {
        let ok = !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(ConfigError::Refused(format!(
                "--profile {p:?} is not a valid profile name (use letters, digits, '-' and '_')"
            )));
        }
    }
    let home = env("OPENCLAW_HOME")
        .or_else(|| env("HOME"))
        .map(PathBuf::from)
        .ok_or_else(|| {
            ConfigError::Refused("HOME is not set: set HOME or OPENCLAW_STATE_DIR".into())
        })?;
    let state_dir = match (env("OPENCLAW_STATE_DIR"), &profile) {
        (Some(d), _) if !d.is_empty() => PathBuf::from(d),
        (_, Some(p)) => home.join(format!(".openclaw-{p}")),
        _ => home.join(".openclaw"),
    };
    let config_path = match (config_flag, env("OPENCLAW_CONFIG_PATH")) {
        (Some(c), _) => c.to_path_buf(),
        (None, Some(c)) if !c.is_empty() => PathBuf::from(c),
        _ => state_dir.join("openclaw.json"),
    };
    Ok(Paths {
        state_dir,
        config_path,
        profile,
    })
}

/// Resolves everything for `openclaw gateway`.
pub fn resolve(
    inputs: &Inputs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    resolve_with(inputs, env, &HostInfo::real())
}

/// [`resolve`] with the machine's facts passed in.
pub fn resolve_with(
    inputs: &Inputs,
    env: &dyn Fn(&str) -> Option<String>,
    host: &HostInfo,
) -> Result<Settings, ConfigError> {
    let (paths, exists, file) = load_config(inputs, env)?;
    let cfg_path = paths.config_path.clone();
    refuse_remote_mode(&file, &cfg_path)?;
    let port = resolve_port(inputs, file.gateway.port, &cfg_path, env)?;
    let (bind, listen, optional_listen) = resolve_bind(inputs, &file, &cfg_path, port, host)?;
    refuse_unbuilt(&file, &cfg_path)?;
    let auth = resolve_auth(inputs, &file, &cfg_path, env)?;
    check_exposure(&bind, &listen, &auth)?;
    check_token_rules(&file, &auth, &cfg_path, bind.exposed)?;
    check_cdp(&file, &cfg_path)?;
    let timing = resolve_timing(&file, &cfg_path, env)?;
    let log_level = resolve_log_level(inputs, &file, &cfg_path)?;
    let (log_file, audit_file) = log_files(&file, &paths);
    let audit_rotation = resolve_audit(&file, &cfg_path)?;
    let tunnels = super::tunnels::validate(file.tunnels.as_deref().unwrap_or(&[]), &cfg_path)?;
    let lockout = resolve_lockout(&file, &cfg_path)?;
    check_cdp_ports(&file, &tunnels, port, &cfg_path)?;
    let policy = super::policy::resolve_policy(&file, &cfg_path, env, &auth, bind.exposed)?;
    let tls = super::tls::resolve_tls(&file, &paths, &cfg_path, env)?;
    let tailscale =
        super::tailscale::resolve_tailscale(inputs, &file, &cfg_path, env, &bind, &auth)?;
    Ok(Settings {
        tls,
        tailscale,
        paths,
        config_file_exists: exists,
        file,
        port,
        listen,
        auth,
        handshake_timeout: timing.handshake_timeout,
        tick_interval: timing.tick_interval,
        ping_interval: Duration::from_millis(WS_PING_INTERVAL_MS),
        shutdown_grace: timing.shutdown_grace,
        log_level,
        log_file,
        audit_file,
        audit_rotation,
        tunnels,
        lockout,
        bind,
        optional_listen,
        policy,
        inputs: inputs.clone(),
    })
}

/// Paths, whether the config file exists, and the parsed file (defaults when absent). A
/// `--config` that names a missing file is an error.
fn load_config(
    inputs: &Inputs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Paths, bool, FileConfig), ConfigError> {
    let paths = resolve_paths(
        inputs.config.as_deref(),
        inputs.profile.as_deref(),
        inputs.dev,
        env,
    )?;
    let exists = paths.config_path.exists();
    if inputs.config.is_some() && !exists {
        return Err(ConfigError::Parse {
            file: paths.config_path.clone(),
            msg: "config file not found (check the --config path)".into(),
        });
    }
    let file = if exists {
        load_file(&paths.config_path, env)?
    } else {
        FileConfig::default()
    };
    Ok((paths, exists, file))
}

/// `gateway.mode: "remote"` makes this machine a client: no gateway runs here.
fn refuse_remote_mode(file: &FileConfig, cfg: &Path) -> Result<(), ConfigError> {
    if file.gateway.mode == Some(GatewayMode::Remote) {
        return Err(ConfigError::Refused(format!(
            "{}: gateway.mode is \"remote\", so this machine is configured as a client of \
             gateway.remote.url; set gateway.mode to \"local\" to run a gateway here",
            cfg.display()
        )));
    }
    Ok(())
}

/// The protocol timers, each with its default and minimum.
struct Timing {
    handshake_timeout: Duration,
    tick_interval: Duration,
    shutdown_grace: Duration,
}

/// Handshake timeout (env `OPENCLAW_HANDSHAKE_TIMEOUT_MS` over the file), tick interval and
/// shutdown grace.
fn resolve_timing(
    file: &FileConfig,
    cfg: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Timing, ConfigError> {
    let g = &file.gateway;
    let handshake_ms = match env("OPENCLAW_HANDSHAKE_TIMEOUT_MS") {
        Some(v) => Some(parse_handshake_env(&v)?),
        None => g.handshake_timeout_ms,
    };
    Ok(Timing {
        handshake_timeout: millis(
            cfg,
            handshake_ms,
            "gateway.handshakeTimeoutMs",
            HANDSHAKE_TIMEOUT_MS,
            1,
        )?,
        tick_interval: millis(
            cfg,
            g.tick_interval_ms,
            "gateway.tickIntervalMs",
            TICK_INTERVAL_MS,
            10,
        )?,
        shutdown_grace: millis(
            cfg,
            g.shutdown_grace_ms,
            "gateway.shutdownGraceMs",
            DEFAULT_SHUTDOWN_GRACE_MS,
            0,
        )?,
    })
}

/// `OPENCLAW_HANDSHAKE_TIMEOUT_MS`: a positive number of milliseconds.
fn parse_handshake_env(v: &str) -> Result<u64, ConfigError> {
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            ConfigError::Refused(format!(
                "env OPENCLAW_HANDSHAKE_TIMEOUT_MS={v:?} is not a positive number of milliseconds"
            ))
        })
}

/// A duration in ms at `key`: `v`, or `default`; at least `min`.
fn millis(
    cfg: &Path,
    v: Option<u64>,
    key: &'static str,
    default: u64,
    min: u64,
) -> Result<Duration, ConfigError> {
    let v = v.unwrap_or(default);
    if v < min {
        return Err(invalid(
            cfg,
            key,
            format!("must be at least {min} ms, got {v}"),
        ));
    }
    Ok(Duration::from_millis(v))
}

/// The gateway log (`logging.file`, default `<stateDir>/logs/gateway.log`) and the audit log.
fn log_files(file: &FileConfig, paths: &Paths) -> (PathBuf, PathBuf) {
    let log_file = file
        .logging
        .as_ref()
        .and_then(|l| l.file.as_ref())
        .map(PathBuf::from)
        .unwrap_or_else(|| paths.state_dir.join("logs").join("gateway.log"));
    (log_file, paths.state_dir.join("logs").join("audit.jsonl"))
}

/// `audit.maxBytes` (default 64 MiB, at least 4 KiB) and `audit.keep` (default 10, at
/// least 1).
fn resolve_audit(file: &FileConfig, cfg: &Path) -> Result<crate::audit::Rotation, ConfigError> {
    use crate::audit::rotate::{DEFAULT_KEEP, DEFAULT_MAX_BYTES, MIN_MAX_BYTES};
    let a = file.audit.clone().unwrap_or_default();
    let max_bytes = a.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
    if max_bytes < MIN_MAX_BYTES {
        return Err(invalid(
            cfg,
            "audit.maxBytes",
            format!(
                "must be at least {MIN_MAX_BYTES} bytes (4 KiB), got {max_bytes}; raise it, or \
                 remove the key for the default {DEFAULT_MAX_BYTES} (64 MiB)"
            ),
        ));
    }
    let keep = a.keep.map_or(DEFAULT_KEEP, |k| k as usize);
    if keep == 0 {
        return Err(invalid(
            cfg,
            "audit.keep",
            format!(
                "must be at least 1 (rotated files kept besides the current one), got 0; \
                 set it to 1 or more, or remove the key for the default {DEFAULT_KEEP}"
            ),
        ));
    }
    Ok(crate::audit::Rotation { max_bytes, keep })
}

/// A config value error naming the file and the key.
pub(crate) fn invalid(file: &Path, path: &str, msg: String) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_path_buf(),
        path: path.to_string(),
        msg,
    }
}

fn resolve_port(
    inputs: &Inputs,
    file_port: Option<u16>,
    cfg: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<u16, ConfigError> {
    if let Some(p) = inputs.port {
        return Ok(p);
    }
    if let Some(v) = env("OPENCLAW_GATEWAY_PORT").filter(|v| !v.is_empty()) {
        return v.trim().parse::<u16>().map_err(|_| {
            ConfigError::Refused(format!(
                "env OPENCLAW_GATEWAY_PORT={v:?} is not a port number (0-65535); unset it or fix it"
            ))
        });
    }
    if let Some(p) = file_port {
        let _ = cfg;
        return Ok(p);
    }
    Ok(if inputs.dev || inputs.profile.as_deref() == Some("dev") {
        DEV_PORT
    } else {
        DEFAULT_PORT
    })
}

/// A listener beyond loopback needs a secret (or a trusted proxy) in front of it.
fn check_exposure(
    bind: &BindPlan,
    listen: &[SocketAddr],
    auth: &AuthSettings,
) -> Result<(), ConfigError> {
    if !bind.exposed {
        return Ok(());
    }
    let secured = match auth.mode {
        AuthMode::Token => auth.token.is_some(),
        AuthMode::Password => auth.password.is_some(),
        AuthMode::TrustedProxy => true,
        AuthMode::None => false,
    };
    if secured {
        return Ok(());
    }
    let addr = listen
        .iter()
        .find(|a| !a.ip().is_loopback())
        .copied()
        .unwrap_or(listen[0]);
    let why = if auth.mode == AuthMode::None {
        format!("auth mode is none ({})", auth.source)
    } else {
        "no token is configured (a generated runtime token is for loopback only)".into()
    };
    Err(ConfigError::Refused(format!(
        "refusing to bind gateway to {addr} without auth (set gateway.auth.token or \
         OPENCLAW_GATEWAY_TOKEN, or gateway.auth.password / OPENCLAW_GATEWAY_PASSWORD; or keep \
         --bind loopback and use an SSH tunnel): bind {} comes from {}, and {why}",
        bind.mode, bind.source
    )))
}

/// The browser's CDP ports (control + 9 ..= control + 108, control = base + 2, and the port of
/// `browser.cdpUrl`) must never be published by a remote (`-R`) tunnel. (The gateway's own
/// listeners sit on the base port, outside that range by construction.)
fn check_cdp_ports(
    file: &FileConfig,
    tunnels: &[super::tunnels::TunnelSpec],
    port: u16,
    cfg: &Path,
) -> Result<(), ConfigError> {
    let first = u32::from(port) + 2 + 9;
    let range = first..=first + 99;
    let cdp_url_port = file
        .browser
        .as_ref()
        .and_then(|b| b.cdp_url.as_deref())
        .and_then(|u| cdp_host_port(u).1);
    let in_range = |p: u16| (port != 0 && range.contains(&u32::from(p))) || Some(p) == cdp_url_port;
    if let Some(t) = tunnels
        .iter()
        .find(|t| t.direction == super::tunnels::Direction::Remote && in_range(t.local_port))
    {
        return Err(ConfigError::Refused(format!(
            "{}: tunnel {:?} would publish local port {} on {}, and that port is in the browser \
             CDP range {}-{} (CDP is full control of the browser); forward the gateway port \
             instead",
            cfg.display(),
            t.name,
            t.local_port,
            t.target,
            range.start(),
            range.end()
        )));
    }
    Ok(())
}

fn refused_unbuilt(cfg: &Path, key: &str, what: &str) -> ConfigError {
    ConfigError::Refused(format!(
        "{}: `{key}` is configured, but {what} are not supported by this build yet; refusing \
         to start without them (remove the key to run without the feature)",
        cfg.display()
    ))
}

/// Security features that are configured but not built refuse start-up.
fn refuse_unbuilt(file: &FileConfig, cfg: &Path) -> Result<(), ConfigError> {
    let g = &file.gateway;
    if let Some(t) = &g.tailscale {
        if t.bind.is_some() {
            return Err(refused_unbuilt(
                cfg,
                "gateway.tailscale.bind",
                "tailnet binds",
            ));
        }
    }
    Ok(())
}

fn resolve_auth(
    inputs: &Inputs,
    file: &FileConfig,
    cfg: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<AuthSettings, ConfigError> {
    let a = &file.gateway.auth;
    // A secret that is set but blank, `undefined`/`null` or a published placeholder is refused
    // (also on loopback), naming where it came from; an empty environment variable counts as
    // unset (`Environment=OPENCLAW_GATEWAY_TOKEN=` in a unit file).
    let weak = |what: &str, src: Source| {
        ConfigError::Refused(format!(
            "the gateway {what} ({src}) is blank, a published example placeholder, or the \
             literal string undefined/null; generate a real secret with `openclaw token \
             generate` (or `openssl rand -hex 32`)"
        ))
    };
    let pick =
        |what: &str, flag: &Option<Secret>, flag_name, env_name, file_v: &Option<Secret>, key| {
            let mut found = Vec::new();
            if let Some(s) = flag.clone() {
                found.push((s, Source::Flag(flag_name)));
            }
            if let Some(s) = env(env_name).filter(|v| !v.is_empty()).map(Secret::new) {
                found.push((s, Source::Env(env_name)));
            }
            if let Some(s) = file_v.clone() {
                found.push((s, Source::File(cfg.to_path_buf(), key)));
            }
            match found.into_iter().next() {
                Some((s, src)) if known_weak_secret(s.expose()) => Err(weak(what, src)),
                other => Ok(other),
            }
        };
    let token = pick(
        "token",
        &inputs.token,
        "--token",
        "OPENCLAW_GATEWAY_TOKEN",
        &a.token,
        "gateway.auth.token",
    )?;
    let password = pick(
        "password",
        &inputs.password,
        "--password",
        "OPENCLAW_GATEWAY_PASSWORD",
        &a.password,
        "gateway.auth.password",
    )?;
    let (mode_str, mode_src) = match (&inputs.auth, &a.mode) {
        (Some(m), _) => (Some(m.as_str()), Source::Flag("--auth")),
        (None, Some(m)) => (
            Some(m.as_str()),
            Source::File(cfg.to_path_buf(), "gateway.auth.mode"),
        ),
        _ => (None, Source::Default),
    };
    let mode = match mode_str {
        Some("token") => AuthMode::Token,
        Some("password") => AuthMode::Password,
        Some("none") => AuthMode::None,
        Some("trusted-proxy") => AuthMode::TrustedProxy,
        Some(other) => {
            return Err(ConfigError::Refused(format!(
            "auth mode {other:?} ({mode_src}) is not one of none, token, password, trusted-proxy"
        )))
        }
        None if token.is_some() && password.is_some() => {
            return Err(ConfigError::Refused(format!(
                "both a token ({}) and a password ({}) are configured: set gateway.auth.mode \
                 or --auth to choose one",
                token.as_ref().map(|t| t.1.to_string()).unwrap_or_default(),
                password
                    .as_ref()
                    .map(|p| p.1.to_string())
                    .unwrap_or_default()
            )))
        }
        None if password.is_some() => AuthMode::Password,
        None => AuthMode::Token,
    };
    if mode == AuthMode::Password && password.is_none() {
        return Err(ConfigError::Refused(format!(
            "auth mode is password ({mode_src}) but no password is set: set \
             gateway.auth.password in {}, OPENCLAW_GATEWAY_PASSWORD or --password",
            cfg.display()
        )));
    }
    let source = match mode {
        AuthMode::Token => token
            .as_ref()
            .map(|t| t.1.clone())
            .unwrap_or(Source::Default),
        AuthMode::Password => password
            .as_ref()
            .map(|p| p.1.clone())
            .unwrap_or(Source::Default),
        AuthMode::None | AuthMode::TrustedProxy => mode_src,
    };
    Ok(AuthSettings {
        mode,
        token: token.map(|t| t.0),
        password: password.map(|p| p.0),
        source,
    })
}

/// Applies `gateway.auth.tokenValidation`: when configured, and with its defaults whenever a
/// listener is beyond loopback. Never prints the secret.
fn check_token_rules(
    file: &FileConfig,
    auth: &AuthSettings,
    cfg: &Path,
    exposed: bool,
) -> Result<(), ConfigError> {
    let default = super::schema::TokenValidationConfig::default();
    let rules = match &file.gateway.auth.token_validation {
        Some(r) => r,
        None if exposed => &default,
        None => return Ok(()),
    };
    let min = rules.min_length.unwrap_or(DEFAULT_TOKEN_MIN_LENGTH);
    let alnum = rules.require_alphanumeric.unwrap_or(true);
    let secret = match auth.mode {
        AuthMode::Token => auth.token.as_ref(),
        AuthMode::Password => auth.password.as_ref(),
        AuthMode::None | AuthMode::TrustedProxy => None,
    };
    let Some(secret) = secret else { return Ok(()) };
    if let Err(rule) = validate_secret(secret.expose(), min, alnum) {
        return Err(ConfigError::Refused(format!(
            "the gateway secret ({}) fails {}: {rule}; generate a strong one with \
             `openclaw token generate`",
            auth.source,
            if file.gateway.auth.token_validation.is_none() {
                "the default rules (applied because the gateway listens beyond loopback)"
                    .to_string()
            } else {
                format!("gateway.auth.tokenValidation in {}", cfg.display())
            }
        )));
    }
    Ok(())
}

/// The secrets the real gateway refuses whatever the bind: blank, the literal strings
/// `undefined`/`null` (a template that lost its variable), and the placeholders from the
/// published examples.
pub fn known_weak_secret(secret: &str) -> bool {
    const PLACEHOLDERS: &[&str] = &[
        "undefined",
        "null",
        "change-me-now",
        "change-me-to-a-long-random-token",
        "change-me-to-a-strong-password",
    ];
    let v = secret.trim();
    v.is_empty() || PLACEHOLDERS.iter().any(|p| v.eq_ignore_ascii_case(p))
}

/// Checks a secret against the `tokenValidation` rules; the error names the failed rule.
pub fn validate_secret(
    secret: &str,
    min_length: usize,
    require_alphanumeric: bool,
) -> Result<(), String> {
    let len = secret.chars().count();
    if len < min_length {
        return Err(format!(
            "tokenValidation.minLength requires at least {min_length} characters, it has {len}"
        ));
    }
    if require_alphanumeric {
        let only = secret.chars().all(|c| c.is_ascii_alphanumeric());
        let letter = secret.chars().any(|c| c.is_ascii_alphabetic());
        let digit = secret.chars().any(|c| c.is_ascii_digit());
        if !(only && letter && digit) {
            return Err(
                "tokenValidation.requireAlphanumeric requires letters and digits only, \
                        with at least one of each"
                    .into(),
            );
        }
    }
    Ok(())
}

/// Host and port of `browser.cdpUrl` (`http://127.0.0.1:9222/…`, `ws://[::1]:9222`).
fn cdp_host_port(url: &str) -> (&str, Option<u16>) {
    let hostport = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or("");
    let (host, port) = match hostport.strip_prefix('[') {
        Some(rest) => {
            let (h, tail) = rest.split_once(']').unwrap_or((rest, ""));
            (h, tail.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    (host, port.and_then(|p| p.parse().ok()))
}

/// `browser.cdpUrl` must stay on loopback: CDP is full control of the browser.
fn check_cdp(file: &FileConfig, cfg: &Path) -> Result<(), ConfigError> {
    let Some(url) = file.browser.as_ref().and_then(|b| b.cdp_url.as_deref()) else {
        return Ok(());
    };
    let (host, _) = cdp_host_port(url);
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(ConfigError::Refused(format!(
            "{}: browser.cdpUrl points at {host:?}, which is not loopback; CDP gives full control \
             of the browser, so it must never be reachable from another machine (use \
             http://127.0.0.1:<port>)",
            cfg.display()
        )));
    }
    Ok(())
}

/// `gateway.auth.rateLimit` as the auth-failure lockout (on by default, as in the real
/// gateway: 10 wrong attempts in 60 s lock the client out for 5 minutes).
fn resolve_lockout(
    file: &FileConfig,
    cfg: &Path,
) -> Result<Option<crate::auth::lockout::LockoutConfig>, ConfigError> {
    let d = crate::auth::lockout::LockoutConfig::default();
    let Some(r) = &file.gateway.auth.rate_limit else {
        return Ok(Some(d));
    };
    if r.enabled == Some(false) {
        return Ok(None);
    }
    let max_attempts = r.max_attempts.unwrap_or(d.max_attempts);
    if max_attempts == 0 {
        return Err(invalid(
            cfg,
            "gateway.auth.rateLimit.maxAttempts",
            "must be at least 1".into(),
        ));
    }
    let ms = |v: Option<u64>, dflt: Duration, key: &str| -> Result<Duration, ConfigError> {
        match v {
            Some(0) => Err(invalid(cfg, key, "must be at least 1 ms".into())),
            Some(n) => Ok(Duration::from_millis(n)),
            None => Ok(dflt),
        }
    };
    Ok(Some(crate::auth::lockout::LockoutConfig {
        max_attempts,
        window: ms(r.window_ms, d.window, "gateway.auth.rateLimit.windowMs")?,
        lockout: ms(r.lockout_ms, d.lockout, "gateway.auth.rateLimit.lockoutMs")?,
        exempt_loopback: r.exempt_loopback.unwrap_or(d.exempt_loopback),
    }))
}

fn resolve_log_level(
    inputs: &Inputs,
    file: &FileConfig,
    cfg: &Path,
) -> Result<String, ConfigError> {
    let (level, src) = match (
        &inputs.log_level,
        file.logging.as_ref().and_then(|l| l.level.clone()),
    ) {
        (Some(l), _) => (l.clone(), Source::Flag("--log-level")),
        (None, Some(l)) => (l, Source::File(cfg.to_path_buf(), "logging.level")),
        _ => ("info".to_string(), Source::Default),
    };
    match level.as_str() {
        "error" | "warn" | "info" | "debug" | "trace" => Ok(level),
        other => Err(ConfigError::Refused(format!(
            "log level {other:?} ({src}) is not one of error, warn, info, debug, trace"
        ))),
    }
}

#[cfg(test)]
pub(crate) mod tests;
