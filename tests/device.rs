//! Device identity end to end: a v3-signed device on loopback is verified and silently
//! approved (persisted 0600); a device that is not local (proxy headers) needs pairing and
//! gets the NOT_PAIRED error and close reason openclaw-node parses, then is approved,
//! rejected or removed with `openclaw devices …`; a bad signature is refused with
//! DEVICE_AUTH_* details.

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

/// Who a signed device says it is.
#[derive(Clone, Copy)]
enum As {
    /// `gateway-client`/`backend`, role `operator`, read + write.
    Backend,
    /// `node-host`/`node`, role `node`, no scopes.
    Node,
}

/// `connect` params for `who` with a v3 device signature over `nonce`.
fn signed_params(key: &SigningKey, nonce: &str, tamper: bool, who: As) -> Value {
    let pk = key.verifying_key().to_bytes();
    let id = device_id(&pk);
    let signed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (client_id, mode, role, scopes): (&str, &str, &str, &[&str]) = match who {
        As::Backend => (
            "gateway-client",
            "backend",
            "operator",
            &["operator.read", "operator.write"],
        ),
        As::Node => ("node-host", "node", "node", &[]),
    };
    let joined = scopes.join(",");
    let payload = format!(
        "v3|{id}|{client_id}|{mode}|{role}|{joined}|{signed_at}|{TOKEN}|{nonce}|linux|linux"
    );
    let mut sig = key.sign(payload.as_bytes()).to_bytes();
    if tamper {
        sig[0] ^= 1;
    }
    json!({
        "minProtocol": 4, "maxProtocol": 4,
        "client": {"id": client_id, "version": "test", "platform": "Linux", "deviceFamily": "Linux", "mode": mode},
        "role": role, "scopes": scopes, "auth": {"token": TOKEN},
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
    connect_device_as(url, key, forwarded, tamper, As::Backend).await
}

async fn connect_device_as(
    url: &str,
    key: &SigningKey,
    forwarded: bool,
    tamper: bool,
    who: As,
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
    let params = signed_params(key, &nonce, tamper, who);
    c.send(&json!({"type":"req","id":"c1","method":"connect","params": params}))
        .await;
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

/// Options for the pairing tests: a "remote" device sends `X-Forwarded-For` through a
/// trusted (loopback) proxy.
fn remote_device_opts() -> Opts {
    behind_proxy()
}

/// The `remoteIp` recorded for such a device: the forwarded client `connect_device` names.
const REMOTE_IP: &str = "198.18.0.7";

/// The `NOT_PAIRED` requestId of a forwarded connect of `key` as `who`.
async fn pairing_request(gw: &Gw, key: &SigningKey, who: As) -> String {
    let (_, res) = connect_device_as(&gw.url(), key, true, false, who).await;
    assert_eq!(res["error"]["code"], "NOT_PAIRED", "{res}");
    res["error"]["details"]["requestId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `openclaw ARGS` against `gw`; asserts exit 0 and returns stdout.
fn cli_ok(gw: &Gw, args: &[&str]) -> String {
    let (code, out, err) = gw.cli(args);
    assert_eq!(code, 0, "openclaw {args:?}: {out}{err}");
    out
}

fn paired_json(gw: &Gw) -> Value {
    let path = gw.state_dir().join("devices/paired.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn a_remote_device_is_approved_and_removed_with_the_cli() {
    let gw = Gw::start(remote_device_opts());
    let key = SigningKey::from_bytes(&[21u8; 32]);
    let id = device_id(&key.verifying_key().to_bytes());
    let request_id = pairing_request(&gw, &key, As::Backend).await;
    assert_eq!(pairing_request(&gw, &key, As::Backend).await, request_id);

    let listed: Value = serde_json::from_str(&cli_ok(&gw, &["devices", "list", "--json"])).unwrap();
    let pending = listed["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{listed}");
    let p = &pending[0];
    assert_eq!(
        (&p["requestId"], &p["deviceId"], &p["role"]),
        (&json!(request_id), &json!(id), &json!("operator"))
    );
    assert_eq!(p["scopes"], json!(["operator.read", "operator.write"]));
    assert_eq!(
        (&p["clientId"], &p["clientMode"]),
        (&json!("gateway-client"), &json!("backend"))
    );
    assert_eq!(
        (&p["silent"], &p["isRepair"]),
        (&json!(false), &json!(false))
    );
    assert_eq!(p["remoteIp"], REMOTE_IP);
    assert!(p["publicKey"].as_str().is_some_and(|k| !k.is_empty()));
    assert_eq!(listed["paired"], json!([]));
    // Audit lines are written in order: once the second attempt's `auth.fail` is on disk,
    // so is anything it recorded before it.
    let refused = |v: &Value| v["event"] == "auth.fail" && v["deviceId"] == id.as_str();
    let deadline = std::time::Instant::now() + patience();
    while gw.audit().iter().filter(|v| refused(v)).count() < 2 {
        assert!(std::time::Instant::now() < deadline, "{:#?}", gw.audit());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let requested: Vec<Value> = gw
        .audit()
        .into_iter()
        .filter(|v| v["event"] == "device.pair.requested")
        .collect();
    assert_eq!(
        requested.len(),
        1,
        "one event per new request, none per retry"
    );
    assert_eq!(
        (&requested[0]["deviceId"], &requested[0]["requestId"]),
        (&json!(id), &json!(request_id))
    );
    assert_eq!(requested[0]["remoteIp"], REMOTE_IP);

    let out = cli_ok(&gw, &["devices", "approve", &request_id]);
    assert!(
        out.contains("approved device") && out.contains(&id),
        "{out}"
    );
    // answered after the write: the record is on disk, 0600, without tokens
    let stored = paired_json(&gw);
    assert_eq!(stored[&id]["approvedVia"], "owner");
    assert_eq!(stored[&id]["role"], "operator");
    assert!(stored[&id].get("tokens").is_none());
    use std::os::unix::fs::PermissionsExt;
    let path = gw.state_dir().join("devices/paired.json");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let ev = gw.wait_audit("device.approved", |v| {
        v["event"] == "device.approved" && v["deviceId"] == id.as_str()
    });
    assert_eq!(
        (&ev["via"], &ev["requestId"]),
        (&json!("owner"), &json!(request_id))
    );

    let (mut live, res) = connect_device(&gw.url(), &key, true, false).await;
    assert_eq!(res["ok"], true, "approved device reconnects: {res}");
    let table = cli_ok(&gw, &["devices", "list"]);
    assert!(table.contains("Pending requests (0)"), "{table}");
    assert!(
        table.contains(&id[..12]) && table.contains("owner"),
        "{table}"
    );

    // revoke by a unique prefix; the device's live connection is closed
    let out = cli_ok(&gw, &["devices", "revoke", &id[..12]]);
    assert!(out.contains(&id), "{out}");
    assert_eq!(
        live.closed().await,
        Closed::Code(4001, "device removed".into())
    );
    assert!(paired_json(&gw).get(&id).is_none());
    gw.wait_audit("device.removed", |v| {
        v["event"] == "device.removed" && v["deviceId"] == id.as_str()
    });
    let again = pairing_request(&gw, &key, As::Backend).await;
    assert_ne!(again, request_id, "a new request after removal");

    cli_ok(&gw, &["devices", "reject", &again]);
    gw.wait_audit("device.rejected", |v| {
        v["event"] == "device.rejected" && v["requestId"] == again.as_str()
    });
    let listed: Value = serde_json::from_str(&cli_ok(&gw, &["devices", "list", "--json"])).unwrap();
    assert_eq!(listed, json!({"pending": [], "paired": []}));

    for (args, what) in [
        (
            &["devices", "approve", "bogus"][..],
            "no pending pairing request \"bogus\"",
        ),
        (
            &["devices", "reject", "bogus"][..],
            "no pending pairing request \"bogus\"",
        ),
        (
            &["devices", "remove", "bogus"][..],
            "no paired device \"bogus\"",
        ),
    ] {
        let (code, out, err) = gw.cli(args);
        assert_ne!(code, 0, "{args:?}: {out}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(what) && err.contains("openclaw devices list"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn approving_a_node_needs_admin() {
    let gw = Gw::start(remote_device_opts());
    let key = SigningKey::from_bytes(&[22u8; 32]);
    let request_id = pairing_request(&gw, &key, As::Node).await;

    let mut op = Client::connect(&gw.url()).await;
    let (_, res) = op
        .connect_with(common::connect_params(
            TOKEN,
            "cli",
            "cli",
            &["operator.pairing"],
        ))
        .await;
    assert_eq!(res["ok"], true, "{res}");
    let res = op
        .call("device.pair.approve", json!({"requestId": request_id}))
        .await;
    assert_eq!(res["error"]["code"], "INVALID_REQUEST", "{res}");
    assert_eq!(res["error"]["message"], "device pairing approval denied");
    let res = op.call("device.pair.approve", json!({})).await;
    assert_eq!(
        res["error"]["message"],
        "invalid device.pair.approve params: must have required property 'requestId' (non-empty string)"
    );
    let res = op.call("device.pair.list", json!({})).await;
    assert_eq!(
        res["payload"]["pending"][0]["role"], "node",
        "still pending: {res}"
    );

    // a read-only operator may not even list
    let mut ro = Client::connect(&gw.url()).await;
    let (_, res) = ro
        .connect_with(common::connect_params(
            TOKEN,
            "cli",
            "cli",
            &["operator.read"],
        ))
        .await;
    assert_eq!(res["ok"], true, "{res}");
    let res = ro.call("device.pair.list", json!({})).await;
    assert_eq!(res["error"]["message"], "missing scope: operator.pairing");

    // the CLI retries with admin, as the real one does
    let out = cli_ok(&gw, &["devices", "approve", &request_id]);
    assert!(out.contains("role node"), "{out}");
    let (_, res) = connect_device_as(&gw.url(), &key, true, false, As::Node).await;
    assert_eq!(res["ok"], true, "approved node reconnects: {res}");
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
