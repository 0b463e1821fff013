//! Pure node rules (PROTOCOL-NODES §2.3, §3, §4): which declared commands the gateway lets a
//! node expose, which scopes approving a surface or invoking a command needs, how an invoke's
//! params are checked, and the error shapes the operator sees. No I/O; `now` is passed in.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::protocol::errors::{code, ErrorShape};
use crate::protocol::scopes::{ADMIN, PAIRING, WRITE};

/// Commands the gateway withholds from every node's surface (file and workspace access the
/// real gateway's platform policy keeps off by default; logged as "withheld").
pub const WITHHELD: &[&str] = &[
    "dir.fetch",
    "dir.list",
    "file.create",
    "file.fetch",
    "file.stat",
    "file.write",
    "workspace.memory",
    "workspace.skills",
];

/// Commands whose approval needs `operator.admin` (they run programs or read files).
pub const ADMIN_TO_APPROVE: &[&str] = &[
    "system.run",
    "system.run.prepare",
    "system.which",
    "browser.proxy",
    "browser.proxy.upload.v1",
    "fs.listDir",
    "system.execApprovals.get",
    "system.execApprovals.set",
];

/// Commands whose invocation needs `operator.admin` (others need `operator.write`).
pub const ADMIN_TO_INVOKE: &[&str] = &[
    "browser.proxy",
    "browser.proxy.upload.v1",
    "fs.listDir",
    "terminal.upload",
];

/// Default invoke deadline when `timeoutMs` is absent (the real gateway's 30 s).
pub const DEFAULT_INVOKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest deadline; `timeoutMs: 0` ("no deadline" on the real gateway) and larger values
/// are capped here, so a silent node can hold a pending slot for at most this long.
pub const MAX_INVOKE_TIMEOUT: Duration = Duration::from_secs(600);

/// The declared commands split into what the surface may expose and what is withheld,
/// each sorted and deduplicated.
pub fn split_surface(declared: &[String]) -> (Vec<String>, Vec<String>) {
    let mut allowed: Vec<String> = declared
        .iter()
        .filter(|c| !WITHHELD.contains(&c.as_str()))
        .cloned()
        .collect();
    let mut withheld: Vec<String> = declared
        .iter()
        .filter(|c| WITHHELD.contains(&c.as_str()))
        .cloned()
        .collect();
    for v in [&mut allowed, &mut withheld] {
        v.sort();
        v.dedup();
    }
    (allowed, withheld)
}

/// Scopes an approver needs for a surface exposing `commands`: `operator.pairing`, plus
/// `operator.write` for any command, plus `operator.admin` for the dangerous ones.
pub fn required_approve_scopes(commands: &[String]) -> Vec<String> {
    let mut v = vec![PAIRING.to_string()];
    if commands
        .iter()
        .any(|c| ADMIN_TO_APPROVE.contains(&c.as_str()))
    {
        v.push(ADMIN.to_string());
    } else if !commands.is_empty() {
        v.push(WRITE.to_string());
    }
    v
}

/// The scope invoking `command` needs.
pub fn invoke_scope(command: &str) -> &'static str {
    if ADMIN_TO_INVOKE.contains(&command) {
        ADMIN
    } else {
        WRITE
    }
}

/// A checked `node.invoke` request.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeParams {
    /// Target node.
    pub node_id: String,
    /// Command to run.
    pub command: String,
    /// Command params, forwarded as `paramsJSON` (absent → `null`).
    pub params: Option<Value>,
    /// Deadline (default 30 s, capped at [`MAX_INVOKE_TIMEOUT`]).
    pub timeout: Duration,
    /// Caller's idempotency key (forwarded).
    pub idempotency_key: String,
    /// Optional session key (forwarded).
    pub session_key: Option<String>,
}

/// Keys `node.invoke` accepts (the schema is a closed object).
const INVOKE_KEYS: &[&str] = &[
    "nodeId",
    "command",
    "params",
    "timeoutMs",
    "idempotencyKey",
    "sessionKey",
    "turnSourceChannel",
    "turnSourceTo",
    "turnSourceAccountId",
    "turnSourceThreadId",
];

