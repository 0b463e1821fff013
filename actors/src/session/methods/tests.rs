//! The method table: every entry has a scope, dispatches to its handler (not to "unknown
//! method"), and is refused without its scope.

use std::sync::Arc;

use super::*;
use crate::protocol::scopes::WRITE;
use crate::shared::ConnFacts;

fn hub() -> Hub {
    let dir = std::env::temp_dir().join(format!("oc-methods-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("openclaw.json"), "{}").unwrap();
    let inputs = crate::config::Inputs {
        config: Some(dir.join("openclaw.json")),
        ..Default::default()
    };
    let d = dir.display().to_string();
    let env = move |k: &str| matches!(k, "OPENCLAW_STATE_DIR" | "HOME").then(|| d.clone());
    let settings = crate::config::resolve(&inputs, &env).unwrap_or_else(|e| panic!("{e}"));
    let (audit, _args) = crate::audit::channel(dir.join("audit.jsonl"));
    let secrets = crate::auth::rules::Secrets {
        mode: settings.auth.mode,
        token: None,
        password: None,
    };
    Hub::new(settings, audit, None, secrets, None)
}

fn identity(scopes: &[&str]) -> Identity {
    Identity {
        client_id: "test".into(),
        client_mode: "cli".into(),
        client_version: "1".into(),
        platform: "linux".into(),
        device_family: None,
        display_name: None,
        instance_id: None,
        role: "operator".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        auth_method: "token",
        device_id: None,
        protocol: 3,
        authenticated_at_ms: 0,
    }
}

fn node_identity() -> Identity {
    Identity {
        client_id: "node-host".into(),
        client_mode: "node".into(),
        role: "node".into(),
        device_id: Some("dev".into()),
        ..identity(&[])
    }
}

fn conn(hub: &Hub) -> Arc<ConnStats> {
    hub.registry
        .register(Arc::new(ConnFacts::direct("127.0.0.1:1")))
}

/// Valid params for each method, so that the handler itself runs.
fn params(name: &str) -> Value {
    match name {
        "gateway.tunnels.restart" | "debug.tunnel.panic" => json!({"name": "t"}),
        "device.pair.approve" | "device.pair.reject" => json!({"requestId": "r"}),
        "device.pair.remove" => json!({"deviceId": "d"}),
        "node.describe" | "node.pair.remove" => json!({"nodeId": "n"}),
        "node.pair.approve" | "node.pair.reject" => json!({"requestId": "r"}),
        "node.rename" => json!({"nodeId": "n", "displayName": "x"}),
        "node.invoke" => json!({"nodeId": "n", "command": "system.which", "idempotencyKey": "k"}),
        "node.invoke.result" => json!({"id": "i", "nodeId": "dev", "ok": true}),
        "node.event" => json!({"event": "node.host.stats"}),
        _ => json!({}),
    }
}

#[tokio::test]
async fn every_entry_has_a_scope_and_dispatches() {
    let hub = hub();
    let peers = Peers::default();
    let stats = conn(&hub);
    let admin = identity(&[ADMIN]);
    let node = node_identity();
    let names = names();
    assert!(names.len() >= 14, "{names:?}");
    for m in table() {
        assert!(
            [READ, WRITE, ADMIN, PAIRING].contains(&m.scope) || m.role == Role::Node,
            "{}: scope {}",
            m.name,
            m.scope
        );
        assert_eq!(
            names.iter().filter(|n| **n == m.name).count(),
            1,
            "{} listed once",
            m.name
        );
        if matches!(
            m.name,
            "debug.panic" | "debug.nodes.panic" | "gateway.trace.start" | "gateway.trace.read"
        ) {
            continue; // panics by design / needs a running registry / another open connection
        }
        let p = params(m.name);
        let call = Call {
            method: m.name,
            hub: &hub,
            peers: &peers,
            who: if m.role == Role::Node { &node } else { &admin },
            conn: &stats,
            params: Some(&p),
        };
        let kind = match (dispatch(&call), m.run) {
            (Dispatch::Done(Ok(_)), Run::Now(_)) => "now",
            (Dispatch::Raw(Ok(raw)), Run::NowRaw(_)) => {
                serde_json::from_str::<Value>(&raw).expect("raw payloads are JSON");
                "now-raw"
            }
            (Dispatch::Blocking(_), Run::Blocking(_)) => "blocking",
            (Dispatch::Async(_), Run::Async(_)) => "async",
            (Dispatch::Done(Err(e)), _) => panic!("{} answered {e:?}", m.name),
            _ => panic!("{} ran differently from its table entry", m.name),
        };
        assert!(!kind.is_empty());
    }
}

#[test]
fn a_missing_scope_or_an_unknown_method_is_refused() {
    let hub = hub();
    let peers = Peers::default();
    let stats = conn(&hub);
    let nobody = identity(&[]);
    for m in table().filter(|m| m.role == Role::Operator) {
        let call = Call {
            method: m.name,
            hub: &hub,
            peers: &peers,
            who: &nobody,
            conn: &stats,
            params: None,
        };
        match dispatch(&call) {
            Dispatch::Done(Err(e)) | Dispatch::Raw(Err(e)) => {
                assert!(e.message.contains(m.scope), "{}: {e:?}", m.name)
            }
            _ => panic!("{} ran without its scope", m.name),
        }
    }
    let call = Call {
        method: "no.such.method",
        hub: &hub,
        peers: &peers,
        who: &identity(&[ADMIN]),
        conn: &stats,
        params: None,
    };
    assert!(matches!(dispatch(&call), Dispatch::Done(Err(_))));
    assert!(find("no.such.method").is_none());
}

#[test]
fn roles_are_gated_both_ways() {
    let hub = hub();
    let peers = Peers::default();
    let stats = conn(&hub);
    let (admin, node) = (identity(&[ADMIN]), node_identity());
    let p = params("node.invoke.result");
    let cases = [
        ("node.invoke.result", &admin, "unauthorized role: operator"),
        ("node.event", &admin, "unauthorized role: operator"),
        ("health", &node, "unauthorized role: node"),
        ("node.invoke", &node, "unauthorized role: node"),
        ("node.list", &node, "unauthorized role: node"),
    ];
    for (method, who, want) in cases {
        let call = Call {
            method,
            hub: &hub,
            peers: &peers,
            who,
            conn: &stats,
            params: Some(&p),
        };
        match dispatch(&call) {
            Dispatch::Done(Err(e)) => assert_eq!(e.message, want, "{method}"),
            _ => panic!("{method} ran for the wrong role"),
        }
    }
    // A result must name the caller's own node id.
    let wrong = json!({"id": "i", "nodeId": "someone-else", "ok": true});
    let call = Call {
        method: "node.invoke.result",
        hub: &hub,
        peers: &peers,
        who: &node,
        conn: &stats,
        params: Some(&wrong),
    };
    match dispatch(&call) {
        Dispatch::Done(Err(e)) => assert_eq!(e.message, "nodeId mismatch"),
        _ => panic!("a result for another node id was accepted"),
    }
}

#[test]
fn health_is_served_from_a_short_cache_that_follows_connections_and_probe() {
    let h = hub();
    let first = health_json(&h, false);
    let v: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["ok"], true);
    // Within the cache period, the same answer (same ts) comes back.
    assert_eq!(health_json(&h, false), first);
    // A listener change makes it stale at once.
    h.registry.add_listener("127.0.0.1:1".parse().unwrap());
    let after = health_json(&h, false);
    assert_ne!(after, first);
    let v: Value = serde_json::from_str(&after).unwrap();
    assert_eq!(
        v["gateway"]["listeners"].as_array().unwrap().len(),
        1,
        "{v}"
    );
    // probe: true is always fresh (and refreshes the cache).
    std::thread::sleep(std::time::Duration::from_millis(5));
    let probed = health_json(&h, true);
    let (a, b): (Value, Value) = (
        serde_json::from_str(&after).unwrap(),
        serde_json::from_str(&probed).unwrap(),
    );
    assert!(b["ts"].as_i64() > a["ts"].as_i64(), "{a} {b}");
    assert_eq!(health_json(&h, false), probed);
    // Past the cache period, a fresh one.
    std::thread::sleep(std::time::Duration::from_millis(
        HEALTH_CACHE_MS as u64 + 20,
    ));
    assert_ne!(health_json(&h, false), probed);
}
