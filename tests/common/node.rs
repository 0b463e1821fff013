//! A test node of our own: signs a v3 device identity as `node-host`/`node`, connects with
//! the shared token or a device token, declares commands, and either hands the socket to the
//! test (which then answers `node.invoke.request` by hand) or runs an answering loop.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;

use super::{patience, Client};

/// The commands the real headless node host declares (21; the gateway exposes 13).
pub const REAL_COMMANDS: &[&str] = &[
    "browser.proxy",
    "browser.proxy.upload.v1",
    "desktop.stream",
    "dir.fetch",
    "dir.list",
    "file.create",
    "file.fetch",
    "file.stat",
    "file.write",
    "fs.listDir",
    "mcp.tools.call.v1",
    "ollama.chat",
    "ollama.models",
    "system.execApprovals.get",
    "system.execApprovals.set",
    "system.run",
    "system.run.prepare",
    "system.which",
    "terminal.upload",
    "workspace.memory",
    "workspace.skills",
];

/// How a node authenticates.
#[derive(Clone, Copy)]
pub enum NodeAuth<'a> {
    /// The gateway token.
    Token(&'a str),
    /// A device token from an earlier `hello-ok`.
    DeviceToken(&'a str),
    /// No credential (identity auth, e.g. Tailscale).
    None,
}

/// A node identity.
pub struct NodeKey {
    key: SigningKey,
    /// Its node id (= device id, sha256 of the public key).
    pub id: String,
}

impl Default for NodeKey {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeKey {
    /// A fresh identity.
    pub fn new() -> Self {
        let key = SigningKey::from_bytes(&rand_bytes());
        let id = Sha256::digest(key.verifying_key().to_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self { key, id }
    }

    /// `connect` params over `nonce`.
    pub fn connect_params(
        &self,
        nonce: &str,
        auth: NodeAuth<'_>,
        name: &str,
        commands: &[&str],
    ) -> Value {
        let pk = self.key.verifying_key().to_bytes();
        let signed_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let (token, auth) = match auth {
            NodeAuth::Token(t) => (t, json!({"token": t})),
            NodeAuth::DeviceToken(t) => (t, json!({"deviceToken": t})),
            NodeAuth::None => ("", json!({})),
        };
        let id = &self.id;
        let payload =
            format!("v3|{id}|node-host|node|node||{signed_at}|{token}|{nonce}|linux|linux");
        let sig = self.key.sign(payload.as_bytes()).to_bytes();
        json!({
            "minProtocol": 4, "maxProtocol": 4,
            "client": {"id": "node-host", "displayName": name, "version": "test", "platform": "linux",
                       "deviceFamily": "Linux", "mode": "node", "instanceId": "test-instance"},
            "caps": ["system"], "commands": commands, "pathEnv": "/usr/bin:/bin",
            "role": "node", "scopes": [], "auth": auth,
            "device": {"id": id, "publicKey": URL_SAFE_NO_PAD.encode(pk), "signature": URL_SAFE_NO_PAD.encode(sig),
                       "signedAt": signed_at, "nonce": nonce},
        })
    }

    /// Connects as a node; returns the socket and the `connect` response.
    pub async fn connect(
        &self,
        url: &str,
        auth: NodeAuth<'_>,
        name: &str,
        commands: &[&str],
    ) -> (Client, Value) {
        let mut c = Client::connect(url).await;
        let ch = c.recv().await;
        let nonce = ch["payload"]["nonce"].as_str().unwrap().to_string();
        let params = self.connect_params(&nonce, auth, name, commands);
        c.send(&json!({"type":"req","id":"c1","method":"connect","params": params}))
            .await;
        let res = c.recv_res("c1").await;
        (c, res)
    }
}

impl NodeKey {
    /// Connects as an operator device (`gateway-client`/`backend`) asking for `scopes`.
    pub async fn connect_operator(
        &self,
        url: &str,
        auth: NodeAuth<'_>,
        scopes: &[&str],
    ) -> (Client, Value) {
        self.handshake_operator(Client::connect(url).await, auth, scopes)
            .await
    }

    /// The operator-device handshake on an already open socket.
    pub async fn handshake_operator(
        &self,
        mut c: Client,
        auth: NodeAuth<'_>,
        scopes: &[&str],
    ) -> (Client, Value) {
        let ch = c.recv().await;
        let nonce = ch["payload"]["nonce"].as_str().unwrap().to_string();
        let pk = self.key.verifying_key().to_bytes();
        let signed_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let (token, auth) = match auth {
            NodeAuth::Token(t) => (t, json!({"token": t})),
            NodeAuth::DeviceToken(t) => (t, json!({"deviceToken": t})),
            NodeAuth::None => ("", json!({})),
        };
        let (id, joined) = (&self.id, scopes.join(","));
        let payload = format!(
            "v3|{id}|gateway-client|backend|operator|{joined}|{signed_at}|{token}|{nonce}|linux|linux"
        );
        let sig = self.key.sign(payload.as_bytes()).to_bytes();
        let params = json!({
            "minProtocol": 4, "maxProtocol": 4,
            "client": {"id": "gateway-client", "version": "test", "platform": "linux",
                       "deviceFamily": "Linux", "mode": "backend"},
            "role": "operator", "scopes": scopes, "auth": auth,
            "device": {"id": id, "publicKey": URL_SAFE_NO_PAD.encode(pk), "signature": URL_SAFE_NO_PAD.encode(sig),
                       "signedAt": signed_at, "nonce": nonce},
        });
        c.send(&json!({"type":"req","id":"c1","method":"connect","params": params}))
            .await;
        let res = c.recv_res("c1").await;
        (c, res)
    }
}

fn rand_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    let u = uuid::Uuid::new_v4();
    let v = uuid::Uuid::new_v4();
    b[..16].copy_from_slice(u.as_bytes());
    b[16..].copy_from_slice(v.as_bytes());
    b
}

/// Waits for the next `node.invoke.request` event (skipping others); returns its payload.
pub async fn next_invoke(c: &mut Client) -> Value {
    loop {
        let v = c.recv().await;
        if v["type"] == "event" && v["event"] == "node.invoke.request" {
            return v["payload"].clone();
        }
    }
}

/// Sends `node.invoke.result` for `req` with `payload_json`; returns the gateway's answer.
pub async fn answer(c: &mut Client, req: &Value, payload_json: &str) -> Value {
    let params =
        json!({"id": req["id"], "nodeId": req["nodeId"], "ok": true, "payloadJSON": payload_json});
    c.call("node.invoke.result", params).await
}

/// Approves every pending surface request with an admin operator connection; returns how
/// many were approved.
pub async fn approve_all(op: &mut Client) -> usize {
    let list = op.call("node.pair.list", json!({})).await;
    let pending = list["payload"]["pending"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for p in &pending {
        let r = op
            .call("node.pair.approve", json!({"requestId": p["requestId"]}))
            .await;
        assert_eq!(r["ok"], true, "{r}");
    }
    pending.len()
}

/// Waits until `node.pair.list` shows `n` pending requests.
pub async fn wait_pending(op: &mut Client, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + patience();
    loop {
        let list = op.call("node.pair.list", json!({})).await;
        let pending = list["payload"]["pending"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if pending.len() >= n {
            return pending;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} pending requests never appeared: {list}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs an answering node until the socket closes: every `node.invoke.request` is answered
/// at once with `{"echo": <paramsJSON>, "id": <invoke id>}`. Returns how many it answered.
pub fn spawn_echo_node(c: Client) -> tokio::task::JoinHandle<u64> {
    spawn_node(c, |p| {
        json!({"echo": p["paramsJSON"], "id": p["id"]}).to_string()
    })
}

/// Runs an answering node until the socket closes: every `node.invoke.request` payload is
/// answered at once with `payload_json(payload)`. Returns how many it answered.
pub fn spawn_node(
    c: Client,
    payload_json: impl Fn(&Value) -> String + Send + 'static,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let (mut sink, mut stream) = c.ws.split();
        let mut answered = 0u64;
        while let Some(Ok(m)) = stream.next().await {
            let Message::Text(t) = m else { continue };
            let v: Value = match serde_json::from_str(&t) {
                Ok(v) => v,
                Err(_) => continue,
            };
            if v["type"] != "event" || v["event"] != "node.invoke.request" {
                continue;
            }
            let p = &v["payload"];
            let req = json!({"type":"req","id":format!("r{answered}"),"method":"node.invoke.result",
                "params": {"id": p["id"], "nodeId": p["nodeId"], "ok": true, "payloadJSON": payload_json(p)}});
            if sink.send(Message::text(req.to_string())).await.is_err() {
                break;
            }
            answered += 1;
        }
        answered
    })
}
