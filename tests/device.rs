//! Device identity end to end: a v3-signed device on loopback is verified and silently
//! approved (persisted 0600); a device that is not local (proxy headers) needs pairing and
//! gets the NOT_PAIRED error and close reason openclaw-node parses; a bad signature is
//! refused with DEVICE_AUTH_* details.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{patience, Client, Closed, Gw, Opts, TOKEN};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn device_id(pk: &[u8]) -> String {
    Sha256::digest(pk)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `connect` params for `gateway-client`/`backend` with a v3 device signature over `nonce`.
fn signed_params(key: &SigningKey, nonce: &str, tamper: bool) -> Value {
    let pk = key.verifying_key().to_bytes();
    let id = device_id(&pk);
    let signed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let scopes = "operator.read,operator.write";
    let payload = format!(
        "v3|{id}|gateway-client|backend|operator|{scopes}|{signed_at}|{TOKEN}|{nonce}|linux|linux"
    );
    let mut sig = key.sign(payload.as_bytes()).to_bytes();
    if tamper {
        sig[0] ^= 1;
    }
    json!({
        "minProtocol": 4, "maxProtocol": 4,
        "client": {"id": "gateway-client", "version": "test", "platform": "Linux", "deviceFamily": "Linux", "mode": "backend"},
        "role": "operator", "scopes": ["operator.read", "operator.write"], "auth": {"token": TOKEN},
        "device": {"id": id, "publicKey": URL_SAFE_NO_PAD.encode(pk), "signature": URL_SAFE_NO_PAD.encode(sig),
                   "signedAt": signed_at, "nonce": nonce},
    })
}

async fn connect_device(
    url: &str,
    key: &SigningKey,
    forwarded: bool,
    tamper: bool,
) -> (Client, Value) {
    let mut req = url.into_client_request().unwrap();
    if forwarded {
        req.headers_mut()
            .insert("x-forwarded-for", "198.18.0.7".parse().unwrap());
    }
    let (ws, _) = tokio::time::timeout(patience(), tokio_tungstenite::connect_async(req))
        .await
        .unwrap()
        .unwrap();
    let mut c = Client::from_ws(ws);
    let ch = c.recv().await;
    let nonce = ch["payload"]["nonce"].as_str().unwrap().to_string();
    c.send(&json!({"type":"req","id":"c1","method":"connect","params": signed_params(key, &nonce, tamper)})).await;
    let res = c.recv_res("c1").await;
    (c, res)
}

/// A gateway that trusts forwarded headers from loopback, so a test can play a remote device
/// by sending `X-Forwarded-For` (forwarded headers from anyone else are refused).
fn behind_proxy() -> Opts {
    Opts {
        config: Some(r#"{ gateway: { trustedProxies: ["127.0.0.1", "::1"] } }"#.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn local_v3_device_is_verified_and_silently_paired() {
    let gw = Gw::start(behind_proxy());
    let key = SigningKey::from_bytes(&[11u8; 32]);
    let (mut c, res) = connect_device(&gw.url(), &key, false, false).await;
    assert_eq!(res["ok"], true, "{res}");
    assert_eq!(
        res["payload"]["auth"]["scopes"],
        json!(["operator.read", "operator.write"])
    );
    assert_eq!(c.call("health", json!({})).await["ok"], true);

    let id = device_id(&key.verifying_key().to_bytes());
    let path = gw.state_dir().join("devices/paired.json");
    let deadline = std::time::Instant::now() + patience();
    while !path.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(stored[&id]["approvedVia"], "silent");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let ok = gw.wait_audit("auth.ok with device", |v| {
        v["event"] == "auth.ok" && v["deviceId"] == id.as_str()
    });
    assert_eq!(ok["clientId"], "gateway-client");
    gw.wait_audit("device.approved", |v| {
        v["event"] == "device.approved" && v["deviceId"] == id.as_str()
    });

    // the same device now passes even when it is not local
    let (_c2, res) = connect_device(&gw.url(), &key, true, false).await;
    assert_eq!(res["ok"], true, "paired device: {res}");
}

#[tokio::test]
async fn a_device_that_is_not_local_needs_pairing() {
    let gw = Gw::start(behind_proxy());
    let key = SigningKey::from_bytes(&[12u8; 32]);
    let (mut c, res) = connect_device(&gw.url(), &key, true, false).await;
    assert_eq!(res["error"]["code"], "NOT_PAIRED", "{res}");
    let d = &res["error"]["details"];
    assert_eq!(d["code"], "PAIRING_REQUIRED");
    assert_eq!(d["reason"], "not-paired");
    let request_id = d["requestId"].as_str().unwrap().to_string();
    let want = format!("pairing required: device is not approved yet (requestId: {request_id})");
    assert_eq!(c.closed().await, Closed::Code(1008, want));
    // a retry keeps the same request id
    let (_, again) = connect_device(&gw.url(), &key, true, false).await;
    assert_eq!(again["error"]["details"]["requestId"], request_id.as_str());
    assert!(!gw.state_dir().join("devices/paired.json").exists());
}

#[tokio::test]
async fn a_bad_device_signature_is_refused() {
    let gw = Gw::start(Opts::default());
    let key = SigningKey::from_bytes(&[13u8; 32]);
    let (mut c, res) = connect_device(&gw.url(), &key, false, true).await;
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");
    assert_eq!(res["error"]["message"], "device signature invalid");
    assert_eq!(
        res["error"]["details"]["code"],
        "DEVICE_AUTH_SIGNATURE_INVALID"
    );
    assert_eq!(
        c.closed().await,
        Closed::Code(1008, "device signature invalid".into())
    );
}

#[tokio::test]
async fn trace_level_logs_every_actor_message_inside_the_connection_span() {
    let gw = Gw::start(Opts {
        env: vec![("RUST_LOG".into(), "openclaw_actors=trace".into())],
        ..Default::default()
    });
    let (mut c, hello) = Client::authed(&gw.url(), TOKEN).await;
    let conn_id = hello["server"]["connId"].as_str().unwrap().to_string();
    c.call("health", json!({})).await;
    let deadline = std::time::Instant::now() + patience();
    loop {
        let err = gw.stderr();
        let lines: Vec<&str> = err.lines().filter(|l| l.contains(&conn_id)).collect();
        let session = lines
            .iter()
            .any(|l| l.contains("actor=\"session\"") && l.contains("msg=\"Inbound\""));
        let auth = lines
            .iter()
            .any(|l| l.contains("actor=\"auth\"") && l.contains("msg=\"Authenticate\""));
        if session && auth {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "missing trace lines for {conn_id}:\n{err}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
