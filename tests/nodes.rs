//! Node transport end to end with a test node of our own (tests/common/node.rs) against the
//! in-process gateway: connect and approval, the invoke relay and every error path
//! (timeout then late result, disconnect mid-invoke, unknown node, undeclared and withheld
//! commands, oversize result, a result from the wrong node, the pending bounds), device
//! tokens for nodes and operator devices, a crashed NodeRegistry, and 10 nodes × 100
//! concurrent invokes. The real node host and CLI are exercised in tests/compat/run.sh.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::inproc::InProc;
use common::node::{
    answer, approve_all, next_invoke, spawn_echo_node, wait_pending, NodeAuth, NodeKey,
};
use common::{connect_params, patience, Client, Closed, TOKEN};
use serde_json::{json, Value};

const CMDS: &[&str] = &["system.which", "system.run", "file.stat", "echo.test"];

async fn admin(gw: &InProc) -> Client {
    Client::authed(&gw.url(), TOKEN).await.0
}

async fn operator(gw: &InProc, scopes: &[&str]) -> Client {
    let mut c = Client::connect(&gw.url()).await;
    let (_, res) = c
        .connect_with(connect_params(TOKEN, "cli", "cli", scopes))
        .await;
    assert_eq!(res["ok"], true, "{res}");
    c
}

