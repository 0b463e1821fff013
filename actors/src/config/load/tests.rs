//! Tests of config loading: `${VAR}` expansion, key paths, and the nesting bound.

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn expand_table() {
    let env = |v: &str| match v {
        "A" => Ok::<_, String>("1".to_string()),
        "LONG_NAME_2" => Ok("two".to_string()),
        other => Err(other.to_string()),
    };
    let cases = [
        ("plain", Ok("plain")),
        ("${A}", Ok("1")),
        ("x${A}y${LONG_NAME_2}z", Ok("x1ytwoz")),
        ("cost $5", Ok("cost $5")),
        ("${not closed", Ok("${not closed")),
        ("${1BAD}", Ok("${1BAD}")),
        ("${MISSING}", Err("MISSING")),
    ];
    for (input, want) in cases {
        let got = expand_str(input, env);
        assert_eq!(got.as_deref().map_err(|e| e.as_str()), want, "{input}");
    }
}

#[test]
fn camel_case_survives_the_config_crate() {
    let text = r#"{ gateway: { rateLimit: { maxRequests: 7, windowMs: 1000 },
                    auth: { rateLimit: { maxAttempts: 3 } } } // comment
                  }"#;
    let c = parse_str(text, Path::new("t.json5"), &no_env).unwrap();
    assert_eq!(c.gateway.rate_limit.unwrap().max_requests, Some(7));
    assert_eq!(c.gateway.auth.rate_limit.unwrap().max_attempts, Some(3));
}

#[test]
fn unknown_key_names_dotted_path() {
    let text = r#"{"gateway":{"auth":{"tokn":"x"}}}"#;
    match parse_str(text, Path::new("f.json"), &no_env) {
        Err(ConfigError::UnknownKey { path, .. }) => assert_eq!(path, "gateway.auth.tokn"),
        other => panic!("{other:?}"),
    }
    match parse_str(r#"{"gatway":{}}"#, Path::new("f.json"), &no_env) {
        Err(ConfigError::UnknownKey { path, .. }) => assert_eq!(path, "gatway"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_var_names_key_and_var() {
    let text = r#"{"gateway":{"auth":{"token":"${NOPE_TOKEN}"}}}"#;
    let e = parse_str(text, Path::new("f.json"), &no_env).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("gateway.auth.token") && msg.contains("NOPE_TOKEN"),
        "{msg}"
    );
}

#[test]
fn nesting_scanner_table() {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let cases: Vec<(String, usize, Option<usize>)> = vec![
        ("{}".into(), 1, None),
        ("{a:[{}]}".into(), 3, None),
        ("{a:[{}]}".into(), 2, Some(1)),
        (deep(32), 32, None),
        (deep(33), 32, Some(1)),
        // brackets in strings, with escaped quotes, do not count
        (r#"{a:"[[[[\"[[[[", b:'{{{\'{{{'}"#.into(), 1, None),
        // nor in comments
        ("{ // [[[[\n /* {{{{\n[[[ */ a: 1 }".into(), 1, None),
        // a line comment ends at any JSON5 line terminator, not only \n
        ("{ // c\r[[".into(), 2, Some(1)),
        ("{ // c\u{2028}[[".into(), 2, Some(1)),
        ("{ // c\u{2029}[[".into(), 2, Some(1)),
        ("{ // c\u{2027}[[\n".into(), 2, None),
        // a line continuation inside a string counts as a line
        ("{a:'x\\\ny',\n b:[[]]}".into(), 2, Some(3)),
        // `/` that starts no comment, lone closers, unterminated strings and comments
        ("{a: 1/2, b: [[]]}".into(), 2, Some(1)),
        ("]]]]}}}}[[".into(), 1, Some(1)),
        ("{a:'[[[[".into(), 1, None),
        ("{/* [[[[".into(), 1, None),
        ("{a:\"\\".into(), 1, None),
        ("\n\n{\n[\n[".into(), 2, Some(5)),
    ];
    for (text, limit, want) in cases {
        assert_eq!(
            nesting_exceeds(&text, limit),
            want,
            "{text:?} limit {limit}"
        );
    }
}

#[test]
fn too_deep_is_refused_with_file_line_and_limit() {
    // 200 deep used to overflow the stack (the main thread's at start-up, a worker's at
    // hot reload from ~80); refused before the parser recurses.
    for depth in [33, 100, 200, 10_000] {
        let text = format!("{{\n  x: {}{}\n}}", "[".repeat(depth), "]".repeat(depth));
        let e = parse_str(&text, Path::new("/etc/deep.json5"), &no_env).unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::TooDeep {
                    line: 2,
                    limit: 32,
                    ..
                }
            ),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with("/etc/deep.json5: line 2: ") && msg.contains("deeper than 32"),
            "{msg}"
        );
    }
    let ok = format!("{{ x: {}{} }}", "[".repeat(31), "]".repeat(31));
    assert!(parse_str(&ok, Path::new("ok.json5"), &no_env)
        .is_err_and(|e| matches!(e, ConfigError::UnknownKey { .. })));
}

#[test]
fn dotted_keys_are_plain_keys() {
    // The `config` crate read top-level keys as path expressions (`"a.b"` => {a:{b}}), so a
    // long dotted key nested without a single bracket and overflowed the stack.
    let key = vec!["a"; 5_000].join(".");
    let text = format!("{{ \"{key}\": 1 }}");
    match parse_str(&text, Path::new("k.json5"), &no_env) {
        Err(ConfigError::UnknownKey { path, .. }) => assert_eq!(path, key),
        other => panic!("{other:?}"),
    }
    match parse_str(r#"{ "gateway.port": 1 }"#, Path::new("k.json5"), &no_env) {
        Err(ConfigError::UnknownKey { path, .. }) => assert_eq!(path, "gateway.port"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn brackets_after_a_comment_ended_by_cr_are_counted() {
    // Found by replaying the config fuzz corpus on a test thread's 2 MiB stack: the scanner
    // ended `//` comments at `\n` only, so 2,000 brackets after `//\r` reached the parser.
    let text = format!("{{ //\r x: {}{} }}", "[".repeat(10_000), "]".repeat(10_000));
    let e = parse_str(&text, Path::new("cr.json5"), &no_env).unwrap_err();
    assert!(matches!(e, ConfigError::TooDeep { .. }), "{e:?}");
}
