//! What `openclaw nodes` arguments and answers mean, with no I/O: NODE against `node.list`,
//! the scopes `approve` and `invoke` ask for, `--params`, and `system.run` results.

use serde_json::Value;

use super::{print, ADMIN, ADMIN_COMMANDS, MIN_PREFIX, PAIRING, READ, SHORT_ID, WRITE};

/// What `system.run` returned, read from an invoke payload that has its shape.
#[derive(Debug, PartialEq)]
pub(super) struct RunOutput<'a> {
    /// The node's stdout, printed as it is.
    pub stdout: &'a str,
    /// The node's stderr, printed as it is.
    pub stderr: &'a str,
    /// Our exit code: the remote one within 0..=125.
    pub code: i32,
    /// Why the command failed without output of its own (timed out, could not start).
    pub note: Option<String>,
}

/// The node id `query` names among `nodes` (the `nodes` of `node.list`): an exact node id,
/// else an exact display name (any case), else a remote IP, else a unique id prefix of at
/// least [`MIN_PREFIX`] characters. Several matches at the first step that has any are an
/// error naming them.
pub fn resolve_node(nodes: &[Value], query: &str) -> Result<String, String> {
    let q = query.trim();
    let id = |n: &Value| n["nodeId"].as_str().unwrap_or("").to_string();
    if q.is_empty() {
        return Err(
            "NODE is empty; give a node id, name, IP or id prefix (see openclaw nodes list)".into(),
        );
    }
    if nodes.iter().any(|n| n["nodeId"] == q) {
        return Ok(q.to_string());
    }
    let lower = q.to_lowercase();
    let by_name = |n: &Value| {
        n["displayName"]
            .as_str()
            .is_some_and(|d| d.to_lowercase() == lower)
    };
    let by_ip = |n: &Value| {
        n["remoteIp"]
            .as_str()
            .is_some_and(|ip| ip == q || ip.strip_prefix("::ffff:") == Some(q))
    };
    let by_prefix =
        |n: &Value| q.chars().count() >= MIN_PREFIX && id(n).starts_with(q) && !id(n).is_empty();
    let steps: [&dyn Fn(&Value) -> bool; 3] = [&by_name, &by_ip, &by_prefix];
    for matches in steps {
        let hits: Vec<&Value> = nodes.iter().filter(|n| matches(n)).collect();
        match hits.as_slice() {
            [] => continue,
            [one] => return Ok(id(one)),
            many => {
                let names: Vec<String> = many
                    .iter()
                    .map(|n| {
                        let short: String = id(n).chars().take(SHORT_ID).collect();
                        format!("{short} ({})", print::str_of(&n["displayName"]))
                    })
                    .collect();
                return Err(format!(
                    "{q:?} matches {} nodes: {}; give the node id (see openclaw nodes list)",
                    many.len(),
                    names.join(", ")
                ));
            }
        }
    }
    if q.chars().count() < MIN_PREFIX && nodes.iter().any(|n| id(n).starts_with(q)) {
        return Err(format!(
            "no node matches {q:?} (an id prefix needs at least {MIN_PREFIX} characters; \
             see openclaw nodes list)"
        ));
    }
    Err(format!("no node matches {q:?} (see openclaw nodes list)"))
}

/// The scopes approving `request_id` needs (its `requiredApproveScopes`, always with
/// `operator.pairing`), or `None` when `list` (a `node.pair.list` result) has no such request.
pub(super) fn required_scopes(list: &Value, request_id: &str) -> Option<Vec<String>> {
    let entry = list["pending"]
        .as_array()?
        .iter()
        .find(|p| p["requestId"] == request_id)?;
    let mut scopes = vec![PAIRING.to_string()];
    for s in entry["requiredApproveScopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    Some(scopes)
}

/// The scopes `node.invoke` of `command` needs, plus `operator.read` for `node.list`.
pub(super) fn invoke_scopes(command: &str) -> Vec<&'static str> {
    let mut scopes = vec![READ, WRITE];
    if command.starts_with("browser.proxy") || ADMIN_COMMANDS.contains(&command) {
        scopes.push(ADMIN);
    }
    scopes
}

/// `--params`: absent, or a JSON object.
pub(super) fn parse_params(raw: Option<&str>) -> Result<Option<Value>, String> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let example = r#"--params '{"command": ["echo", "hi"]}'"#;
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| format!("--params is not valid JSON: {e} (example: {example})"))?;
    let kind = match &v {
        Value::Object(_) => return Ok(Some(v)),
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    };
    Err(format!(
        "--params must be a JSON object, not {kind} (example: {example})"
    ))
}

/// `payload` read as a `system.run` result, if it has `stdout`, `stderr` or `exitCode`.
pub(super) fn run_output(payload: &Value) -> Option<RunOutput<'_>> {
    let o = payload.as_object()?;
    if !["stdout", "stderr", "exitCode"]
        .iter()
        .any(|k| o.contains_key(*k))
    {
        return None;
    }
    let code = match payload["exitCode"].as_i64() {
        Some(c @ 0..=125) => c as i32,
        Some(c) if c > 125 => 125,
        // A negative code is a failure too; clamping it to 0 would report success.
        Some(_) => 1,
        None if payload["success"] == false => 1,
        None => 0,
    };
    let note = if payload["timedOut"] == true {
        Some("the command timed out on the node".to_string())
    } else {
        payload["error"]
            .as_str()
            .filter(|e| !e.is_empty())
            .map(str::to_string)
    };
    Some(RunOutput {
        stdout: payload["stdout"].as_str().unwrap_or(""),
        stderr: payload["stderr"].as_str().unwrap_or(""),
        code,
        note,
    })
}
