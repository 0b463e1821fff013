//! Which gateway a client command talks to, and with which credentials.
//!
//! Target: `--gateway URL` (alias `--url`) > `OPENCLAW_GATEWAY_URL` > config
//! `gateway.remote.url` when `gateway.mode` is `remote` > the active profile's local gateway
//! (`ws://127.0.0.1:<port>`).
//! Credentials: `--token`/`--password` > `OPENCLAW_GATEWAY_TOKEN`/`_PASSWORD` > config
//! `gateway.remote.token|password` (remote target from config) > for the local gateway,
//! `gateway.auth.token|password` or the runtime token file. An explicit `--gateway` or
//! `OPENCLAW_GATEWAY_URL` never borrows credentials from the config or token file: they
//! belong to another gateway.

use std::path::PathBuf;

use clap::Args;
use openclaw_actors::config::schema::GatewayMode;
use openclaw_actors::config::{load::load_file, resolve_paths, FileConfig, DEFAULT_PORT, DEV_PORT};
use openclaw_actors::secret::Secret;
use openclaw_actors::state::read_runtime_token;

use crate::cli::Global;

/// Flags shared by every command that talks to a gateway.
#[derive(Debug, Args, Clone, Default)]
pub struct TargetArgs {
    /// Gateway URL (ws://host:port). Uses only --token/--password or the
    /// OPENCLAW_GATEWAY_TOKEN/_PASSWORD env vars, never the local config or token file.
    #[arg(long = "gateway", visible_alias = "url", value_name = "URL")]
    pub gateway: Option<String>,
    /// Gateway token.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Gateway password.
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Give up after this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub timeout: u64,
    /// Pin the gateway's TLS certificate (wss:// only): its SHA-256 as 64 hex digits,
    /// AA:BB:… pairs or sha256:<hex> (see `openclaw tls fingerprint` on the gateway).
    #[arg(long, value_name = "SHA256")]
    pub tls_fingerprint: Option<String>,
}

/// A resolved target.
#[derive(Debug, Clone)]
pub struct Target {
    /// `ws://…` URL.
    pub url: String,
    /// Where the URL came from.
    pub source: String,
    /// Token to present.
    pub token: Option<Secret>,
    /// Password to present.
    pub password: Option<Secret>,
    /// Where the credentials came from.
    pub creds_source: String,
    /// Whether this is the active profile's own local gateway.
    pub local: bool,
    /// The active profile's state dir.
    pub state_dir: PathBuf,
    /// The certificate fingerprint to pin (lowercase hex), for `wss://`.
    pub pin: Option<String>,
}

// === impl Target ===

impl Target {
    /// `host:port` of the URL.
    pub fn host_port(&self) -> String {
        let rest = self.url.split("://").nth(1).unwrap_or(&self.url);
        rest.split('/').next().unwrap_or(rest).to_string()
    }

