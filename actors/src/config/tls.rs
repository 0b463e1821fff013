//! `gateway.tls` → [`TlsSettings`]: paths (`~` expanded; defaults under
//! `<stateDir>/gateway/tls/`), `autoGenerate` (default true), `minVersion` (`1.3` default,
//! `1.2` allowed). The seed's `cert`/`key` spellings are the same keys as
//! `certPath`/`keyPath`; giving both spellings different values is an error.

use std::path::{Path, PathBuf};

use super::{ConfigError, FileConfig, Paths};
use crate::tls::TlsSettings;

/// The TLS settings, or `None` when `gateway.tls.enabled` is not true.
pub fn resolve_tls(
    file: &FileConfig,
    paths: &Paths,
    cfg: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<TlsSettings>, ConfigError> {
    let Some(t) = file
        .gateway
        .tls
        .as_ref()
        .filter(|t| t.enabled == Some(true))
    else {
        return Ok(None);
    };
    let bad = |key: &str, why: String| {
        ConfigError::Refused(format!("{}: gateway.tls.{key}: {why}", cfg.display()))
    };
    let pick = |a: &Option<String>, b: &Option<String>, key: &str, alias: &str| match (a, b) {
        (Some(x), Some(y)) if x != y => Err(bad(
            key,
            format!("{x:?} and `{alias}` {y:?} disagree (they are the same setting; keep one)"),
        )),
        (Some(x), _) | (None, Some(x)) if x.trim().is_empty() => {
            Err(bad(key, "is empty (give a file path)".into()))
        }
        (Some(x), _) | (None, Some(x)) => Ok(Some(expand_home(x, env))),
        (None, None) => Ok(None),
    };
    let dir = paths.state_dir.join("gateway").join("tls");
    let cert_path = pick(&t.cert_path, &t.cert, "certPath", "cert")?
        .unwrap_or_else(|| dir.join("gateway-cert.pem"));
    let key_path =
        pick(&t.key_path, &t.key, "keyPath", "key")?.unwrap_or_else(|| dir.join("gateway-key.pem"));
    let ca_path = pick(&t.ca_path, &None, "caPath", "caPath")?;
    let allow_tls12 = match t.min_version.as_deref() {
        None | Some("1.3") => false,
        Some("1.2") => true,
        Some(other) => {
            return Err(bad(
                "minVersion",
                format!("{other:?} is not \"1.2\" or \"1.3\""),
            ))
        }
    };
    Ok(Some(TlsSettings {
        cert_path,
        key_path,
        ca_path,
        auto_generate: t.auto_generate.unwrap_or(true),
        allow_tls12,
    }))
}

/// `~` and `~/…` against `HOME`.
fn expand_home(p: &str, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    let p = p.trim();
    match (p.strip_prefix('~'), env("HOME")) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            PathBuf::from(format!("{home}{rest}"))
        }
        _ => PathBuf::from(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<Option<TlsSettings>, String> {
        let none = |_: &str| None;
        let file: FileConfig = super::super::load::parse_str(text, Path::new("t.json"), &none)
            .map_err(|e| e.to_string())?;
        let paths = Paths {
            state_dir: "/state".into(),
            config_path: "/state/openclaw.json".into(),
            profile: None,
        };
        let env = |k: &str| (k == "HOME").then(|| "/home/u".to_string());
        resolve_tls(&file, &paths, Path::new("t.json"), &env).map_err(|e| e.to_string())
    }

    #[test]
    fn table() {
        let off = resolve("{}").unwrap();
        assert!(off.is_none());
        assert!(resolve("{gateway:{tls:{enabled:false}}}")
            .unwrap()
            .is_none());
        let d = resolve("{gateway:{tls:{enabled:true}}}").unwrap().unwrap();
        assert_eq!(
            d.cert_path,
            PathBuf::from("/state/gateway/tls/gateway-cert.pem")
        );
        assert_eq!(
            d.key_path,
            PathBuf::from("/state/gateway/tls/gateway-key.pem")
        );
        assert!(d.auto_generate && !d.allow_tls12 && d.ca_path.is_none());
        let s = resolve(r#"{gateway:{tls:{enabled:true, cert:"~/c.pem", keyPath:"/k.pem", autoGenerate:false, minVersion:"1.2"}}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(s.cert_path, PathBuf::from("/home/u/c.pem"));
        assert_eq!(s.key_path, PathBuf::from("/k.pem"));
        assert!(!s.auto_generate && s.allow_tls12);
        for (text, want) in [
            (
                r#"{gateway:{tls:{enabled:true, cert:"/a", certPath:"/b"}}}"#,
                "disagree",
            ),
            (r#"{gateway:{tls:{enabled:true, keyPath:" "}}}"#, "is empty"),
            (
                r#"{gateway:{tls:{enabled:true, minVersion:"1.1"}}}"#,
                "minVersion",
            ),
            (r#"{gateway:{tls:{enabled:true, bogus:1}}}"#, "bogus"),
        ] {
            let e = resolve(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
