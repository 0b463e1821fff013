//! `gateway.tailscale` (REMOTE-ACCESS-REFERENCE §2.1, §2.3): the mode (`--tailscale` over
//! the file), whether Tailscale identity auth is on, where the `tailscale` program is, and
//! the start-up refusals: funnel needs password auth, serve/funnel need a loopback bind, serve
//! cannot run with auth `none`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::bind::BindPlan;
use super::resolve::{AuthSettings, Inputs};
use super::schema::FileConfig;
use super::{AuthMode, ConfigError};
use crate::tailscale::parse::Mode;

/// How long start-up waits for a daemon that says `NoState`/`Starting`.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Resolved Tailscale settings (only when the mode is `serve` or `funnel`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailscaleSettings {
    /// Serve or funnel.
    pub mode: Mode,
    /// Verify `Tailscale-User-Login` with `tailscale whois` (serve mode only).
    pub identity_auth: bool,
    /// The `tailscale` program (found on PATH; `tailscale` when not found, which fails at
    /// start-up with a clear message).
    pub binary: PathBuf,
    /// How long to wait for the daemon (`OPENCLAW_TAILSCALE_READY_TIMEOUT_MS`, default 90 s).
    pub ready_timeout: Duration,
}

fn refused(cfg: &Path, msg: String) -> ConfigError {
    ConfigError::Refused(format!("{}: {msg}", cfg.display()))
}

/// Resolves `gateway.tailscale` and `--tailscale`.
pub fn resolve_tailscale(
    inputs: &Inputs,
    file: &FileConfig,
    cfg: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    bind: &BindPlan,
    auth: &AuthSettings,
) -> Result<Option<TailscaleSettings>, ConfigError> {
    let t = file.gateway.tailscale.clone().unwrap_or_default();
    let (raw, source) = match &inputs.tailscale {
        Some(m) => (Some(m.clone()), "flag --tailscale"),
        None => (t.mode.clone(), "gateway.tailscale.mode"),
    };
    let mode = match raw.as_deref().map(str::trim) {
        None | Some("off") => None,
        Some("serve") => Some(Mode::Serve),
        Some("funnel") => Some(Mode::Funnel),
        Some(other) => {
            return Err(refused(
                cfg,
                format!("{source} is {other:?}; use \"off\", \"serve\" or \"funnel\""),
            ))
        }
    };
    let ts_auth = t.auth.as_ref().and_then(|a| a.enabled);
    let Some(mode) = mode else {
        if ts_auth == Some(true) {
            return Err(refused(
                cfg,
                "gateway.tailscale.auth.enabled needs gateway.tailscale.mode \"serve\" (identity \
                 headers are trusted only on the listener Tailscale Serve proxies to)"
                    .into(),
            ));
        }
        return Ok(None);
    };
    if bind.mode != "loopback" {
        return Err(refused(
            cfg,
            format!(
                "tailscale serve/funnel requires gateway bind=loopback (127.0.0.1); the bind is \
                 {:?} ({}). Remove --bind / gateway.bind, or turn Tailscale off",
                bind.mode, bind.source
            ),
        ));
    }
    match (mode, auth.mode) {
        (Mode::Funnel, m) if m != AuthMode::Password => {
            return Err(refused(
                cfg,
                "tailscale funnel requires gateway auth mode=password (set gateway.auth.password \
                 or OPENCLAW_GATEWAY_PASSWORD): Funnel makes the gateway reachable from the \
                 internet"
                    .into(),
            ))
        }
        (Mode::Serve, AuthMode::None) => {
            return Err(refused(
                cfg,
                "gateway.auth.mode=none cannot be used with gateway.tailscale.mode=serve; \
                 configure token, password, or trusted-proxy auth before exposing the gateway \
                 through Tailscale"
                    .into(),
            ))
        }
        _ => {}
    }
    let default_on =
        mode == Mode::Serve && !matches!(auth.mode, AuthMode::Password | AuthMode::TrustedProxy);
    let identity_auth = match (mode, ts_auth.or(file.gateway.auth.allow_tailscale)) {
        (Mode::Funnel, Some(true)) => {
            return Err(refused(
                cfg,
                "Tailscale identity auth (gateway.tailscale.auth.enabled / \
                 gateway.auth.allowTailscale) cannot be used with funnel: Funnel requests come \
                 from the internet and carry no tailnet identity"
                    .into(),
            ))
        }
        (Mode::Funnel, _) => false,
        (Mode::Serve, Some(v)) => v,
        (Mode::Serve, None) => default_on,
    };
    let ready_timeout = match env("OPENCLAW_TAILSCALE_READY_TIMEOUT_MS") {
        Some(v) => Duration::from_millis(v.trim().parse::<u64>().map_err(|_| {
            ConfigError::Refused(format!(
                "env OPENCLAW_TAILSCALE_READY_TIMEOUT_MS={v:?} is not a number of milliseconds"
            ))
        })?),
        None => DEFAULT_READY_TIMEOUT,
    };
    Ok(Some(TailscaleSettings {
        mode,
        identity_auth,
        binary: find_on_path(env("PATH").as_deref(), "tailscale")
            .unwrap_or_else(|| PathBuf::from("tailscale")),
        ready_timeout,
    }))
}

