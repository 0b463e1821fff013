//! Human output of `openclaw nodes …` and the node rows of `openclaw status`.

use serde_json::{json, Value};

use super::{PAIRING, SHORT_ID};
use crate::commands::human_duration;

/// Label column of the `openclaw status` screen (`Gateway    …`).
const STATUS_INDENT: &str = "           ";

/// The string, or `-`.
pub(super) fn str_of(v: &Value) -> &str {
    v.as_str().filter(|s| !s.is_empty()).unwrap_or("-")
}

/// The array's length (0 when absent).
pub(super) fn count(v: &Value) -> usize {
    v.as_array().map_or(0, Vec::len)
}

fn short(id: &Value) -> String {
    str_of(id).chars().take(SHORT_ID).collect()
}

fn joined(v: &Value) -> String {
    let items: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match items.is_empty() {
        true => "-".into(),
        false => items.join(", "),
    }
}

fn since(now: i64, at: &Value) -> Option<String> {
    match at.as_i64() {
        Some(t) if t > 0 => Some(human_duration(now.saturating_sub(t).max(0) as u64)),
        _ => None,
    }
}

fn age(now: i64, at: &Value) -> String {
    since(now, at).map_or_else(|| "-".into(), |d| format!("{d} ago"))
}

/// `yes 3m12s` / `no`.
fn connected(now: i64, n: &Value) -> String {
    match n["connected"] == true {
        true => {
            since(now, &n["connectedAtMs"]).map_or_else(|| "yes".into(), |d| format!("yes {d}"))
        }
        false => "no".into(),
    }
}

/// `23.5 GiB`.
pub(super) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ => format!("{v:.1} {}", UNITS[unit]),
    }
}

/// The rows of `nodes list`: `node.list`'s nodes, then paired nodes it did not list.
pub(super) fn list_rows(pairs: &Value, listed: &Value) -> Vec<Value> {
    let mut rows = listed["nodes"].as_array().cloned().unwrap_or_default();
    for p in pairs["paired"].as_array().into_iter().flatten() {
        if !rows.iter().any(|n| n["nodeId"] == p["nodeId"]) {
            let mut p = p.clone();
            p["approvalState"] = json!("approved");
            p["connected"] = json!(false);
            rows.push(p);
        }
    }
    rows
}

/// `openclaw nodes list`.
pub(super) fn list(pairs: &Value, listed: &Value) {
    let now = openclaw_actors::shared::now_ms();
    let rows = list_rows(pairs, listed);
    crate::out!("Nodes ({})", rows.len());
    if !rows.is_empty() {
        crate::out!(
            "{:<12}  {:<18}  {:<8}  {:<15}  {:<18}  {:<11}  COMMANDS",
            "NODE",
            "NAME",
            "PLATFORM",
            "FROM",
            "STATE",
            "CONNECTED"
        );
    }
    for n in &rows {
        crate::out!(
            "{:<12}  {:<18}  {:<8}  {:<15}  {:<18}  {:<11}  {}",
            short(&n["nodeId"]),
            str_of(&n["displayName"]),
            str_of(&n["platform"]),
            str_of(&n["remoteIp"]),
            str_of(&n["approvalState"]),
            connected(now, n),
            count(&n["commands"])
        );
    }
    if count(&pairs["pending"]) > 0 {
        crate::out!();
        pending(pairs);
    }
}

/// `openclaw nodes pending` (and the pending section of `nodes list`).
pub(super) fn pending(pairs: &Value) {
    let now = openclaw_actors::shared::now_ms();
    let pending = pairs["pending"].as_array().cloned().unwrap_or_default();
    crate::out!("Pending approval ({})", pending.len());
    if pending.is_empty() {
        return;
    }
    crate::out!(
        "{:<36}  {:<12}  {:<18}  {:<8}  {:<15}  {:>8}  {:<14}  AGE",
        "REQUEST",
        "NODE",
        "NAME",
        "PLATFORM",
        "FROM",
        "COMMANDS",
        "NEEDS"
    );
    for r in &pending {
        crate::out!(
            "{:<36}  {:<12}  {:<18}  {:<8}  {:<15}  {:>8}  {:<14}  {}",
            str_of(&r["requestId"]),
            short(&r["nodeId"]),
            str_of(&r["displayName"]),
            str_of(&r["platform"]),
            str_of(&r["remoteIp"]),
            count(&r["commands"]),
            needs(&r["requiredApproveScopes"]),
            age(now, &r["ts"])
        );
    }
    crate::out!("\napprove with: openclaw nodes approve <REQUEST>   (or reject)");
}