    /// Whether the URL's host is loopback.
    pub fn is_loopback(&self) -> bool {
        let hp = self.host_port();
        let host = match hp.strip_prefix('[') {
            Some(r) => r.split(']').next().unwrap_or("").to_string(),
            None => hp
                .rsplit_once(':')
                .map(|(h, _)| h.to_string())
                .unwrap_or(hp.clone()),
        };
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// Loads the active profile's config file if there is one.
pub fn load_config(
    global: &Global,
    config: Option<&std::path::Path>,
) -> Result<(FileConfig, PathBuf), String> {
    let env = |k: &str| std::env::var(k).ok();
    let paths = resolve_paths(config, global.profile.as_deref(), global.dev, &env)
        .map_err(|e| e.to_string())?;
    let file = if paths.config_path.exists() {
        load_file(&paths.config_path, &env).map_err(|e| e.to_string())?
    } else {
        FileConfig::default()
    };
    Ok((file, paths.state_dir))
}

/// The active profile's local gateway port.
pub fn local_port(global: &Global, file: &FileConfig) -> Result<u16, String> {
    if let Ok(v) = std::env::var("OPENCLAW_GATEWAY_PORT") {
        if !v.is_empty() {
            return v
                .trim()
                .parse()
                .map_err(|_| format!("env OPENCLAW_GATEWAY_PORT={v:?} is not a port number"));
        }
    }
    Ok(file
        .gateway
        .port
        .unwrap_or(if global.dev || global.profile.as_deref() == Some("dev") {
            DEV_PORT
        } else {
            DEFAULT_PORT
        }))
}

fn check_url(url: &str, source: &str) -> Result<String, String> {
    crate::transport::Url::parse(url).map_err(|e| format!("{e} ({source})"))?;
    Ok(url.to_string())
}

/// Reads a fingerprint from `source`; the error names the source.
fn read_pin(value: &str, source: &str) -> Result<String, String> {
    openclaw_actors::tls::fingerprint::normalize(value).map_err(|e| format!("{source}: {e}"))
}

/// The local gateway's URL and, with `gateway.tls.enabled`, the pin of its certificate file
/// (the public certificate only; nothing is generated here).
fn local_url(global: &Global, file: &FileConfig) -> Result<(String, Option<String>), String> {
    let port = local_port(global, file)?;
    let env = |k: &str| std::env::var(k).ok();
    let paths = resolve_paths(None, global.profile.as_deref(), global.dev, &env)
        .map_err(|e| e.to_string())?;
    let tls = openclaw_actors::config::tls::resolve_tls(file, &paths, &paths.config_path, &env)
        .map_err(|e| e.to_string())?;
    let Some(tls) = tls else {
        return Ok((format!("ws://127.0.0.1:{port}"), None));
    };
    let pem = std::fs::read(&tls.cert_path).map_err(|e| {
        format!(
            "the local gateway uses TLS but its certificate {} cannot be read: {e} (start it once, or pass --tls-fingerprint)",
            tls.cert_path.display()
        )
    })?;
    let der = openclaw_actors::tls::PemCert::first(&pem)
        .ok_or_else(|| format!("{} holds no PEM certificate", tls.cert_path.display()))?;
    let pin = openclaw_actors::tls::fingerprint::sha256_hex(&der);
    Ok((format!("wss://127.0.0.1:{port}"), Some(pin)))
}

/// Resolves the target and credentials.
pub fn resolve(args: &TargetArgs, global: &Global) -> Result<Target, String> {
    let (file, state_dir) = load_config(global, None)?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let flag_creds = |t: &mut Target| {
        if let Some(tok) = &args.token {
            t.token = Some(Secret::new(tok.clone()));
            t.creds_source = "--token".into();
        }
        if let Some(pw) = &args.password {
            t.password = Some(Secret::new(pw.clone()));
            t.creds_source = "--password".into();
        }
    };
    let env_creds = |t: &mut Target| {
        if t.token.is_none() && t.password.is_none() {
            t.token = env("OPENCLAW_GATEWAY_TOKEN").map(Secret::new);
            t.password = env("OPENCLAW_GATEWAY_PASSWORD").map(Secret::new);
            if t.token.is_some() || t.password.is_some() {
                t.creds_source = "env OPENCLAW_GATEWAY_TOKEN/PASSWORD".into();
            }
        }
    };
    let mut t = Target {
        url: String::new(),
        source: String::new(),
        token: None,
        password: None,
        creds_source: "none".into(),
        local: false,
        state_dir: state_dir.clone(),
        pin: None,
    };
    let remote = file.gateway.remote.clone().unwrap_or_default();
    if let Some(u) = &args.gateway {
        t.url = check_url(u, "--gateway")?;
        t.source = "--gateway".into();
    } else if let Some(u) = env("OPENCLAW_GATEWAY_URL") {
        t.url = check_url(&u, "env OPENCLAW_GATEWAY_URL")?;
        t.source = "env OPENCLAW_GATEWAY_URL".into();
    } else if file.gateway.mode == Some(GatewayMode::Remote) {
        let u = remote.url.clone().ok_or("gateway.mode is \"remote\" but gateway.remote.url is missing: set it, or pass --gateway URL")?;
        t.url = check_url(&u, "config gateway.remote.url")?;
        t.source = "config gateway.remote.url".into();
    } else {
        let (url, pin) = local_url(global, &file)?;
        t.url = url;
        t.pin = pin;
        t.source = "local gateway".into();
        t.local = true;
    }
    // Pins: --tls-fingerprint > gateway.remote.tlsFingerprint (remote URL from the config or
    // OPENCLAW_GATEWAY_URL) > the local gateway's certificate.
    if let Some(fp) = &args.tls_fingerprint {
        t.pin = Some(read_pin(fp, "--tls-fingerprint")?);
    } else if let (Some(fp), true) = (
        remote.tls_fingerprint.as_deref(),
        t.source == "config gateway.remote.url" || t.source == "env OPENCLAW_GATEWAY_URL",
    ) {
        t.pin = Some(read_pin(fp, "config gateway.remote.tlsFingerprint")?);
    }
    flag_creds(&mut t);
    env_creds(&mut t);
    if t.token.is_none() && t.password.is_none() {
        if t.source == "config gateway.remote.url" {
            t.token = remote.token.clone().filter(|s| !s.is_unset());
            t.password = remote.password.clone().filter(|s| !s.is_unset());
            t.creds_source = "config gateway.remote.*".into();
        } else if t.local {
            let a = &file.gateway.auth;
            t.token = a.token.clone().filter(|s| !s.is_unset());
            t.password = a.password.clone().filter(|s| !s.is_unset());
            t.creds_source = "config gateway.auth.*".into();
            if t.token.is_none() && t.password.is_none() {
                t.token = read_runtime_token(&state_dir);
                t.creds_source = format!("{}/gateway.token", state_dir.display());
            }
        }
    }
    Ok(t)
}