/// A connected, approved test node.
async fn approved_node(gw: &InProc, op: &mut Client, name: &str) -> (NodeKey, Client) {
    let key = NodeKey::new();
    let (c, res) = key
        .connect(&gw.url(), NodeAuth::Token(TOKEN), name, CMDS)
        .await;
    assert_eq!(res["ok"], true, "{res}");
    let deadline = Instant::now() + patience();
    let rid = loop {
        let list = op.call("node.pair.list", json!({})).await;
        let mine = list["payload"]["pending"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["nodeId"] == key.id.as_str()).cloned());
        if let Some(p) = mine {
            break p["requestId"].clone();
        }
        assert!(Instant::now() < deadline, "no request for {name}: {list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let r = op
        .call("node.pair.approve", json!({"requestId": rid}))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    (key, c)
}

fn invoke_params(node: &str, command: &str, timeout_ms: u64) -> Value {
    json!({"nodeId": node, "command": command, "params": {"bins": ["sh"]},
           "idempotencyKey": uuid::Uuid::new_v4().to_string(), "timeoutMs": timeout_ms})
}

fn err(res: &Value) -> (&str, &str) {
    assert_eq!(res["ok"], false, "expected an error: {res}");
    (
        res["error"]["code"].as_str().unwrap_or(""),
        res["error"]["message"].as_str().unwrap_or(""),
    )
}

fn audit(gw: &InProc) -> Vec<Value> {
    let path = gw.home.join(".openclaw/logs/audit.jsonl");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

async fn wait_audit(gw: &InProc, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + patience();
    loop {
        if let Some(v) = audit(gw).into_iter().find(|v| pred(v)) {
            return v;
        }
        assert!(Instant::now() < deadline, "audit event never written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_waits_for_surface_approval_then_invokes_round_trip() {
    let gw = InProc::start(None, &[]).await;
    let mut op = admin(&gw).await;
    let mut pairing_only = operator(&gw, &["operator.pairing"]).await;
    let key = NodeKey::new();
    let (mut node, res) = key
        .connect(&gw.url(), NodeAuth::Token(TOKEN), "peer-node", CMDS)
        .await;
    assert_eq!(res["ok"], true, "{res}");
    let auth = &res["payload"]["auth"];
    assert_eq!(
        (auth["role"].as_str(), auth["scopes"].clone()),
        (Some("node"), json!([]))
    );
    assert_eq!(
        auth["deviceToken"].as_str().map(str::len),
        Some(43),
        "{auth}"
    );
    assert!(auth["issuedAtMs"].as_i64().unwrap() > 0);

    // Pending: connected with an empty surface; node-side methods say so.
    let pending = wait_pending(&mut op, 1).await;
    let p = &pending[0];
    assert_eq!(p["nodeId"], key.id.as_str());
    assert_eq!(
        p["requiredApproveScopes"],
        json!(["operator.pairing", "operator.admin"])
    );
    assert_eq!(
        p["commands"],
        json!(["echo.test", "system.run", "system.which"]),
        "file.stat is withheld"
    );
    assert_eq!(p["silent"], true);
    let listed = op.call("node.list", json!({})).await;
    let n = &listed["payload"]["nodes"][0];
    assert_eq!(
        (
            n["approvalState"].as_str(),
            n["commands"].clone(),
            n["connected"].as_bool()
        ),
        (Some("pending-approval"), json!([]), Some(true))
    );
    let inv = node
        .call(
            "node.runnerInventory.update",
            json!({"protocolFeatures": []}),
        )
        .await;
    assert!(err(&inv).1.contains("awaiting operator approval"), "{inv}");
    let early = op
        .call("node.invoke", invoke_params(&key.id, "system.which", 5000))
        .await;
    assert!(
        err(&early).1.contains("awaiting operator approval"),
        "{early}"
    );

    // Approval needs admin because system.run is declared.
    let rid = p["requestId"].as_str().unwrap();
    let denied = pairing_only
        .call("node.pair.approve", json!({"requestId": rid}))
        .await;
    assert_eq!(
        err(&denied),
        ("FORBIDDEN", "missing scope: operator.admin"),
        "{denied}"
    );
    let ok = op
        .call("node.pair.approve", json!({"requestId": rid}))
        .await;
    assert_eq!(ok["payload"]["node"]["nodeId"], key.id.as_str(), "{ok}");
    // The node is told directly (no seq), then its inventory update succeeds.
    let resolved = loop {
        let v = node.recv().await;
        if v["event"] == "node.pair.resolved" {
            break v;
        }
    };
    assert_eq!(resolved["payload"]["decision"], "approved");
    assert!(resolved.get("seq").is_none(), "{resolved}");
    let inv = node.call("node.runnerInventory.update", json!({})).await;
    assert_eq!(inv["payload"], json!({"nodeId": key.id}));
    let stats = node
        .call(
            "node.event",
            json!({"event": "node.host.stats", "payloadJSON": "{\"cpuCount\":2}"}),
        )
        .await;
    assert_eq!(
        stats["payload"],
        json!({"ok": true, "event": "node.host.stats", "handled": true, "reason": "updated"})
    );

    // The approved surface is on disk, private.
    let file = gw.home.join(".openclaw/nodes/paired.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(std::fs::read_to_string(&file).unwrap().contains(&key.id));

    // Relay: operator → node.invoke.request → node.invoke.result → operator.
    let id = op
        .req(
            "node.invoke",
            invoke_params(&key.id, "system.which", 15_000),
        )
        .await;
    let req = next_invoke(&mut node).await;
    assert_eq!(req["command"], "system.which");
    assert_eq!(req["paramsJSON"], "{\"bins\":[\"sh\"]}");
    let t = req["timeoutMs"].as_u64().unwrap();
    assert!(t <= 15_000 && t > 10_000, "remaining budget, got {t}");
    assert!(req["idempotencyKey"].is_string() && req["id"].as_str().unwrap().len() == 36);
    let ack = answer(&mut node, &req, "{\"bins\":{\"sh\":\"/usr/bin/sh\"}}").await;
    assert_eq!(ack["payload"], json!({"ok": true}));
    let res = op.recv_res(&id).await;
    assert_eq!(
        res["payload"],
        json!({"ok": true, "nodeId": key.id, "command": "system.which",
               "payload": {"bins": {"sh": "/usr/bin/sh"}}, "payloadJSON": "{\"bins\":{\"sh\":\"/usr/bin/sh\"}}"})
    );
    let ev = wait_audit(&gw, |v| v["event"] == "node.invoke").await;
    assert_eq!(
        (ev["outcome"].as_str(), ev["command"].as_str()),
        (Some("ok"), Some("system.which"))
    );
    assert!(
        ev.get("payload").is_none() && !ev.to_string().contains("/usr/bin/sh"),
        "never the payload: {ev}"
    );
    for e in ["node.connect", "node.pair.requested", "node.pair.approved"] {
        wait_audit(&gw, |v| v["event"] == e).await;
    }
    // status has the node row.
    let st = op.call("status", json!({})).await;
    assert_eq!(
        st["payload"]["nodes"]["connected"], 1,
        "{}",
        st["payload"]["nodes"]
    );
    assert_eq!(
        st["payload"]["nodes"]["rows"][0]["approvalState"],
        "approved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_error_paths() {
    let gw = InProc::start(None, &[]).await;
    let mut op = admin(&gw).await;
    let (a, mut na) = approved_node(&gw, &mut op, "node-a").await;
    let (b, mut nb) = approved_node(&gw, &mut op, "node-b").await;

    // Role gates both ways.
    let r = op
        .call(
            "node.invoke.result",
            json!({"id": "x", "nodeId": a.id, "ok": true}),
        )
        .await;
    assert_eq!(err(&r).1, "unauthorized role: operator");
    let r = na.call("node.list", json!({})).await;
    assert_eq!(err(&r).1, "unauthorized role: node");

    // Unknown node, undeclared, withheld and exec-approval commands are refused before the node.
    let r = op
        .call(
            "node.invoke",
            invoke_params("no-such-node", "system.which", 1000),
        )
        .await;
    assert_eq!(err(&r), ("INVALID_REQUEST", "unknown nodeId"));
    let r = op
        .call("node.invoke", invoke_params(&a.id, "system.notify", 1000))
        .await;
    assert!(
        err(&r).1.contains("does not support \"system.notify\""),
        "{r}"
    );
    let r = op
        .call("node.invoke", invoke_params(&a.id, "file.stat", 1000))
        .await;
    assert!(err(&r).1.contains("not in the allowlist"), "{r}");
    let r = op
        .call(
            "node.invoke",
            invoke_params(&a.id, "system.execApprovals.get", 1000),
        )
        .await;
    assert!(err(&r).1.contains("exec.approvals.node"), "{r}");
    let mut no_key = invoke_params(&a.id, "system.which", 1000);
    no_key.as_object_mut().unwrap().remove("idempotencyKey");
    let r = op.call("node.invoke", no_key).await;
    assert_eq!(
        err(&r).1,
        "invalid node.invoke params: must have required property 'idempotencyKey'"
    );

    // Timeout: cancel to the node, TIMEOUT to the operator, the late result is ignored.
    let started = Instant::now();
    let id = op
        .req("node.invoke", invoke_params(&a.id, "echo.test", 300))
        .await;
    let req = next_invoke(&mut na).await;
    assert_eq!(
        req["command"], "echo.test",
        "the refused commands never reached the node"
    );
    let res = op.recv_res(&id).await;
    assert_eq!(err(&res), ("UNAVAILABLE", "TIMEOUT: node invoke timed out"));
    assert_eq!(res["error"]["details"]["nodeError"]["code"], "TIMEOUT");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "deadline honoured: {:?}",
        started.elapsed()
    );
    let cancel = loop {
        let v = na.recv().await;
        if v["event"] == "node.invoke.cancel" {
            break v;
        }
    };
    assert_eq!(
        cancel["payload"],
        json!({"invokeId": req["id"], "nodeId": a.id})
    );
    let late = answer(&mut na, &req, "{}").await;
    assert_eq!(late["payload"], json!({"ok": true, "ignored": true}));

    // A result from the wrong node: its own id → ignored; the other node's id → refused.
    let id = op
        .req("node.invoke", invoke_params(&a.id, "echo.test", 10_000))
        .await;
    let req = next_invoke(&mut na).await;
    let stolen =
        json!({"id": req["id"], "nodeId": b.id, "ok": true, "payloadJSON": "{\"from\":\"b\"}"});
    assert_eq!(
        nb.call("node.invoke.result", stolen).await["payload"],
        json!({"ok": true, "ignored": true})
    );
    let spoofed = json!({"id": req["id"], "nodeId": a.id, "ok": true, "payloadJSON": "{}"});
    assert_eq!(
        err(&nb.call("node.invoke.result", spoofed).await).1,
        "nodeId mismatch"
    );
    answer(&mut na, &req, "{\"from\":\"a\"}").await;
    assert_eq!(
        op.recv_res(&id).await["payload"]["payload"],
        json!({"from": "a"})
    );

    // A node-side failure comes back with its code.
    let id = op
        .req("node.invoke", invoke_params(&a.id, "echo.test", 10_000))
        .await;
    let req = next_invoke(&mut na).await;
    let fail = json!({"id": req["id"], "nodeId": a.id, "ok": false, "error": {"code": "E_BOOM", "message": "it broke"}});
    na.call("node.invoke.result", fail).await;
    let res = op.recv_res(&id).await;
    assert_eq!(err(&res), ("UNAVAILABLE", "E_BOOM: it broke"));

    // Oversize result: refused with a message, the node's answer is still acknowledged.
    let id = op
        .req("node.invoke", invoke_params(&a.id, "echo.test", 30_000))
        .await;
    let req = next_invoke(&mut na).await;
    let big = format!("\"{}\"", "x".repeat(14 * 1024 * 1024));
    answer(&mut na, &req, &big).await;
    let res = op.recv_res(&id).await;
    let (code, msg) = err(&res);
    assert_eq!(code, "UNAVAILABLE");
    assert!(
        msg.starts_with("PAYLOAD_TOO_LARGE") && msg.contains("frame limit"),
        "{msg}"
    );

    // Disconnect mid-invoke: the operator hears at once, not at the 30 s deadline.
    let id = op
        .req("node.invoke", invoke_params(&b.id, "system.run", 30_000))
        .await;
    next_invoke(&mut nb).await;
    let started = Instant::now();
    drop(nb);
    let res = op.recv_res(&id).await;
    assert_eq!(
        err(&res),
        (
            "UNAVAILABLE",
            "DISCONNECTED: node disconnected (system.run)"
        )
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Now it is paired but offline.
    let r = op
        .call("node.invoke", invoke_params(&b.id, "system.which", 1000))
        .await;
    assert_eq!(err(&r), ("UNAVAILABLE", "node not connected"));

    let st = op.call("status", json!({})).await;
    let inv = &st["payload"]["nodes"]["invokes"];
    assert_eq!(
        (inv["timeouts"].as_u64(), inv["disconnected"].as_u64()),
        (Some(1), Some(1)),
        "{inv}"
    );
    assert_eq!(inv["resultsIgnored"].as_u64(), Some(2), "{inv}");
    let outcomes: Vec<String> = audit(&gw)
        .iter()
        .filter(|v| v["event"] == "node.invoke")
        .map(|v| v["outcome"].as_str().unwrap_or("").to_string())
        .collect();
    for o in ["timeout", "ok", "node_error", "too_large"] {
        assert!(outcomes.iter().any(|x| x == o), "{o} in {outcomes:?}");
    }
    wait_audit(&gw, |v| {
        v["event"] == "node.disconnect" && v["failedInvokes"] == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_invokes_are_bounded_per_caller_and_per_node() {
    let gw = InProc::start(None, &[]).await;
    let mut op = admin(&gw).await;
    let (a, _silent) = approved_node(&gw, &mut op, "silent").await;
    // One connection: 48 pending, the 49th is refused.
    let mut first = admin(&gw).await;
    for _ in 0..48 {
        first
            .req("node.invoke", invoke_params(&a.id, "echo.test", 60_000))
            .await;
    }
    // Let the 48 reach the registry before the 49th.
    let deadline = Instant::now() + patience();
    loop {
        let st = op.call("node.list", json!({})).await;
        if st["payload"]["nodes"][0]["pendingInvokes"] == 48 {
            break;
        }
        assert!(Instant::now() < deadline, "{st}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = first
        .call("node.invoke", invoke_params(&a.id, "echo.test", 60_000))
        .await;
    let (code, msg) = err(&r);
    assert_eq!(code, "UNAVAILABLE");
    assert!(
        msg.contains("this connection has too many node invokes pending (limit 48)"),
        "{msg}"
    );
    assert_eq!(r["error"]["retryable"], true);
    // Across connections: 256 per node.
    let mut others = Vec::new();
    for _ in 0..5 {
        let mut c = admin(&gw).await;
        for _ in 0..42 {
            c.req("node.invoke", invoke_params(&a.id, "echo.test", 60_000))
                .await;
        }
        others.push(c);
    }
    let deadline = Instant::now() + patience();
    loop {
        let st = op.call("node.list", json!({})).await;
        if st["payload"]["nodes"][0]["pendingInvokes"] == 256 {
            break;
        }
        assert!(Instant::now() < deadline, "{st}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = op
        .call("node.invoke", invoke_params(&a.id, "echo.test", 60_000))
        .await;
    assert!(
        err(&r).1.contains(&format!(
            "too many invokes pending on node {} (limit 256)",
            a.id
        )),
        "{r}"
    );
    let st = op.call("status", json!({})).await;
    assert!(
        st["payload"]["nodes"]["invokes"]["overBound"]
            .as_u64()
            .unwrap()
            >= 3,
        "{st}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_tokens_for_nodes_and_operators_are_accepted_and_die_with_the_device() {
    let gw = InProc::start(None, &[]).await;
    let mut op = admin(&gw).await;
    let key = NodeKey::new();
    let (node, res) = key
        .connect(&gw.url(), NodeAuth::Token(TOKEN), "n", CMDS)
        .await;
    let token = res["payload"]["auth"]["deviceToken"]
        .as_str()
        .unwrap()
        .to_string();
    drop(node);
    // Reconnect with the device token only: accepted, same token handed back.
    let (node, res) = key
        .connect(&gw.url(), NodeAuth::DeviceToken(&token), "n", CMDS)
        .await;
    assert_eq!(res["payload"]["auth"]["method"], "device-token", "{res}");
    assert_eq!(res["payload"]["auth"]["deviceToken"], token.as_str());
    drop(node);
    // A wrong token, or someone else's, is refused as a wrong credential.
    let other = NodeKey::new();
    let (_c, res) = other
        .connect(&gw.url(), NodeAuth::DeviceToken(&token), "x", CMDS)
        .await;
    assert_eq!(
        res["error"]["details"]["code"], "AUTH_DEVICE_TOKEN_MISMATCH",
        "{res}"
    );
    let mut wrong = token.clone();
    wrong.replace_range(0..1, if wrong.starts_with('A') { "B" } else { "A" });
    let (_c, res) = key
        .connect(&gw.url(), NodeAuth::DeviceToken(&wrong), "n", CMDS)
        .await;
    assert_eq!(
        res["error"]["message"],
        "unauthorized: device token mismatch (rotate/reissue device token)"
    );

    // Operator devices get one too; it grants at most the approved scopes.
    let opkey = NodeKey::new();
    let (c, res) = opkey
        .connect_operator(&gw.url(), NodeAuth::Token(TOKEN), &["operator.read"])
        .await;
    let op_token = res["payload"]["auth"]["deviceToken"]
        .as_str()
        .expect("operator device token")
        .to_string();
    drop(c);
    let (mut c, res) = opkey
        .connect_operator(
            &gw.url(),
            NodeAuth::DeviceToken(&op_token),
            &["operator.read", "operator.admin"],
        )
        .await;
    assert_eq!(res["payload"]["auth"]["method"], "device-token", "{res}");
    assert_eq!(
        res["payload"]["auth"]["scopes"],
        json!(["operator.read"]),
        "no escalation via device token"
    );
    assert_eq!(c.call("health", json!({})).await["ok"], true);
    drop(c);

    // Removing the node closes it 4001 and revokes its token.
    let (mut node, _) = key
        .connect(&gw.url(), NodeAuth::DeviceToken(&token), "n", CMDS)
        .await;
    wait_pending(&mut op, 1).await;
    let r = op.call("node.pair.remove", json!({"nodeId": key.id})).await;
    assert_eq!(r["payload"], json!({"nodeId": key.id}), "{r}");
    assert_eq!(
        node.closed().await,
        Closed::Code(4001, "device removed".into())
    );
    let (_c, res) = key
        .connect(&gw.url(), NodeAuth::DeviceToken(&token), "n", CMDS)
        .await;
    assert_eq!(
        res["error"]["details"]["code"], "AUTH_DEVICE_TOKEN_MISMATCH",
        "{res}"
    );
    // And removing the operator device revokes its token the same way.
    op.call("device.pair.remove", json!({"deviceId": opkey.id}))
        .await;
    let (_c, res) = opkey
        .connect_operator(
            &gw.url(),
            NodeAuth::DeviceToken(&op_token),
            &["operator.read"],
        )
        .await;
    assert_eq!(
        res["error"]["details"]["code"], "AUTH_DEVICE_TOKEN_MISMATCH",
        "{res}"
    );
    wait_audit(&gw, |v| v["event"] == "node.pair.removed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_rename_and_events_to_operators() {
    let gw = InProc::start(None, &[]).await;
    let mut op = admin(&gw).await;
    let mut watcher = operator(&gw, &["operator.pairing"]).await;
    let key = NodeKey::new();
    let (mut node, _) = key
        .connect(&gw.url(), NodeAuth::Token(TOKEN), "n1", &["echo.test"])
        .await;
    // A pairing operator hears about the request.
    let requested = loop {
        let v = watcher.recv().await;
        if v["event"] == "node.pair.requested" {
            break v;
        }
    };
    assert_eq!(
        requested["payload"]["requiredApproveScopes"],
        json!(["operator.pairing", "operator.write"])
    );
    let rid = requested["payload"]["requestId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = op.call("node.pair.reject", json!({"requestId": rid})).await;
    assert_eq!(r["payload"], json!({"requestId": rid, "nodeId": key.id}));
    let resolved = loop {
        let v = node.recv().await;
        if v["event"] == "node.pair.resolved" {
            break v;
        }
    };
    assert_eq!(resolved["payload"]["decision"], "rejected");
    let listed = op.call("node.describe", json!({"nodeId": key.id})).await;
    assert_eq!(listed["payload"]["approvalState"], "unapproved", "{listed}");
    assert_eq!(
        err(&op
            .call("node.rename", json!({"nodeId": key.id, "displayName": "x"}))
            .await)
        .1,
        "unknown nodeId"
    );
    assert_eq!(
        err(&op
            .call("node.pair.approve", json!({"requestId": rid}))
            .await)
        .1,
        "unknown requestId"
    );
    // Reconnecting asks again; approve and rename.
    drop(node);
    let (_node, _) = key
        .connect(&gw.url(), NodeAuth::Token(TOKEN), "n1", &["echo.test"])
        .await;
    wait_pending(&mut op, 1).await;
    approve_all(&mut op).await;
    let r = op
        .call(
            "node.rename",
            json!({"nodeId": key.id, "displayName": "build-box"}),
        )
        .await;
    assert_eq!(
        r["payload"],
        json!({"nodeId": key.id, "displayName": "build-box"})
    );
    let d = op.call("node.describe", json!({"nodeId": key.id})).await;
    assert_eq!(
        (
            d["payload"]["displayName"].as_str(),
            d["payload"]["approvalState"].as_str()
        ),
        (Some("build-box"), Some("approved"))
    );
    assert_eq!(
        err(&op.call("node.describe", json!({"nodeId": "nope"})).await).1,
        "unknown nodeId"
    );
}

#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_node_registry_fails_pending_invokes_and_recovers_its_nodes() {
    let gw = InProc::start(None, &[]).await;
    let mut op = admin(&gw).await;
    let (a, na) = approved_node(&gw, &mut op, "node-a").await;
    let mut na = na;
    let id = op
        .req("node.invoke", invoke_params(&a.id, "echo.test", 60_000))
        .await;
    next_invoke(&mut na).await;
    let started = Instant::now();
    let r = op.call("debug.nodes.panic", json!({})).await;
    assert_eq!(r["ok"], true, "{r}");
    let res = op.recv_res(&id).await;
    let (code, msg) = err(&res);
    assert_eq!(code, "UNAVAILABLE");
    assert!(
        msg.starts_with("node registry stopped before answering"),
        "{msg}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed cleanly, did not hang"
    );
    // The restarted registry knows the node again (its session re-announced itself).
    let deadline = Instant::now() + patience();
    loop {
        let l = op.call("node.list", json!({})).await;
        if l["ok"] == true && l["payload"]["nodes"][0]["connected"] == true {
            assert_eq!(
                l["payload"]["nodes"][0]["approvalState"], "approved",
                "approval survived (on disk)"
            );
            break;
        }
        assert!(Instant::now() < deadline, "node never re-registered: {l}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = op
        .req("node.invoke", invoke_params(&a.id, "echo.test", 10_000))
        .await;
    let req = next_invoke(&mut na).await;
    answer(&mut na, &req, "{\"after\":\"restart\"}").await;
    assert_eq!(
        op.recv_res(&id).await["payload"]["payload"],
        json!({"after": "restart"})
    );
}

/// Sends `n` invokes spread over `nodes` and reads every answer.
async fn burst(mut op: Client, nodes: Vec<String>, n: usize) -> Vec<Value> {
    let mut ids = HashSet::new();
    for i in 0..n {
        let node = &nodes[i % nodes.len()];
        let p = json!({"nodeId": node, "command": "echo.test", "params": {"i": i},
                       "idempotencyKey": format!("k{i}"), "timeoutMs": 60_000});
        ids.insert(op.req("node.invoke", p).await);
    }
    let mut out = Vec::new();
    while !ids.is_empty() {
        let v = op.recv().await;
        if v["type"] == "res" && ids.remove(v["id"].as_str().unwrap_or("")) {
            out.push(v);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_nodes_times_one_hundred_concurrent_invokes_lose_and_duplicate_nothing() {
    let gw = InProc::start(None, &[]).await;
    let mut op = admin(&gw).await;
    let mut keys = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (k, c) = approved_node(&gw, &mut op, &format!("load-{i}")).await;
        keys.push(k.id.clone());
        tasks.push(spawn_echo_node(c));
    }
    // 25 operator connections × 40 in flight = 1000 concurrent invokes, 100 per node.
    let mut bursts = Vec::new();
    for _ in 0..25 {
        let c = admin(&gw).await;
        bursts.push(tokio::spawn(burst(c, keys.clone(), 40)));
    }
    let mut invoke_ids = HashSet::new();
    let mut per_node = std::collections::HashMap::<String, usize>::new();
    for b in bursts {
        for res in b.await.unwrap() {
            assert_eq!(res["ok"], true, "{res}");
            let p = &res["payload"];
            let echoed: Value =
                serde_json::from_str(p["payload"]["echo"].as_str().unwrap()).unwrap();
            assert!(echoed["i"].is_u64());
            assert!(
                invoke_ids.insert(p["payload"]["id"].as_str().unwrap().to_string()),
                "duplicate result"
            );
            *per_node
                .entry(p["nodeId"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(invoke_ids.len(), 1000);
    assert_eq!(per_node.len(), 10);
    assert!(per_node.values().all(|n| *n == 100), "{per_node:?}");
    let st = op.call("status", json!({})).await;
    let inv = &st["payload"]["nodes"]["invokes"];
    assert_eq!(
        (
            inv["relayed"].as_u64(),
            inv["resultsIgnored"].as_u64(),
            inv["timeouts"].as_u64()
        ),
        (Some(1000), Some(0), Some(0)),
        "{inv}"
    );
    drop(op);
    gw.gw.shutdown("test done").await;
    let mut answered = 0;
    for t in tasks {
        answered += tokio::time::timeout(patience(), t).await.unwrap().unwrap();
    }
    assert_eq!(answered, 1000, "every request answered exactly once");
}

/// Our CLI against the gateway binary and a test node: `nodes pending|approve|list|describe|
/// invoke|rename|remove`, node rows in `status`, and `logs --filter node`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_approves_lists_describes_and_invokes_nodes() {
    use common::{Gw, Opts};
    let gw = Gw::start(Opts::default());
    let url = gw.url();
    let key = NodeKey::new();
    let cmds = &["system.which", "system.run", "echo.test"];
    let (node, res) = key
        .connect(&url, NodeAuth::Token(TOKEN), "cli-node", cmds)
        .await;
    assert_eq!(res["ok"], true, "{res}");
    let answers = common::node::spawn_node(node, |p| match p["command"].as_str() {
        Some("system.run") => json!({"exitCode": 0, "timedOut": false, "success": true,
                                    "stdout": "hi\n", "stderr": "", "error": null})
        .to_string(),
        _ => json!({"echo": p["paramsJSON"]}).to_string(),
    });
    let cli = |args: Vec<&str>| {
        let gw = &gw;
        let args: Vec<String> = args.into_iter().map(str::to_string).collect();
        async move {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, out, errs) = tokio::task::block_in_place(|| gw.cli(&a));
            (code, out, errs)
        }
    };
    // pending (wait for the request to exist)
    let deadline = Instant::now() + patience();
    let rid = loop {
        let (code, out, errs) = cli(vec!["nodes", "pending", "--json"]).await;
        assert_eq!(code, 0, "{out}{errs}");
        let v: Value = serde_json::from_str(&out).unwrap();
        if let Some(r) = v["pending"][0]["requestId"].as_str() {
            break r.to_string();
        }
        assert!(Instant::now() < deadline, "{out}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (code, out, _) = cli(vec!["nodes", "pending"]).await;
    assert!(
        code == 0 && out.contains(&rid) && out.contains("operator.admin"),
        "{out}"
    );
    let (code, out, errs) = cli(vec!["nodes", "approve", &rid]).await;
    assert_eq!(code, 0, "{out}{errs}");
    let (code, out, _) = cli(vec!["nodes", "list"]).await;
    assert!(
        code == 0 && out.contains("cli-node") && out.contains("approved"),
        "{out}"
    );
    // describe by a 6-char id prefix; invoke by name.
    let (code, out, errs) = cli(vec!["nodes", "describe", &key.id[..6], "--json"]).await;
    assert_eq!(code, 0, "{out}{errs}");
    let d: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["nodeId"], key.id.as_str());
    let (code, out, errs) = cli(vec!["nodes", "describe", &key.id[..5]]).await;
    assert_ne!(code, 0, "a 5-char prefix is too short: {out}{errs}");
    let (code, out, errs) = cli(vec![
        "nodes",
        "invoke",
        "cli-node",
        "echo.test",
        "--params",
        r#"{"x":1}"#,
        "--json",
    ])
    .await;
    assert_eq!(code, 0, "{out}{errs}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["payload"]["echo"], "{\"x\":1}", "{v}");
    let (code, out, errs) = cli(vec![
        "nodes",
        "invoke",
        "cli-node",
        "system.run",
        "--params",
        r#"{"command":["echo","hi"]}"#,
    ])
    .await;
    assert_eq!((code, out.as_str()), (0, "hi\n"), "{errs}");
    let (code, _, errs) = cli(vec![
        "nodes",
        "invoke",
        "cli-node",
        "echo.test",
        "--params",
        "{not json",
    ])
    .await;
    assert!(code == 2 && errs.contains("--params"), "{errs}");
    let (code, _, errs) = cli(vec!["nodes", "invoke", "no-such-node", "echo.test"]).await;
    assert!(code != 0 && errs.contains("no-such-node"), "{errs}");
    // status shows the node.
    let (code, out, _) = cli(vec!["status"]).await;
    assert!(
        code == 0
            && out.contains("1 connected, 1 paired, 0 pending approval")
            && out.contains("cli-node"),
        "{out}"
    );
    // rename, then remove closes the node.
    let (code, out, errs) = cli(vec!["nodes", "rename", "cli-node", "renamed-node"]).await;
    assert_eq!(code, 0, "{out}{errs}");
    let (code, out, errs) = cli(vec!["nodes", "remove", "renamed-node"]).await;
    assert_eq!(code, 0, "{out}{errs}");
    assert_eq!(
        tokio::time::timeout(patience(), answers)
            .await
            .unwrap()
            .unwrap(),
        2
    );
    // logs --filter node: node events only, every step there.
    let (code, out, errs) = cli(vec!["logs", "--filter", "node", "--limit", "200"]).await;
    assert_eq!(code, 0, "{out}{errs}");
    for e in [
        "node.connect",
        "node.pair.requested",
        "node.pair.approved",
        "node.invoke",
        "node.renamed",
        "node.pair.removed",
        "node.disconnect",
    ] {
        assert!(out.contains(e), "{e} missing from:\n{out}");
    }
    assert!(
        out.lines().all(|l| l.contains(" node.")),
        "only node events:\n{out}"
    );
}

/// Params that fit the operator's frame but not the node's once re-encoded as `paramsJSON`
/// (every `"` becomes `\\\"`) are refused with a message; the node sees nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn params_too_large_for_the_node_are_refused_with_a_message() {
    let gw = InProc::start(None, &[]).await;
    let mut op = admin(&gw).await;
    let (a, mut na) = approved_node(&gw, &mut op, "big").await;
    let quotes = "\"".repeat(12 * 1024 * 1024);
    let p = json!({"nodeId": a.id, "command": "echo.test", "params": {"q": quotes},
                   "idempotencyKey": "k", "timeoutMs": 5000});
    let r = op.call("node.invoke", p).await;
    let (code, msg) = err(&r);
    assert_eq!(code, "INVALID_REQUEST");
    assert!(
        msg.starts_with("node.invoke params too large") && msg.contains("frame limit"),
        "{msg}"
    );
    // The node got nothing: the next request it sees is a small one.
    let id = op
        .req("node.invoke", invoke_params(&a.id, "echo.test", 5000))
        .await;
    let req = next_invoke(&mut na).await;
    assert_eq!(req["paramsJSON"], "{\"bins\":[\"sh\"]}");
    answer(&mut na, &req, "{}").await;
    assert_eq!(op.recv_res(&id).await["ok"], true);
}
