//! The pure half of `openclaw token rotate` for a token written into the config file: find
//! the old literal as the whole quoted value of a `token` key and swap it, leaving every
//! other byte alone; and name the `${VAR}`s a raw value uses. No I/O.

use std::fmt;

/// Why the old token cannot be replaced in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaceError {
    /// The literal is not in the text, or not as the whole quoted value of a `token` key
    /// (written with escapes, or split by the JSON5 syntax).
    NotFound,
    /// The literal appears this many times (e.g. also as `gateway.remote.token`).
    Ambiguous(usize),
}

// === impl ReplaceError ===

impl fmt::Display for ReplaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplaceError::NotFound => f.write_str(
                "the token is not written there as one plain quoted value of `token:` \
                 (escapes or string concatenation?)",
            ),
            ReplaceError::Ambiguous(n) => write!(
                f,
                "the token's text appears {n} times in the file (also as gateway.remote.token, \
                 or in a comment?), so which one to replace is not clear"
            ),
        }
    }
}

/// Replaces the one occurrence of `old` in `text` by `new`. The occurrence must be the
/// whole value of a `token` key, quoted with `"` or `'` (`token: "old"`, `"token":'old'`),
/// and `old` must appear nowhere else in the text, or nothing is replaced.
pub fn replace_token_literal(text: &str, old: &str, new: &str) -> Result<String, ReplaceError> {
    if old.is_empty() {
        return Err(ReplaceError::NotFound);
    }
    let hits: Vec<usize> = text.match_indices(old).map(|(i, _)| i).collect();
    let at = match hits.as_slice() {
        [] => return Err(ReplaceError::NotFound),
        [one] => *one,
        many => return Err(ReplaceError::Ambiguous(many.len())),
    };
    let end = at + old.len();
    let open = text[..at].chars().next_back();
    let close = text[end..].chars().next();
    let quoted = matches!(open, Some('"' | '\'')) && open == close;
    if !quoted || !is_token_key(&text[..at - 1]) {
        return Err(ReplaceError::NotFound);
    }
    Ok(format!("{}{new}{}", &text[..at], &text[end..]))
}

/// Whether `before` (the text up to the opening quote) ends with a `token` key and its
/// colon: `token:`, `"token" :`, `'token':`.
fn is_token_key(before: &str) -> bool {
    let Some(key) = before.trim_end().strip_suffix(':') else {
        return false;
    };
    let key = key.trim_end();
    let bare = key
        .strip_suffix(['"', '\''])
        .unwrap_or(key)
        .trim_end_matches(|c: char| c.is_whitespace());
    let Some(rest) = bare.strip_suffix("token") else {
        return false;
    };
    // `token` must be the whole key, not the end of `remoteToken` or `xtoken`.
    !rest
        .chars()
        .next_back()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// The `${VAR}` names in a raw config value, in order (empty: a plain literal).
pub fn env_vars(raw: &str) -> Vec<String> {
    let mut vars = Vec::new();
    let _ = openclaw_actors::config::load::expand_str(raw, |v| {
        vars.push(v.to_string());
        Ok::<_, ()>(String::new())
    });
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "oldTok3nValue0123456789abcdefghijklmnop";

    #[test]
    fn replaces_only_the_token_value_byte_for_byte() {
        let cases = [
            format!("{{gateway:{{auth:{{token:\"{OLD}\"}}}}}}"),
            format!("// my gateway\n{{\n  gateway: {{\n    port: 18789,\n    auth: {{ mode: 'token', token: '{OLD}' }}, // keep\n  }},\n}}\n"),
            format!("{{\"gateway\": {{\"auth\": {{\"token\" : \"{OLD}\"}}}}}}\r\n"),
        ];
        for text in cases {
            let out = replace_token_literal(&text, OLD, "NEW").unwrap();
            assert_eq!(out, text.replace(OLD, "NEW"), "{text}");
            assert_eq!(out.len(), text.len() - OLD.len() + 3);
        }
    }

    #[test]
    fn refuses_what_is_not_exactly_one_token_value() {
        let twice = format!("{{gateway:{{auth:{{token:\"{OLD}\"}}, remote:{{token:\"{OLD}\"}}}}}}");
        let cases = [
            (
                format!("{{gateway:{{auth:{{token:\"x{OLD}\"}}}}}}"),
                ReplaceError::NotFound,
            ),
            (
                format!("{{gateway:{{auth:{{token:\"{OLD}x\"}}}}}}"),
                ReplaceError::NotFound,
            ),
            (
                format!("{{gateway:{{remote:{{url:\"{OLD}\"}}}}}}"),
                ReplaceError::NotFound,
            ),
            (
                format!("{{gateway:{{auth:{{myToken:\"{OLD}\"}}}}}}"),
                ReplaceError::NotFound,
            ),
            (
                format!("{{gateway:{{auth:{{token:\"{OLD}'}}}}}}"),
                ReplaceError::NotFound,
            ),
            (
                "{gateway:{auth:{token:\"a\\u0062c\"}}}".to_string(),
                ReplaceError::NotFound,
            ),
            (twice, ReplaceError::Ambiguous(2)),
            (
                format!("// was {OLD}\n{{gateway:{{auth:{{token:'{OLD}'}}}}}}"),
                ReplaceError::Ambiguous(2),
            ),
            ("{}".to_string(), ReplaceError::NotFound),
        ];
        for (text, want) in cases {
            assert_eq!(
                replace_token_literal(&text, OLD, "NEW"),
                Err(want),
                "{text}"
            );
        }
        assert_eq!(
            replace_token_literal("{token:\"\"}", "", "NEW"),
            Err(ReplaceError::NotFound)
        );
    }

    #[test]
    fn names_the_variables_of_a_raw_value() {
        assert_eq!(env_vars("${GW_TOKEN}"), vec!["GW_TOKEN"]);
        assert_eq!(env_vars("pre-${A}-${B_2}"), vec!["A", "B_2"]);
        assert!(env_vars("plainLiteral123").is_empty());
        assert!(env_vars("cost$5 ${ not a var").is_empty());
    }
}