/// Checks `node.invoke` params; errors read like the real gateway's
/// (`invalid node.invoke params: must have required property 'idempotencyKey'`).
pub fn parse_invoke(params: Option<&Value>) -> Result<InvokeParams, ErrorShape> {
    let bad = |why: String| {
        ErrorShape::new(
            code::INVALID_REQUEST,
            format!("invalid node.invoke params: {why}"),
        )
    };
    let Some(obj) = params.and_then(Value::as_object) else {
        return Err(bad("must be object".into()));
    };
    if let Some(k) = obj.keys().find(|k| !INVOKE_KEYS.contains(&k.as_str())) {
        return Err(bad(format!("must NOT have additional properties ('{k}')")));
    }
    let string = |k: &str| -> Result<String, ErrorShape> {
        match obj.get(k) {
            None => Err(bad(format!("must have required property '{k}'"))),
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(_) => Err(bad(format!("at /{k}: must be a non-empty string"))),
        }
    };
    let node_id = string("nodeId")?;
    let command = string("command")?;
    let idempotency_key = string("idempotencyKey")?;
    let timeout = match obj.get("timeoutMs") {
        None | Some(Value::Null) => DEFAULT_INVOKE_TIMEOUT,
        Some(v) => match v.as_u64() {
            Some(0) => MAX_INVOKE_TIMEOUT,
            Some(ms) => Duration::from_millis(ms).min(MAX_INVOKE_TIMEOUT),
            None => return Err(bad("at /timeoutMs: must be integer >= 0".into())),
        },
    };
    let session_key = match obj.get("sessionKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("at /sessionKey: must be string".into())),
    };
    Ok(InvokeParams {
        node_id,
        command,
        params: obj.get("params").filter(|v| !v.is_null()).cloned(),
        timeout,
        idempotency_key,
        session_key,
    })
}

/// Refusals decided by the command alone, before the node is looked at.
pub fn refuse_command(command: &str) -> Option<ErrorShape> {
    if command.starts_with("system.execApprovals.") {
        return Some(ErrorShape::new(
            code::INVALID_REQUEST,
            "node.invoke does not allow system.execApprovals.*; use exec.approvals.node.*",
        ));
    }
    None
}

/// Why a command cannot be sent to a node, given its platform, what it declared and what
/// its approved surface exposes. `None`: allowed.
pub fn command_refusal(
    command: &str,
    platform: &str,
    declared: &[String],
    exposed: &[String],
) -> Option<ErrorShape> {
    let reason = |message: String, reason: &str| {
        ErrorShape::new(code::INVALID_REQUEST, message)
            .with_details(json!({"reason": reason, "command": command}))
    };
    if !declared.iter().any(|c| c == command) {
        return Some(reason(
            format!(
                "node command not allowed: the node (platform: {platform}) does not support \"{command}\""
            ),
            "command not declared by node",
        ));
    }
    if WITHHELD.contains(&command) {
        return Some(reason(
            format!(
                "node command not allowed: \"{command}\" is not in the allowlist for platform \"{platform}\""
            ),
            "command not allowlisted",
        ));
    }
    if !exposed.iter().any(|c| c == command) {
        return Some(reason(
            format!(
                "node command not allowed: \"{command}\" is not in the node's approved command \
                 surface (approve it with `openclaw nodes approve <requestId>`, see `openclaw nodes pending`)"
            ),
            "command not approved",
        ));
    }
    None
}

/// The `UNAVAILABLE` error an operator gets when the node failed or never answered:
/// `"<code>: <message>"` with `details.nodeError`.
pub fn node_error(node_code: &str, message: &str, dispatched: bool) -> ErrorShape {
    ErrorShape::new(code::UNAVAILABLE, format!("{node_code}: {message}")).with_details(json!({
        "nodeError": {"code": node_code, "message": message},
        "nodeCommandDispatched": dispatched,
    }))
}

/// `node not connected` (a paired node that is offline).
pub fn not_connected() -> ErrorShape {
    ErrorShape::new(code::UNAVAILABLE, "node not connected").with_details(json!({
        "code": "NOT_CONNECTED",
        "nodeError": {"code": "NOT_CONNECTED", "message": "node not connected"},
        "nodeCommandDispatched": false,
    }))
}

/// The node's command surface is not approved (yet).
pub fn awaiting_approval() -> ErrorShape {
    let mut e = ErrorShape::new(
        code::UNAVAILABLE,
        "node pairing changed while invocation was active: its command surface is awaiting \
         operator approval (see `openclaw nodes pending`)",
    )
    .with_details(json!({"code": "PAIRING_CHANGED"}));
    e.retryable = Some(true);
    e
}

