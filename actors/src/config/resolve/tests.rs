//! Precedence and one fixture per error kind.

use super::*;
use std::collections::HashMap;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
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
