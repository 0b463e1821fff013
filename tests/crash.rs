//! Crash isolation: a session whose handler panics closes only its own socket; the other
//! connections keep working, new ones are accepted, and the audit log records the crash.
//! Needs `--features fault-injection` (adds the test-only `debug.panic` method).

#![cfg(feature = "fault-injection")]

mod common;

use common::{Client, Closed, Gw, Opts, TOKEN};
use serde_json::json;

#[tokio::test]
async fn a_panicking_session_does_not_disturb_the_gateway() {
    let gw = Gw::start(Opts::default());
    let (mut victim, hello) = Client::authed(&gw.url(), TOKEN).await;
    let victim_id = hello["server"]["connId"].as_str().unwrap().to_string();
    let (mut bystander, _) = Client::authed(&gw.url(), TOKEN).await;

    victim.req("debug.panic", json!({})).await;
    // exactly 1011: a bare EOF would mean nothing closed the socket on the session's behalf
    match victim.closed().await {
        Closed::Code(code, reason) => assert_eq!(
            code, 1011,
            "the crashed session's socket closes 1011, got {code} {reason:?}"
        ),
        Closed::Eof => {
            panic!("the crashed session's socket ended without a close frame (want 1011)")
        }
    }

    // the other connection is untouched
    for _ in 0..3 {
        assert_eq!(bystander.call("health", json!({})).await["ok"], true);
    }
    // new connections are accepted
    let (mut fresh, _) = Client::authed(&gw.url(), TOKEN).await;
    let st = fresh.call("status", json!({})).await;
    assert_eq!(st["payload"]["sessionsCrashed"], 1, "{st}");
    // the registry forgot the crashed connection
    let list = fresh.call("gateway.connections.list", json!({})).await;
    let ids: Vec<String> = list["payload"]["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["connId"].as_str().unwrap().to_string())
        .collect();
    assert!(!ids.contains(&victim_id), "{ids:?}");
    assert_eq!(ids.len(), 2);

    let crash = gw.wait_audit("session.crashed", |v| v["event"] == "session.crashed");
    assert_eq!(crash["connId"], victim_id.as_str());
    assert!(
        crash["error"].as_str().unwrap().contains("fault injection"),
        "{crash}"
    );
    gw.wait_audit("conn.close of the crashed session", |v| {
        v["event"] == "conn.close" && v["connId"] == victim_id.as_str()
    });
}

#[tokio::test]
async fn repeated_session_crashes_never_restart_or_stop_the_root() {
    let gw = Gw::start(Opts::default());
    // far more crashes than the root's restart intensity (5 in 30 s): sessions are temporary
    for _ in 0..12 {
        let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
        c.req("debug.panic", json!({})).await;
        let closed = c.closed().await;
        assert!(matches!(closed, Closed::Code(1011, _)), "{closed:?}");
    }
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    let st = c.call("status", json!({})).await;
    assert_eq!(st["payload"]["sessionsCrashed"], 12);
    assert!(
        !gw.audit().iter().any(|v| v["event"] == "actor.failed"),
        "no root child failed"
    );
}
