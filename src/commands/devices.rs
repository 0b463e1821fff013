//! `openclaw devices list|approve|reject|revoke`: the `device.pair.*` methods
//! (PROTOCOL-NODES §5) with `operator.pairing`. Approving a role other than `operator` is
//! refused without `operator.admin`; `approve` then retries once with admin, as the real CLI
//! does.

use serde_json::{json, Value};

use super::{block_on, call_once, connect, fail, human_duration, print_json, target};
use crate::cli::Global;
use crate::client::ClientError;
use crate::target::TargetArgs;

const PAIRING: &[&str] = &["operator.pairing"];
const ADMIN: &[&str] = &["operator.admin"];
/// Shortest device-id prefix `revoke` accepts.
const MIN_PREFIX: usize = 8;
/// Device ids are shown this long in tables.
const SHORT_ID: usize = 12;

/// `openclaw devices list [--json]`.
pub fn list(global: &Global, args: &TargetArgs, as_json: bool) -> i32 {
    let t = match target("devices list", args, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        match call_once(&t, args, PAIRING, "device.pair.list", json!({})).await {
            Ok((_, v)) if as_json => {
                print_json(&v);
                0
            }
            Ok((_, v)) => {
                print_list(&v);
                0
            }
            Err(e) => fail("devices list", &e),
        }
    })
}

/// `openclaw devices approve REQUEST_ID`.
pub fn approve(global: &Global, args: &TargetArgs, request_id: &str) -> i32 {
    let cmd = "devices approve";
    let t = match target(cmd, args, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        let params = json!({"requestId": request_id});
        let method = "device.pair.approve";
        let mut res = call_once(&t, args, PAIRING, method, params.clone()).await;
        if matches!(&res, Err(e) if e.message().contains("device pairing approval denied")) {
            // Not an operator device: approving it needs admin, asked for on a new socket.
            res = call_once(&t, args, ADMIN, method, params).await;
        }
        match res {
            Ok((_, v)) => {
                let d = &v["device"];
                crate::out!(
                    "approved device {} ({}, role {}, from {}) — request {request_id}",
                    str_of(&d["deviceId"]),
                    client(d),
                    str_of(&d["role"]),
                    str_of(&d["remoteIp"])
                );
                0
            }
            Err(e) => unknown_or_fail(cmd, &e, "unknown requestId", || {
                format!(
                    "no pending pairing request {request_id:?} (requests expire 5 minutes after \
                     the device's last attempt) — see: openclaw devices list"
                )
            }),
        }
    })
}

/// `openclaw devices reject REQUEST_ID`.
pub fn reject(global: &Global, args: &TargetArgs, request_id: &str) -> i32 {
    let cmd = "devices reject";
    let t = match target(cmd, args, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        let params = json!({"requestId": request_id});
        match call_once(&t, args, PAIRING, "device.pair.reject", params).await {
            Ok((_, v)) => {
                crate::out!(
                    "rejected request {request_id} from device {}",
                    str_of(&v["deviceId"])
                );
                0
            }
            Err(e) => unknown_or_fail(cmd, &e, "unknown requestId", || {
                format!("no pending pairing request {request_id:?} — see: openclaw devices list")
            }),
        }
    })
}

/// `openclaw devices revoke DEVICE_ID` (alias `remove`): a full id or a unique prefix of at
/// least [`MIN_PREFIX`] characters.
pub fn revoke(global: &Global, args: &TargetArgs, device_id: &str) -> i32 {
    let cmd = "devices revoke";
    let t = match target(cmd, args, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        let mut c = match connect(&t, args, PAIRING).await {
            Ok(c) => c,
            Err(e) => return fail(cmd, &e),
        };
        let listed = c.call("device.pair.list", json!({})).await;
        let id = match listed.map(|v| resolve_device(&v, device_id)) {
            Ok(Ok(id)) => id,
            Ok(Err(why)) => {
                eprintln!("openclaw {cmd}: {why} — see: openclaw devices list");
                c.close().await;
                return 1;
            }
            Err(e) => return fail(cmd, &e),
        };
        let res = c.call("device.pair.remove", json!({"deviceId": id})).await;
        c.close().await;
        match res {
            Ok(_) => {
                crate::out!("removed device {id}; it must pair again to connect");
                0
            }
            Err(e) => unknown_or_fail(cmd, &e, "unknown deviceId", || {
                format!("no paired device {id:?} — see: openclaw devices list")
            }),
        }
    })
}