/// Required approve scopes beyond `operator.pairing`, or `-`.
pub(super) fn needs(scopes: &Value) -> String {
    let extra: Vec<&str> = scopes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|s| *s != PAIRING)
        .collect();
    match extra.is_empty() {
        true => "-".into(),
        false => extra.join(","),
    }
}

/// `openclaw nodes describe`: one `key  value` line per fact.
pub(super) fn describe(n: &Value) {
    let now = openclaw_actors::shared::now_ms();
    let line = |k: &str, v: &str| crate::out!("{k:<12}{v}");
    line("id", str_of(&n["nodeId"]));
    line("name", str_of(&n["displayName"]));
    let family = n["deviceFamily"].as_str().map(|f| format!(" ({f})"));
    line(
        "platform",
        &format!("{}{}", str_of(&n["platform"]), family.unwrap_or_default()),
    );
    line("version", str_of(&n["version"]));
    line(
        "client",
        &format!("{}/{}", str_of(&n["clientId"]), str_of(&n["clientMode"])),
    );
    line("remote ip", str_of(&n["remoteIp"]));
    let approved = since(now, &n["approvedAtMs"]).map(|d| format!(", approved {d} ago"));
    let paired = if n["paired"] == true {
        "paired"
    } else {
        "not paired"
    };
    line(
        "state",
        &format!(
            "{} ({paired}{})",
            str_of(&n["approvalState"]),
            approved.unwrap_or_default()
        ),
    );
    let seen = since(now, &n["lastSeenAtMs"]).map(|d| format!(", last seen {d} ago"));
    line(
        "connected",
        &format!("{}{}", connected(now, n), seen.unwrap_or_default()),
    );
    line("caps", &joined(&n["caps"]));
    line(
        "commands",
        &format!("({}) {}", count(&n["commands"]), joined(&n["commands"])),
    );
    if let Some(p @ 1..) = n["pendingInvokes"].as_u64() {
        line("invokes", &format!("{p} pending"));
    }
    if n["hostStats"].is_object() {
        line("host stats", &host_stats(now, &n["hostStats"]));
    }
}

/// `2 CPUs · load 0.40 0.23 0.39 · memory 10.2 GiB free of 23.5 GiB · disk … · updated 12s ago`.
pub(super) fn host_stats(now: i64, h: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(c) = h["cpuCount"].as_u64() {
        parts.push(format!("{c} CPUs"));
    }
    let load: Vec<String> = h["loadAverage"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .map(|l| format!("{l:.2}"))
        .collect();
    if !load.is_empty() {
        parts.push(format!("load {}", load.join(" ")));
    }
    let of = |what: &str, free: &str, have: &str, total: &str| match (
        h[have].as_u64(),
        h[total].as_u64(),
    ) {
        (Some(a), Some(t)) => Some(format!(
            "{what} {} {free} of {}",
            human_bytes(a),
            human_bytes(t)
        )),
        _ => None,
    };
    parts.extend(of("memory", "free", "memoryFreeBytes", "memoryTotalBytes"));
    parts.extend(of(
        "disk",
        "available",
        "diskAvailableBytes",
        "diskTotalBytes",
    ));
    parts.extend(since(now, &h["updatedAtMs"]).map(|d| format!("updated {d} ago")));
    match parts.is_empty() {
        true => "-".into(),
        false => parts.join(" · "),
    }
}

/// The `Nodes` lines of `openclaw status` from its `nodes` field; nothing when the gateway
/// does not send one.
pub fn print_status(nodes: &Value) {
    if !nodes.is_object() {
        return;
    }
    let n = |k: &str| nodes[k].as_u64().unwrap_or(0);
    crate::out!(
        "Nodes      {} connected, {} paired, {} pending approval",
        n("connected"),
        n("paired"),
        n("pending")
    );
    let now = openclaw_actors::shared::now_ms();
    for r in nodes["rows"].as_array().into_iter().flatten() {
        crate::out!("{STATUS_INDENT}{}", status_row(now, r));
    }
}

/// One node under `Nodes` in `openclaw status`.
pub(super) fn status_row(now: i64, r: &Value) -> String {
    let conn = match r["connected"] == true {
        true => since(now, &r["connectedAtMs"])
            .map_or_else(|| "connected".into(), |d| format!("connected {d}")),
        false => "offline".into(),
    };
    let invokes = match r["pendingInvokes"].as_u64() {
        Some(p) if p > 0 => format!(" · {p} invoke(s) pending"),
        _ => String::new(),
    };
    format!(
        "{:<12}  {:<18}  {:<18}  from {} · {conn}{invokes}",
        short(&r["nodeId"]),
        str_of(&r["displayName"]),
        str_of(&r["approvalState"]),
        str_of(&r["remoteIp"])
    )
}
