//! Local commands that need no gateway: `ports`, `token generate`, `config validate`,
//! `completions`.

use std::path::PathBuf;

use clap::CommandFactory;
use openclaw_actors::config::{self, Inputs};
use serde_json::json;

use super::print_json;
use crate::cli::{Cli, Global};

/// The ports derived from a base port (seed: base, +2, +4, control+9 … control+108).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// Gateway (base).
    pub base: u16,
    /// Browser control (base + 2).
    pub browser_control: u16,
    /// Canvas (base + 4).
    pub canvas: u16,
    /// First CDP port (control + 9).
    pub cdp_first: u16,
    /// Last CDP port (control + 108).
    pub cdp_last: u16,
}

/// Derives the ports; `None` when they would pass 65535.
pub fn derive(base: u16) -> Option<Ports> {
    let control = base.checked_add(2)?;
    Some(Ports {
        base,
        browser_control: control,
        canvas: base.checked_add(4)?,
        cdp_first: control.checked_add(9)?,
        cdp_last: control.checked_add(108)?,
    })
}

/// [`derive`] for display paths where the base is known valid.
pub fn derived_ports(base: u16) -> Ports {
    derive(base).unwrap_or(Ports {
        base,
        browser_control: 0,
        canvas: 0,
        cdp_first: 0,
        cdp_last: 0,
    })
}

/// `openclaw ports`.
pub fn ports(global: &Global, port: Option<u16>, as_json: bool) -> i32 {
    let base = match port {
        Some(p) => p,
        None => match crate::target::load_config(global, None)
            .and_then(|(f, _)| crate::target::local_port(global, &f))
        {
            Ok(p) => p,
            Err(e) => {
                eprintln!("openclaw ports: {e}");
                return 2;
            }
        },
    };
    let Some(p) = derive(base) else {
        eprintln!("openclaw ports: base port {base} is too high: the CDP range would pass 65535 (use a base ≤ 65425)");
        return 2;
    };
    let warning =
        "never share browser.cdpUrl or expose the CDP range: CDP is full control of the browser";
    if as_json {
        print_json(&json!({
            "base": p.base, "browserControl": p.browser_control, "canvas": p.canvas,
            "cdp": {"first": p.cdp_first, "last": p.cdp_last}, "warning": warning,
        }));
        return 0;
    }
    crate::out!("{:<18} {:<14} how", "port", "use");
    crate::out!("{:<18} {:<14} base", p.base, "gateway");
    crate::out!(
        "{:<18} {:<14} base + 2",
        p.browser_control,
        "browser control"
    );
    crate::out!("{:<18} {:<14} base + 4", p.canvas, "canvas");
    crate::out!(
        "{:<18} {:<14} control + 9 … control + 108",
        format!("{}–{}", p.cdp_first, p.cdp_last),
        "CDP (debug)"
    );
    crate::out!("warning: {warning}");
    0
}

/// `openclaw token generate`.
pub fn token_generate(length: usize) -> i32 {
    if !(32..=512).contains(&length) {
        eprintln!("openclaw token generate: --length {length} is out of range (32 to 512; tokenValidation needs at least 32)");
        return 2;
    }
    crate::out!("{}", openclaw_actors::state::generate_token(length));
    0
}

/// The settings `openclaw gateway` would use with config file `path` (default: the active
/// profile's), resolved from this process's environment.
fn resolve_local(
    global: &Global,
    path: Option<PathBuf>,
) -> Result<config::Settings, config::ConfigError> {
    let inputs = Inputs {
        config: path,
        profile: global.profile.clone(),
        dev: global.dev,
        ..Default::default()
    };
    let env = |k: &str| std::env::var(k).ok();
    config::resolve(&inputs, &env)
}

/// `openclaw config validate`: resolves the config exactly as `openclaw gateway` would.
pub fn config_validate(global: &Global, path: Option<PathBuf>, as_json: bool) -> i32 {
    match resolve_local(global, path) {
        Ok(s) => {
            let v = json!({
                "valid": true,
                "configPath": s.paths.config_path.display().to_string(),
                "exists": s.config_file_exists,
                "stateDir": s.paths.state_dir.display().to_string(),
                "effective": {
                    "port": s.port,
                    "listen": s.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                    "authMode": format!("{:?}", s.auth.mode).to_lowercase(),
                    "authSource": s.auth.source.to_string(),
                    "handshakeTimeoutMs": s.handshake_timeout.as_millis() as u64,
                    "tickIntervalMs": s.tick_interval.as_millis() as u64,
                    "logLevel": s.log_level,
                },
                "config": s.file,
            });
            if as_json {
                print_json(&v);
            } else {
                crate::out!("{}: valid", s.paths.config_path.display());
                print_json(&v);
            }
            0
        }
        Err(e) => {
            if as_json {
                print_json(&json!({"valid": false, "error": e.to_string()}));
            }
            eprintln!("openclaw config validate: {e}");
            2
        }
    }
}

/// `openclaw completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> i32 {
    let mut cmd = Cli::command();
    clap_complete::generate(
        shell,
        &mut cmd,
        "openclaw",
        &mut IgnorePipe(std::io::stdout()),
    );
    0
}

/// A writer that treats a closed pipe as success.
struct IgnorePipe<W>(W);

impl<W: std::io::Write> std::io::Write for IgnorePipe<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(buf.len()),
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }
}

/// `openclaw tls fingerprint`: the certificate the gateway serves (or would serve), from
/// the config's `gateway.tls` paths.
pub fn tls_fingerprint(global: &Global, path: Option<PathBuf>, as_json: bool) -> i32 {
    use openclaw_actors::tls::{fingerprint, material};
    let s = match resolve_local(global, path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("openclaw tls fingerprint: {e}");
            return 2;
        }
    };
    let Some(t) = &s.tls else {
        eprintln!(
            "openclaw tls fingerprint: TLS is off in {} (set gateway.tls.enabled: true)",
            s.paths.config_path.display()
        );
        return 2;
    };
    let pem = match material::read_bounded(&t.cert_path, "certificate") {
        Ok(b) => b,
        Err(e) => {
            eprintln!("openclaw tls fingerprint: {e} (start the gateway once to generate it, or set gateway.tls.certPath)");
            return 1;
        }
    };
    use openclaw_actors::tls::PemCert;
    let Some(der) = PemCert::first(&pem) else {
        eprintln!(
            "openclaw tls fingerprint: {} holds no PEM certificate",
            t.cert_path.display()
        );
        return 1;
    };
    let fp = fingerprint::display(&fingerprint::sha256_hex(&der));
    let not_after = material::not_after(&der);
    if as_json {
        print_json(&json!({
            "fingerprintSha256": fp,
            "certPath": t.cert_path.display().to_string(),
            "notAfter": not_after.map(|t| t * 1000),
        }));
    } else {
        crate::out!("{fp}");
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_port_table() {
        assert_eq!(
            derive(18789),
            Some(Ports {
                base: 18789,
                browser_control: 18791,
                canvas: 18793,
                cdp_first: 18800,
                cdp_last: 18899
            })
        );
        assert_eq!(derive(19001).unwrap().cdp_first, 19012);
        assert_eq!(derive(65425).unwrap().cdp_last, 65535);
        assert_eq!(derive(65426), None);
    }
}
