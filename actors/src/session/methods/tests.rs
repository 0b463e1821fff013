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

fn conn(hub: &Hub) -> Arc<ConnStats> {
    hub.registry.register(Arc::new(ConnFacts {
        conn_id: "c1".into(),
        peer: "127.0.0.1:1".parse().unwrap(),
        client: "127.0.0.1".parse().unwrap(),
        forwarded: false,
        origin: None,
        proxy_user: None,
        user_agent: None,
        connected_at_ms: 0,
    }))
}

/// Valid params for each method, so that the handler itself runs.
fn params(name: &str) -> Value {
    match name {
        "gateway.tunnels.restart" | "debug.tunnel.panic" => json!({"name": "t"}),
        "device.pair.approve" | "device.pair.reject" => json!({"requestId": "r"}),
        "device.pair.remove" => json!({"deviceId": "d"}),
        _ => json!({}),
    }
}

#[tokio::test]
async fn every_entry_has_a_scope_and_dispatches() {
    let hub = hub();
    let peers = Peers::default();
    let stats = conn(&hub);
    let admin = identity(&[ADMIN]);
    let names = names();
    assert!(names.len() >= 14, "{names:?}");
    for m in table() {
        assert!(
            [READ, WRITE, ADMIN, PAIRING].contains(&m.scope),
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
        if m.name == "debug.panic" {
            continue; // its handler panics by design
        }
        let p = params(m.name);
        let call = Call {
            method: m.name,
            hub: &hub,
            peers: &peers,
            who: &admin,
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
    for m in table() {
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
