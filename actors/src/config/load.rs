//! Reading the config file: JSON5 through the `config` crate, `${VAR}` expansion with the
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
    /// A setting that is not valid in combination with others, or not supported yet.
    #[error("{0}")]
    Refused(String),
}

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
    let mut value = if text.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Json5))
            .build()
            .map_err(|e| parse_err(format!("not valid JSON5: {e}")))?
            .try_deserialize::<Value>()
            .map_err(|e| parse_err(format!("not valid JSON5: {e}")))?
    };
    if !value.is_object() {
        return Err(parse_err("the top level must be an object".into()));
    }
    expand_vars(&mut value, "", file, env)?;
    typed(value, file)
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
mod tests {
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
}
