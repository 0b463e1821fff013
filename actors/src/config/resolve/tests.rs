//! Precedence and one fixture per error kind.

use super::*;
use std::collections::HashMap;

/// An env lookup over `pairs` (shared by the config test modules).
pub(crate) fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

fn write_cfg(dir: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("openclaw.json");
    std::fs::write(&p, text).unwrap();
    p
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("oc-resolve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn port_precedence_flag_env_file_default() {
    let d = tmp("port");
    let cfg = write_cfg(&d, r#"{"gateway":{"port":20000}}"#);
    let inputs = |port| Inputs {
        config: Some(cfg.clone()),
        port,
        ..Default::default()
    };
    let home = d.to_str().unwrap();
    let env = env_of(&[("HOME", home), ("OPENCLAW_GATEWAY_PORT", "20001")]);
    assert_eq!(resolve(&inputs(Some(20002)), &env).unwrap().port, 20002);
    assert_eq!(resolve(&inputs(None), &env).unwrap().port, 20001);
    let env = env_of(&[("HOME", home)]);
    assert_eq!(resolve(&inputs(None), &env).unwrap().port, 20000);
    let none = Inputs {
        ..Default::default()
    };
    let env = env_of(&[
        ("HOME", home),
        ("OPENCLAW_STATE_DIR", d.join("empty").to_str().unwrap()),
    ]);
    assert_eq!(resolve(&none, &env).unwrap().port, 18789);
    let dev = Inputs {
        dev: true,
        ..Default::default()
    };
    let env = env_of(&[("HOME", home)]);
    let s = resolve(&dev, &env).unwrap();
    assert_eq!(s.port, 19001);
    assert_eq!(s.paths.state_dir, d.join(".openclaw-dev"));
}

#[test]
fn token_precedence_and_masking() {
    let d = tmp("token");
    let cfg = write_cfg(&d, r#"{"gateway":{"auth":{"token":"from-file"}}}"#);
    let home = d.to_str().unwrap();
    let base = Inputs {
        config: Some(cfg),
        ..Default::default()
    };
    let env = env_of(&[("HOME", home), ("OPENCLAW_GATEWAY_TOKEN", "from-env")]);
    let with_flag = Inputs {
        token: Some(Secret::new("from-flag")),
        ..base.clone()
    };
    let s = resolve(&with_flag, &env).unwrap();
    assert_eq!(s.auth.token.as_ref().unwrap().expose(), "from-flag");
    assert_eq!(s.auth.source, Source::Flag("--token"));
    let s = resolve(&base, &env).unwrap();
    assert_eq!(s.auth.token.as_ref().unwrap().expose(), "from-env");
    let s = resolve(&base, &env_of(&[("HOME", home)])).unwrap();
    assert_eq!(s.auth.token.as_ref().unwrap().expose(), "from-file");
    assert!(
        !format!("{s:?}").contains("from-file"),
        "Debug must mask secrets"
    );
    let json = serde_json::to_string(&s.file).unwrap();
    assert!(!json.contains("from-file"), "{json}");
}

#[test]
fn paths_follow_profile_and_env() {
    let env = env_of(&[("HOME", "/h")]);
    let p = resolve_paths(None, Some("work"), false, &env).unwrap();
    assert_eq!(p.state_dir, PathBuf::from("/h/.openclaw-work"));
    assert_eq!(
        p.config_path,
        PathBuf::from("/h/.openclaw-work/openclaw.json")
    );
    let env = env_of(&[
        ("HOME", "/h"),
        ("OPENCLAW_STATE_DIR", "/s"),
        ("OPENCLAW_CONFIG_PATH", "/c.json"),
    ]);
    let p = resolve_paths(None, None, false, &env).unwrap();
    assert_eq!(
        (p.state_dir, p.config_path),
        (PathBuf::from("/s"), PathBuf::from("/c.json"))
    );
    let p = resolve_paths(Some(Path::new("/flag.json")), None, false, &env).unwrap();
    assert_eq!(p.config_path, PathBuf::from("/flag.json"));
    assert!(resolve_paths(None, Some("../x"), false, &env).is_err());
}

#[test]
fn secret_rules_table() {
    let cases = [
        ("Abcdefghij0123456789Abcdefghij01", true),
        ("short1", false),
        ("abcdefghijabcdefghijabcdefghijabcdef", false),
        ("01234567890123456789012345678901234", false),
        ("Abcdefghij0123456789Abcdefghij01-", false),
    ];
    for (s, ok) in cases {
        assert_eq!(validate_secret(s, 32, true).is_ok(), ok, "{s}");
    }
    assert!(validate_secret("abc", 3, false).is_ok());
}

/// Every `err-*.json5` fixture must fail with the text on its `// expect:` line, and every
/// `ok-*.json5` fixture (and the shipped examples) must resolve.
#[test]
fn fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/config");
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for e in std::fs::read_dir(&examples).unwrap() {
        entries.push(e.unwrap().path());
    }
    let home = tmp("fixtures");
    let env = env_of(&[
        ("HOME", home.to_str().unwrap()),
        ("FIXTURE_TOKEN", "Abcdefghij0123456789Abcdefghij01"),
        ("GATEWAY_TOKEN", "Zyxwvutsrq9876543210Zyxwvutsrq98"),
    ]);
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".json5") && !name.ends_with(".json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("// expect:"))
            .map(str::trim);
        let inputs = Inputs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let got = resolve(&inputs, &env);
        match expect {
            Some(want) => {
                let err = got.expect_err(&name).to_string();
                assert!(
                    err.contains(want),
                    "{name}: {err:?} should contain {want:?}"
                );
                assert!(
                    err.contains(&*path.to_string_lossy())
                        || err.contains("env ")
                        || err.contains("flag "),
                    "{name}: error must name its source: {err}"
                );
                assert!(
                    !err.contains("SuperSecretValue"),
                    "{name}: error leaks a secret: {err}"
                );
            }
            None => {
                got.unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
        seen += 1;
    }
    assert!(
        seen >= 10,
        "expected the fixture list to be populated, saw {seen}"
    );
}

fn fake_host(addrs: &'static [&'static str], container: bool) -> HostInfo {
    HostInfo {
        addrs: Box::new(move || addrs.iter().map(|a| a.parse().unwrap()).collect()),
        in_container: Box::new(move || container),
    }
}

#[test]
fn bind_modes_table() {
    let d = tmp("bind");
    let home = d.to_str().unwrap().to_string();
    let env = env_of(&[
        ("HOME", &home),
        ("OPENCLAW_GATEWAY_TOKEN", "Abcdefghij0123456789Abcdefghij01"),
    ]);
    let tail = fake_host(
        &["127.0.0.1", "192.168.1.4", "100.101.102.103", "fe80::1"],
        false,
    );
    let none = fake_host(&["127.0.0.1", "192.168.1.4"], false);
    let boxed = fake_host(&["127.0.0.1"], true);
    // (bind, host, mode, exposed, listen addresses)
    let cases: Vec<(&str, &HostInfo, &str, bool, Vec<&str>)> = vec![
        (
            "loopback",
            &none,
            "loopback",
            false,
            vec!["127.0.0.1:7000", "[::1]:7000"],
        ),
        ("lan", &none, "lan", true, vec!["0.0.0.0:7000", "[::]:7000"]),
        (
            "tailnet",
            &tail,
            "tailnet",
            true,
            vec!["100.101.102.103:7000", "127.0.0.1:7000", "[::1]:7000"],
        ),
        (
            "tailnet",
            &none,
            "tailnet",
            false,
            vec!["127.0.0.1:7000", "[::1]:7000"],
        ),
        (
            "auto",
            &none,
            "auto",
            false,
            vec!["127.0.0.1:7000", "[::1]:7000"],
        ),
        (
            "auto",
            &boxed,
            "auto",
            true,
            vec!["0.0.0.0:7000", "[::]:7000"],
        ),
        (
            "198.18.0.1",
            &none,
            "custom",
            true,
            vec!["198.18.0.1:7000", "127.0.0.1:7000"],
        ),
        ("127.0.0.2", &none, "custom", false, vec!["127.0.0.2:7000"]),
        ("0.0.0.0", &none, "custom", true, vec!["0.0.0.0:7000"]),
        (
            "2001:db8::7",
            &none,
            "custom",
            true,
            vec!["[2001:db8::7]:7000", "127.0.0.1:7000"],
        ),
    ];
    for (bind, host, mode, exposed, listen) in cases {
        let inputs = Inputs {
            bind: Some(bind.to_string()),
            port: Some(7000),
            ..Default::default()
        };
        let s = resolve_with(&inputs, &env, host).unwrap_or_else(|e| panic!("{bind}: {e}"));
        assert_eq!(s.bind.mode, mode, "{bind}");
        assert_eq!(s.bind.exposed, exposed, "{bind}");
        let got: Vec<String> = s.listen.iter().map(|a| a.to_string()).collect();
        assert_eq!(got, listen, "{bind}");
        // Exposed gateways get the request rate limit by default; loopback ones do not.
        assert_eq!(s.policy.rate.is_some(), exposed, "{bind}");
        assert!(s.optional_listen.iter().all(|a| a.is_ipv6()), "{bind}");
    }
    let s = resolve_with(
        &Inputs {
            bind: Some("tailnet".into()),
            ..Default::default()
        },
        &env,
        &none,
    )
    .unwrap();
    assert!(s.bind.warning.unwrap().contains("no Tailscale address"));
}

#[test]
fn exposure_needs_auth_and_strong_secrets() {
    let d = tmp("expose");
    let home = d.to_str().unwrap().to_string();
    let host = fake_host(&["127.0.0.1"], false);
    let lan = |auth: Option<&str>, token: Option<&str>| Inputs {
        bind: Some("lan".into()),
        auth: auth.map(str::to_string),
        token: token.map(|t| Secret::new(t.to_string())),
        port: Some(18789),
        ..Default::default()
    };
    let env = env_of(&[("HOME", &home)]);
    for (inputs, want) in [
        (
            lan(Some("none"), None),
            "refusing to bind gateway to 0.0.0.0:18789 without auth",
        ),
        (
            lan(None, None),
            "refusing to bind gateway to 0.0.0.0:18789 without auth",
        ),
        (lan(None, Some("short1")), "tokenValidation.minLength"),
        (
            lan(None, Some("abcdefghijabcdefghijabcdefghijabcd")),
            "requireAlphanumeric",
        ),
        (
            lan(None, Some("0123456789012345678901234567890123")),
            "requireAlphanumeric",
        ),
    ] {
        let err = resolve_with(&inputs, &env, &host).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
        assert!(
            !err.contains("short1") && !err.contains("abcdefghijabcdefghij"),
            "secret leaked: {err}"
        );
    }
    assert!(resolve_with(
        &lan(None, Some("Abcdefghij0123456789Abcdefghij01")),
        &env,
        &host
    )
    .is_ok());
    // Loopback keeps working with a weak token (no rules unless configured).
    let weak = Inputs {
        token: Some(Secret::new("short1".to_string())),
        ..Default::default()
    };
    assert!(resolve_with(&weak, &env, &host).is_ok());
}

#[test]
fn rate_limit_spellings() {
    let d = tmp("rate");
    let host = fake_host(&["127.0.0.1"], false);
    let env_home = d.to_str().unwrap().to_string();
    let env = env_of(&[("HOME", &env_home)]);
    let run = |text: &str| {
        let cfg = write_cfg(&d, text);
        let inputs = Inputs {
            config: Some(cfg),
            ..Default::default()
        };
        resolve_with(&inputs, &env, &host).map(|s| (s.policy.rate, s.lockout))
    };
    let (rate, lockout) =
        run(r#"{gateway:{auth:{rateLimit:{maxRequests:5, windowMs:1000}}}}"#).unwrap();
    let rate = rate.unwrap();
    assert_eq!((rate.max_requests, rate.window.as_millis()), (5, 1000));
    assert_eq!(rate.max_connections, 10);
    // The shared windowMs also sets the lockout window; lockout stays on.
    assert_eq!(lockout.unwrap().window.as_millis(), 1000);
    let (rate, _) =
        run(r#"{gateway:{rateLimit:{maxConnections:3, exemptLoopback:true}}}"#).unwrap();
    let rate = rate.unwrap();
    assert_eq!(
        (
            rate.max_requests,
            rate.max_connections,
            rate.exempt_loopback
        ),
        (100, 3, true)
    );
    assert_eq!(
        run(r#"{gateway:{rateLimit:{enabled:false}}}"#).unwrap().0,
        None
    );
    assert_eq!(
        run(r#"{}"#).unwrap().0,
        None,
        "off on loopback unless configured"
    );
    let same = run(r#"{gateway:{rateLimit:{maxRequests:7},auth:{rateLimit:{maxRequests:7}}}}"#);
    assert_eq!(same.unwrap().0.unwrap().max_requests, 7);
}

#[test]
fn preauth_cap_from_env() {
    let d = tmp("preauth");
    let home = d.to_str().unwrap().to_string();
    let host = fake_host(&["127.0.0.1"], false);
    let get = |v: Option<&str>| {
        let mut pairs = vec![("HOME", home.as_str())];
        if let Some(v) = v {
            pairs.push(("OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP", v));
        }
        resolve_with(&Inputs::default(), &env_of(&pairs), &host)
            .map(|s| s.policy.max_preauth_per_ip)
    };
    assert_eq!(get(None).unwrap(), 32);
    assert_eq!(get(Some("4")).unwrap(), 4);
    let err = get(Some("0")).unwrap_err().to_string();
    assert!(
        err.contains("OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP"),
        "{err}"
    );
}

#[test]
fn audit_rotation_defaults_and_bounds() {
    let d = tmp("audit");
    let host = fake_host(&["127.0.0.1"], false);
    let env_home = d.to_str().unwrap().to_string();
    let env = env_of(&[("HOME", &env_home)]);
    let run = |text: &str| {
        let cfg = write_cfg(&d, text);
        let inputs = Inputs {
            config: Some(cfg),
            ..Default::default()
        };
        resolve_with(&inputs, &env, &host).map(|s| s.audit_rotation)
    };
    let r = run("{}").unwrap();
    assert_eq!((r.max_bytes, r.keep), (64 * 1024 * 1024, 10));
    let r = run("{audit:{maxBytes:8192, keep:3}}").unwrap();
    assert_eq!((r.max_bytes, r.keep), (8192, 3));
    let err = run("{audit:{maxBytes:100}}").unwrap_err().to_string();
    for want in [
        "openclaw.json",
        "audit.maxBytes",
        "at least 4096",
        "100",
        "remove the key",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    let err = run("{audit:{keep:0}}").unwrap_err().to_string();
    assert!(
        err.contains("audit.keep") && err.contains("at least 1"),
        "{err}"
    );
    let err = run("{audit:{maxbytes:8192}}").unwrap_err().to_string();
    assert!(err.contains("maxbytes"), "unknown keys are refused: {err}");
}

#[test]
fn placeholder_secrets_are_refused_on_loopback_too() {
    let d = tmp("placeholder");
    let home = d.to_str().unwrap().to_string();
    let host = fake_host(&["127.0.0.1"], false);
    let env = env_of(&[("HOME", &home)]);
    let placeholders = [
        "change-me-now",
        "change-me-to-a-long-random-token",
        "CHANGE-ME-TO-A-STRONG-PASSWORD",
        "undefined",
        " null ",
        "",
        "   ",
    ];
    for p in placeholders {
        // as a flag, a token and a password
        for (inputs, src) in [
            (
                Inputs {
                    token: Some(Secret::new(p.to_string())),
                    ..Default::default()
                },
                "--token",
            ),
            (
                Inputs {
                    password: Some(Secret::new(p.to_string())),
                    ..Default::default()
                },
                "--password",
            ),
        ] {
            let err = resolve_with(&inputs, &env, &host).unwrap_err().to_string();
            assert!(
                err.contains("published example placeholder") && err.contains(src),
                "{p:?}: {err}"
            );
            assert!(err.contains("openclaw token generate"), "{err}");
        }
        // from the file, naming the key
        let cfg = write_cfg(
            &d,
            &format!(r#"{{"gateway":{{"auth":{{"token":{}}}}}}}"#, json_str(p)),
        );
        let inputs = Inputs {
            config: Some(cfg.clone()),
            ..Default::default()
        };
        let err = resolve_with(&inputs, &env, &host).unwrap_err().to_string();
        assert!(err.contains("gateway.auth.token"), "{p:?}: {err}");
    }
    // From the environment: whitespace or a placeholder is refused, empty counts as unset.
    let refused = env_of(&[("HOME", &home), ("OPENCLAW_GATEWAY_TOKEN", "change-me-now")]);
    let err = resolve_with(&Inputs::default(), &refused, &host)
        .unwrap_err()
        .to_string();
    assert!(err.contains("OPENCLAW_GATEWAY_TOKEN"), "{err}");
    let empty = env_of(&[("HOME", &home), ("OPENCLAW_GATEWAY_TOKEN", "")]);
    assert!(resolve_with(&Inputs::default(), &empty, &host).is_ok());
    // A real secret that merely contains a placeholder is fine.
    let fine = Inputs {
        token: Some(Secret::new("change-me-now-Xq7d9f2k".to_string())),
        ..Default::default()
    };
    assert!(resolve_with(&fine, &env, &host).is_ok());
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}