/// `unknown nodeId`.
pub fn unknown_node() -> ErrorShape {
    ErrorShape::new(code::INVALID_REQUEST, "unknown nodeId")
}

/// What the operator's `node.invoke` answers once the node's result is in: `payload` is the
/// parsed `payloadJSON` (or the raw `payload`), unparseable text is wrapped as
/// `{payloadJSON: raw}`.
pub fn invoke_response(
    node_id: &str,
    command: &str,
    payload: Option<Value>,
    payload_json: Option<String>,
) -> Value {
    let parsed = match (&payload_json, payload) {
        (Some(s), _) => serde_json::from_str(s).unwrap_or_else(|_| json!({"payloadJSON": s})),
        (None, Some(p)) => p,
        (None, None) => Value::Null,
    };
    json!({
        "ok": true,
        "nodeId": node_id,
        "command": command,
        "payload": parsed,
        "payloadJSON": payload_json,
    })
}

/// A conservative size of [`invoke_response`] in bytes without building it: the text
/// appears twice (once parsed, once as an escaped string).
pub fn response_size_estimate(payload_json: Option<&str>, payload: Option<&Value>) -> usize {
    let text = match (payload_json, payload) {
        (Some(s), _) => s.len() + s.bytes().filter(|b| matches!(b, b'"' | b'\\')).count() + s.len(),
        (None, Some(p)) => p.to_string().len(),
        (None, None) => 0,
    };
    text + 512
}

/// A checked `node.invoke.result`.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeResult {
    /// The gateway's invoke id.
    pub id: String,
    /// The node that answers (must be the caller's device id).
    pub node_id: String,
    /// Success.
    pub ok: bool,
    /// Structured payload (normalised: a non-string `payloadJSON` lands here).
    pub payload: Option<Value>,
    /// Payload as JSON text.
    pub payload_json: Option<String>,
    /// Node error (`ok: false`).
    pub error: Option<(String, String)>,
}

/// Parses `node.invoke.result` params, normalising as the real gateway does
/// (`payloadJSON: null` → absent, non-string `payloadJSON` → `payload`, `error: null` → absent).
pub fn parse_result(params: Option<&Value>) -> Result<InvokeResult, ErrorShape> {
    let bad = |why: &str| {
        ErrorShape::new(
            code::INVALID_REQUEST,
            format!("invalid node.invoke.result params: {why}"),
        )
    };
    let obj: &Map<String, Value> = params
        .and_then(Value::as_object)
        .ok_or_else(|| bad("must be object"))?;
    let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    let id = s("id").ok_or_else(|| bad("must have required property 'id'"))?;
    let node_id = s("nodeId").ok_or_else(|| bad("must have required property 'nodeId'"))?;
    let ok = obj
        .get("ok")
        .and_then(Value::as_bool)
        .ok_or_else(|| bad("must have required property 'ok' (boolean)"))?;
    let (mut payload, mut payload_json) =
        (obj.get("payload").filter(|v| !v.is_null()).cloned(), None);
    match obj.get("payloadJSON") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) => payload_json = Some(t.clone()),
        Some(other) => payload = Some(other.clone()),
    }
    let error = obj.get("error").filter(|v| !v.is_null()).map(|e| {
        let f = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let c = f("code");
        (
            if c.is_empty() {
                "UNAVAILABLE".into()
            } else {
                c
            },
            f("message"),
        )
    });
    Ok(InvokeResult {
        id,
        node_id,
        ok,
        payload,
        payload_json,
        error,
    })
}

/// The `paramsJSON` forwarded to the node: the operator's params as JSON text (`null` when
/// absent). `system.run` gets a gateway `runId` as the real gateway adds one.
pub fn params_json(command: &str, params: Option<&Value>, run_id: &str) -> Option<String> {
    match params {
        Some(Value::Object(m)) if command == "system.run" && !m.contains_key("runId") => {
            let mut m = m.clone();
            m.insert("runId".into(), Value::String(run_id.to_string()));
            Some(Value::Object(m).to_string())
        }
        Some(v) => Some(v.to_string()),
        None => None,
    }
}

/// Strings of a JSON array (anything else is ignored), deduplicated in order, at most `max`.
pub fn strings(v: Option<&Value>, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(Value::Array(a)) = v {
        for s in a.iter().filter_map(Value::as_str) {
            if out.len() >= max {
                break;
            }
            if s.len() <= 128 && !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