/// The paired device `arg` names: an exact id, or the only id starting with it.
fn resolve_device(list: &Value, arg: &str) -> Result<String, String> {
    let ids: Vec<&str> = list["paired"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["deviceId"].as_str())
        .collect();
    if ids.contains(&arg) {
        return Ok(arg.to_string());
    }
    let matching: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| arg.len() >= MIN_PREFIX && id.starts_with(arg))
        .collect();
    match matching.as_slice() {
        [one] => Ok(one.to_string()),
        [] if arg.len() < MIN_PREFIX => Err(format!(
            "no paired device {arg:?} (give the full id or at least {MIN_PREFIX} characters of it)"
        )),
        [] => Err(format!("no paired device {arg:?}")),
        many => Err(format!(
            "{arg:?} matches {} paired devices; give more of the id",
            many.len()
        )),
    }
}

/// Prints `unknown()` for an error carrying `marker`, else the error as usual.
fn unknown_or_fail(cmd: &str, e: &ClientError, marker: &str, unknown: impl Fn() -> String) -> i32 {
    if matches!(e, ClientError::Request(m) if m.contains(marker)) {
        eprintln!("openclaw {cmd}: {}", unknown());
        return 1;
    }
    fail(cmd, e)
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn short(id: &Value) -> String {
    let id = str_of(id);
    id.chars().take(SHORT_ID).collect()
}

fn client(d: &Value) -> String {
    let base = format!("{}/{}", str_of(&d["clientId"]), str_of(&d["clientMode"]));
    match d["displayName"].as_str() {
        Some(n) => format!("{base} \"{n}\""),
        None => base,
    }
}

fn age(now: i64, at: &Value) -> String {
    match at.as_i64() {
        Some(t) if t > 0 => format!(
            "{} ago",
            human_duration(now.saturating_sub(t).max(0) as u64)
        ),
        _ => "-".into(),
    }
}

fn print_list(v: &Value) {
    let now = openclaw_actors::shared::now_ms();
    let pending = v["pending"].as_array().cloned().unwrap_or_default();
    let paired = v["paired"].as_array().cloned().unwrap_or_default();
    crate::out!("Pending requests ({})", pending.len());
    if !pending.is_empty() {
        crate::out!(
            "{:<36}  {:<12}  {:<26}  {:<8}  {:<15}  AGE",
            "REQUEST",
            "DEVICE",
            "CLIENT",
            "ROLE",
            "REMOTE IP"
        );
    }
    for r in &pending {
        crate::out!(
            "{:<36}  {:<12}  {:<26}  {:<8}  {:<15}  {}",
            str_of(&r["requestId"]),
            short(&r["deviceId"]),
            client(r),
            str_of(&r["role"]),
            str_of(&r["remoteIp"]),
            age(now, &r["ts"])
        );
    }
    crate::out!("\nPaired devices ({})", paired.len());
    if !paired.is_empty() {
        crate::out!(
            "{:<12}  {:<26}  {:<8}  {:<7}  APPROVED",
            "DEVICE",
            "CLIENT",
            "ROLE",
            "VIA"
        );
    }
    for d in &paired {
        crate::out!(
            "{:<12}  {:<26}  {:<8}  {:<7}  {}",
            short(&d["deviceId"]),
            client(d),
            str_of(&d["role"]),
            str_of(&d["approvedVia"]),
            age(now, &d["approvedAtMs"])
        );
    }
    if !pending.is_empty() {
        crate::out!("\napprove with: openclaw devices approve <REQUEST>   (or reject)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_resolve_exactly_or_by_a_unique_prefix() {
        let list = json!({"paired": [
            {"deviceId": "aaaabbbbcccc0001"},
            {"deviceId": "aaaabbbbcccc0002"},
            {"deviceId": "ffff0000ffff0000"},
            {"deviceId": "short"},
        ]});
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("aaaabbbbcccc0001", Ok("aaaabbbbcccc0001")),
            ("short", Ok("short")),
            ("ffff0000", Ok("ffff0000ffff0000")),
            ("ffff", Err("at least 8")),
            ("aaaabbbbcccc", Err("matches 2")),
            ("0123456789", Err("no paired device")),
        ];
        for (arg, want) in cases {
            match (resolve_device(&list, arg), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, *w, "{arg}"),
                (Err(got), Err(w)) => assert!(got.contains(w), "{arg}: {got}"),
                (got, _) => panic!("{arg}: {got:?}, want {want:?}"),
            }
        }
    }
}