/// The first executable `name` in `path`.
pub fn find_on_path(path: Option<&str>, name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    path?
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::resolve::tests::env_of;
    use crate::config::{resolve_with, HostInfo, Settings};

    fn resolve(
        name: &str,
        text: &str,
        flag: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Result<Settings, String> {
        let d = std::env::temp_dir().join(format!("oc-ts-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let cfg = d.join("openclaw.json");
        std::fs::write(&cfg, text).unwrap();
        let home = d.to_str().unwrap().to_string();
        let mut pairs = vec![
            ("HOME", home.as_str()),
            (
                "OPENCLAW_GATEWAY_TOKEN",
                "Tok3nAbcdefghijklmnopqrstuvwxyz0123456789",
            ),
        ];
        pairs.extend_from_slice(extra);
        let inputs = Inputs {
            config: Some(cfg),
            tailscale: flag.map(str::to_string),
            ..Default::default()
        };
        let host = HostInfo {
            addrs: Box::new(|| vec!["127.0.0.1".parse().unwrap()]),
            in_container: Box::new(|| false),
        };
        let r = resolve_with(&inputs, &env_of(&pairs), &host).map_err(|e| e.to_string());
        let _ = std::fs::remove_dir_all(&d);
        r
    }

    #[test]
    fn mode_flag_identity_default_and_refusals() {
        let ts = |name, text, flag, extra: &[(&str, &str)]| {
            resolve(name, text, flag, extra).map(|s| s.tailscale)
        };
        assert_eq!(ts("off", "{}", None, &[]).unwrap(), None);
        let serve = ts("serve", "{gateway:{tailscale:{mode:'serve'}}}", None, &[])
            .unwrap()
            .unwrap();
        assert_eq!(
            (serve.mode, serve.identity_auth),
            (Mode::Serve, true),
            "identity auth on by default in serve"
        );
        let flag = ts(
            "flag",
            "{gateway:{tailscale:{mode:'off'}}}",
            Some("serve"),
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(flag.mode, Mode::Serve, "--tailscale wins over the file");
        let off = ts(
            "flagoff",
            "{gateway:{tailscale:{mode:'serve'}}}",
            Some("off"),
            &[],
        )
        .unwrap();
        assert_eq!(off, None);
        let no_id = ts(
            "noid",
            "{gateway:{auth:{allowTailscale:false},tailscale:{mode:'serve'}}}",
            None,
            &[],
        )
        .unwrap()
        .unwrap();
        assert!(!no_id.identity_auth);
        let pw = "{gateway:{auth:{mode:'password',password:'correct-horse-battery-staple-42'},tailscale:{mode:'serve'}}}";
        assert!(
            !ts("pw", pw, None, &[]).unwrap().unwrap().identity_auth,
            "off by default with password auth"
        );
        let funnel = "{gateway:{auth:{mode:'password',password:'correct-horse-battery-staple-42'},tailscale:{mode:'funnel'}}}";
        let f = ts("funnel", funnel, None, &[]).unwrap().unwrap();
        assert_eq!((f.mode, f.identity_auth), (Mode::Funnel, false));
        let t = ts(
            "timeout",
            "{gateway:{tailscale:{mode:'serve'}}}",
            None,
            &[("OPENCLAW_TAILSCALE_READY_TIMEOUT_MS", "1500")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.ready_timeout, Duration::from_millis(1500));
        let refusals = [
            (
                "funneltoken",
                "{gateway:{tailscale:{mode:'funnel'}}}",
                "requires gateway auth mode=password",
            ),
            (
                "bad",
                "{gateway:{tailscale:{mode:'tunnel'}}}",
                "use \"off\", \"serve\" or \"funnel\"",
            ),
            (
                "authoff",
                "{gateway:{tailscale:{auth:{enabled:true}}}}",
                "needs gateway.tailscale.mode \"serve\"",
            ),
            (
                "none",
                "{gateway:{auth:{mode:'none'},tailscale:{mode:'serve'}}}",
                "cannot be used with gateway.tailscale.mode=serve",
            ),
            (
                "lan",
                "{gateway:{bind:'lan',tailscale:{mode:'serve'}}}",
                "requires gateway bind=loopback",
            ),
        ];
        for (name, text, want) in refusals {
            let e = ts(name, text, None, &[]).unwrap_err();
            assert!(e.contains(want), "{name}: {e}");
        }
        let e = ts(
            "funnelid",
            &funnel.replace("mode:'funnel'", "mode:'funnel',auth:{enabled:true}"),
            None,
            &[],
        )
        .unwrap_err();
        assert!(e.contains("cannot be used with funnel"), "{e}");
    }

    #[test]
    fn the_program_is_found_on_path() {
        let d = std::env::temp_dir().join(format!("oc-ts-path-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let exe = d.join("tailscale");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("/nonexistent:{}", d.display());
        assert_eq!(find_on_path(Some(&path), "tailscale"), Some(exe.clone()));
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            find_on_path(Some(&path), "tailscale"),
            None,
            "not executable"
        );
        assert_eq!(find_on_path(None, "tailscale"), None);
        let _ = std::fs::remove_dir_all(&d);
    }
}
