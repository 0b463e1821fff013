//! Reading the config file: JSON5 (nesting bounded before parsing), `${VAR}` expansion with the
//! key path, then typed deserialization that names the dotted path of any bad key.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::schema::FileConfig;

/// A config problem. Every variant names the file; none prints a secret value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or is not valid JSON5.
    #[error("{file}: {msg}")]
    Parse {
        /// The config file.
        file: PathBuf,
        /// What the parser said.
        msg: String,
    },
    /// A key the schema does not know.
    #[error("{file}: unknown config key `{path}` (check the spelling; keys are camelCase)")]
    UnknownKey {
        /// The config file.
        file: PathBuf,
        /// Dotted path of the key.
        path: String,
    },
    /// A value of the wrong type or out of range.
    #[error("{file}: invalid value for `{path}`: {msg}")]
    Invalid {
        /// The config file (or the flag/env var that set the value).
        file: PathBuf,
        /// Dotted path of the key.
        path: String,
        /// What is wrong and how to fix it.
        msg: String,
    },
    /// `${VAR}` names an unset environment variable.
    #[error("{file}: `{path}` uses ${{{var}}} but the environment variable {var} is not set (export it, or write the value into the file)")]
    MissingVar {
        /// The config file.
        file: PathBuf,
        /// Dotted path of the key.
        path: String,
        /// The variable name.
        var: String,
    },
    /// `[`/`{` nested deeper than [`MAX_NESTING`]: refused before parsing, because the
    /// JSON5 parser and the typed conversion recurse once per level and would overflow the
    /// stack (about 80 levels on a 2 MiB runtime worker) instead of failing.
    #[error("{file}: line {line}: arrays/objects nested deeper than {limit} levels (no valid config needs more than a few; remove the extra `[`/`{{` nesting)")]
    TooDeep {
        /// The config file.
        file: PathBuf,
        /// 1-based line of the bracket that crosses the limit.
        line: usize,
        /// The limit ([`MAX_NESTING`]).
        limit: usize,
    },
    /// A setting that is not valid in combination with others, or not supported yet.
    #[error("{0}")]
    Refused(String),
}

/// Deepest `[`/`{` nesting a config file may have. The full schema nests 5 levels (the
/// top-level object, then `gateway.nodes.commands.allow[]`; see
/// `tests/fixtures/config/ok-full-schema.json5`); 32 leaves ample headroom and stays far
/// below the depth at which parsing overflows a runtime worker's stack (about 80).
pub const MAX_NESTING: usize = 32;

/// Loads and types the file at `path`, expanding `${VAR}` through `env`.
pub fn load_file(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Parse {
        file: path.to_path_buf(),
        msg: format!("cannot read config file: {e}"),
    })?;
    parse_str(&text, path, env)
}

/// Parses config text (`file` is used in errors only).
pub fn parse_str(
    text: &str,
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<FileConfig, ConfigError> {
    let parse_err = |msg: String| ConfigError::Parse {
        file: file.to_path_buf(),
        msg,
    };
    if let Some(line) = nesting_exceeds(text, MAX_NESTING) {
        return Err(ConfigError::TooDeep {
            file: file.to_path_buf(),
            line,
            limit: MAX_NESTING,
        });
    }
    let mut value = if text.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        // Straight to a value: the `config` crate used before read top-level keys as path
        // expressions, so `"a.b.c…"` nested without brackets (and overflowed the stack).
        json5::from_str::<Value>(text).map_err(|e| parse_err(format!("not valid JSON5: {e}")))?
    };
    if !value.is_object() {
        return Err(parse_err("the top level must be an object".into()));
    }
    expand_vars(&mut value, "", file, env)?;
    typed(value, file)
}

/// The 1-based line on which the `[`/`{` nesting of JSON5 `text` first exceeds `limit`, or
/// `None`. Brackets inside strings (single or double quoted, with `\` escapes) and inside
/// `//` and `/* */` comments do not count; unbalanced closers never take the depth below 0.
/// Linear in the text and non-recursive, so it is safe on any input.
pub fn nesting_exceeds(text: &str, limit: usize) -> Option<usize> {
    let b = text.as_bytes();
    let (mut i, mut depth, mut line) = (0, 0usize, 1usize);
    while i < b.len() {
        match b[i] {
            b'\n' => line += 1,
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        i += 1; // the escaped byte, which may be a line continuation
                    }
                    if b.get(i) == Some(&b'\n') {
                        line += 1;
                    }
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i + 1 < b.len() && !ends_line(&b[i + 1..]) {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    if b[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i += 1; // now on the closing `/` (or past the end)
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Some(line);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether `rest` starts with a JSON5 line terminator, which ends a `//` comment: `\n`, `\r`,
/// U+2028 or U+2029 (a comment that ran to `\n` only hid `//\r[[[…` from the scan; found
/// by replaying the config fuzz corpus on a 2 MiB stack).
fn ends_line(rest: &[u8]) -> bool {
    matches!(rest, [b'\n' | b'\r', ..] | [0xE2, 0x80, 0xA8 | 0xA9, ..])
}

/// Expands `${VAR}` in every string, in place.
fn expand_vars(
    v: &mut Value,
    path: &str,
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    match v {
        Value::String(s) if s.contains("${") => {
            *s = expand_str(s, |var| {
                env(var).ok_or_else(|| ConfigError::MissingVar {
                    file: file.to_path_buf(),
                    path: path.to_string(),
                    var: var.to_string(),
                })
            })?;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_vars(item, &format!("{path}[{i}]"), file, env)?;
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                expand_vars(item, &p, file, env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Replaces each `${NAME}` (NAME = `[A-Za-z_][A-Za-z0-9_]*`) using `lookup`; other text,
/// including a lone `$` or an unterminated `${`, is kept as is.
pub fn expand_str<E>(
    s: &str,
    mut lookup: impl FnMut(&str) -> Result<String, E>,
) -> Result<String, E> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) if is_var_name(&after[..end]) => {
                out.push_str(&lookup(&after[..end])?);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_var_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn typed(value: Value, file: &Path) -> Result<FileConfig, ConfigError> {
    serde_path_to_error::deserialize::<_, FileConfig>(value).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.inner().to_string();
        if let Some(field) = msg
            .strip_prefix("unknown field `")
            .and_then(|m| m.split('`').next())
        {
            // serde_path_to_error's path already ends with the unknown key.
            let full = if path == "." || path.is_empty() {
                field.to_string()
            } else if path == field || path.ends_with(&format!(".{field}")) {
                path.clone()
            } else {
                format!("{path}.{field}")
            };
            ConfigError::UnknownKey {
                file: file.to_path_buf(),
                path: full,
            }
        } else {
            ConfigError::Invalid {
                file: file.to_path_buf(),
                path,
                msg,
            }
        }
    })
}

/// SHA-256 (hex) of the config file's bytes; the hash of no bytes when it cannot be read.
/// `config.get` reports it, and the Reloader compares it to notice edits.
pub fn file_hash(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let raw = std::fs::read(path).unwrap_or_default();
    Sha256::digest(&raw)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests;
