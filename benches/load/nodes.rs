//! Test nodes for the `nodes` mode, on their own runtime (threads `bench-node*`, like a
//! separate node process): each signs a v3 device identity as `node-host`/`node` (the code of
//! `tests/common/node.rs`), connects to the gateway declaring `echo.test`, and answers every
//! `node.invoke.request` at once with `node.invoke.result`. Each node also listens on its own
//! loopback WebSocket port and answers a `node.invoke` request frame sent straight to it with a
//! response shaped like the gateway's (`{ok,nodeId,command,payload,payloadJSON}`): the direct
//! baseline (one hop + the node's work, no relay).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The one command the bench nodes declare.
pub const COMMAND: &str = "echo.test";

/// Thread-name prefix of the node runtime (for its CPU time).
pub const THREADS: &str = "bench-node";

const CHALLENGE: &str =
    r#"{"type":"event","event":"connect.challenge","payload":{"nonce":"direct","ts":0}}"#;

/// Counters shared by every node.
#[derive(Default)]
pub struct NodeStats {
    /// `node.invoke.request` events answered (gateway path).
    pub relayed: AtomicU64,
    /// `node.invoke` requests answered on the direct port.
    pub direct: AtomicU64,
    /// Gateway acks of `node.invoke.result` with ok:true.
    pub acks_ok: AtomicU64,
    /// Gateway acks with ok:false, unparseable frames, send failures.
    pub errors: AtomicU64,
    /// The first few node-side errors.
    pub first_errors: Mutex<Vec<String>>,
}

impl NodeStats {
    fn error(&self, e: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut v) = self.first_errors.lock() {
            if v.len() < 5 && !v.contains(&e) {
                v.push(e);
            }
        }
    }
}

/// A node identity (Ed25519; the node id is the hex sha256 of the raw public key).
struct NodeKey {
    key: SigningKey,
    id: String,
}

impl NodeKey {
    fn new() -> Self {
        let mut b = [0u8; 32];
        b[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        b[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let key = SigningKey::from_bytes(&b);
        let id = Sha256::digest(key.verifying_key().to_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self { key, id }
    }

    /// `connect` params over `nonce`, v3 signature, shared-token auth.
    fn connect_params(&self, nonce: &str, token: &str, name: &str) -> Value {
        let pk = self.key.verifying_key().to_bytes();
        let signed_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let id = &self.id;
        let payload =
            format!("v3|{id}|node-host|node|node||{signed_at}|{token}|{nonce}|linux|linux");
        let sig = self.key.sign(payload.as_bytes()).to_bytes();
        json!({
            "minProtocol": 4, "maxProtocol": 4,
            "client": {"id": "node-host", "displayName": name, "version": "bench", "platform": "linux",
                       "deviceFamily": "Linux", "mode": "node", "instanceId": name},
            "caps": ["system"], "commands": [COMMAND], "pathEnv": "/usr/bin:/bin",
            "role": "node", "scopes": [], "auth": {"token": token},
            "device": {"id": id, "publicKey": URL_SAFE_NO_PAD.encode(pk), "signature": URL_SAFE_NO_PAD.encode(sig),
                       "signedAt": signed_at, "nonce": nonce},
        })
    }
}

/// The node's work, the same on both paths: the result for an invoke whose params are
/// `params_json` (text).
fn node_payload(params_json: Option<&str>) -> String {
    let params = params_json
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .unwrap_or(Value::Null);
    json!({"ok": true, "echo": params}).to_string()
}

/// The nodes and their runtime.
pub struct Farm {
    rt: tokio::runtime::Runtime,
    /// Node ids, in start order.
    pub ids: Vec<String>,
    /// Direct ports on 127.0.0.1, same order.
    pub ports: Vec<u16>,
    /// Counters.
    pub stats: Arc<NodeStats>,
    stop: watch::Sender<bool>,
}

impl Farm {
    /// Starts `n` nodes on a runtime of `workers` threads: direct listeners, then gateway
    /// connections (completed handshakes).
    pub fn start(
        n: usize,
        workers: usize,
        gw_url: &str,
        token: &str,
        timeout: Duration,
    ) -> Result<Farm, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .thread_name(THREADS)
            .worker_threads(workers.max(1))
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let stats = Arc::new(NodeStats::default());
        let (stop, rx) = watch::channel(false);
        let (mut ids, mut ports) = (Vec::new(), Vec::new());
        for i in 0..n {
            let key = NodeKey::new();
            let listener = rt
                .block_on(TcpListener::bind(("127.0.0.1", 0)))
                .map_err(|e| format!("node bind: {e}"))?;
            ports.push(listener.local_addr().map_err(|e| e.to_string())?.port());
            rt.spawn(serve_direct(listener, key.id.clone(), stats.clone()));
            let name = format!("bench-node-{i}");
            let ws = rt
                .block_on(async {
                    tokio::time::timeout(timeout, connect(gw_url, token, &key, &name)).await
                })
                .map_err(|_| format!("{name}: connect timeout"))??;
            rt.spawn(run_node(ws, stats.clone(), rx.clone()));
            ids.push(key.id);
        }
        Ok(Farm {
            rt,
            ids,
            ports,
            stats,
            stop,
        })
    }

    /// CPU seconds used by the node runtime's threads so far.
    pub fn cpu_secs(&self) -> f64 {
        crate::sys::threads_cpu_secs(THREADS)
    }

    /// Closes the gateway connections and stops the runtime.
    pub fn stop(self) {
        let _ = self.stop.send(true);
        self.rt
            .block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
        self.rt.shutdown_background();
    }
}

/// WebSocket to the gateway, challenge, signed `connect`, `hello-ok`.
async fn connect(
    url: &str,
    token: &str,
    key: &NodeKey,
    name: &str,
) -> Result<WebSocketStream<TcpStream>, String> {
    let hp = url
        .strip_prefix("ws://")
        .and_then(|r| r.split('/').next())
        .ok_or("the nodes need a ws:// url")?;
    let tcp = TcpStream::connect(hp)
        .await
        .map_err(|e| format!("{name}: connect {hp}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let (mut ws, _) = tokio_tungstenite::client_async(url, tcp)
        .await
        .map_err(|e| format!("{name}: ws connect: {e}"))?;
    let nonce = loop {
        let v = next_json(&mut ws).await?;
        if v["event"] == "connect.challenge" {
            break v["payload"]["nonce"].as_str().unwrap_or("").to_string();
        }
    };
    let params = key.connect_params(&nonce, token, name);
    let req = json!({"type": "req", "id": "c1", "method": "connect", "params": params});
    ws.send(Message::text(req.to_string()))
        .await
        .map_err(|e| format!("{name}: send: {e}"))?;
    loop {
        let v = next_json(&mut ws).await?;
        if v["type"] == "res" && v["id"] == "c1" {
            if v["ok"] == true {
                return Ok(ws);
            }
            return Err(format!("{name}: connect rejected: {}", v["error"]));
        }
    }
}

async fn next_json(ws: &mut WebSocketStream<TcpStream>) -> Result<Value, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(&t).map_err(|e| format!("bad frame: {e}"))
            }
            Some(Ok(Message::Close(_))) | None => return Err("closed by gateway".into()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("recv: {e}")),
        }
    }
}

/// Answers every `node.invoke.request` at once; counts the gateway's acks.
async fn run_node(
    ws: WebSocketStream<TcpStream>,
    stats: Arc<NodeStats>,
    mut stop: watch::Receiver<bool>,
) {
    let (mut sink, mut stream) = ws.split();
    let mut n = 0u64;
    loop {
        let m = tokio::select! {
            _ = stop.changed() => break,
            m = stream.next() => m,
        };
        let t = match m {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => continue,
        };
        let v: Value = match serde_json::from_str(&t) {
            Ok(v) => v,
            Err(e) => {
                stats.error(format!("node: bad frame: {e}"));
                continue;
            }
        };
        match v["type"].as_str() {
            Some("event") if v["event"] == "node.invoke.request" => {
                let p = &v["payload"];
                let payload = node_payload(p["paramsJSON"].as_str());
                n += 1;
                let req = json!({"type": "req", "id": format!("r{n}"), "method": "node.invoke.result",
                    "params": {"id": p["id"], "nodeId": p["nodeId"], "ok": true, "payloadJSON": payload}});
                if let Err(e) = sink.send(Message::text(req.to_string())).await {
                    stats.error(format!("node: send: {e}"));
                    break;
                }
                stats.relayed.fetch_add(1, Ordering::Relaxed);
            }
            Some("res") if v["ok"] == true => {
                stats.acks_ok.fetch_add(1, Ordering::Relaxed);
            }
            Some("res") => stats.error(format!("node.invoke.result refused: {}", v["error"])),
            _ => {}
        }
    }
    let _ = sink.close().await;
}

/// The node's own WebSocket server (the direct baseline).
async fn serve_direct(listener: TcpListener, node_id: String, stats: Arc<NodeStats>) {
    let node_id: Arc<str> = node_id.into();
    // Bounded: the bench opens at most a few hundred direct connections per node.
    for _ in 0..100_000 {
        match listener.accept().await {
            Ok((tcp, _)) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(direct_session(tcp, node_id.clone(), stats.clone()));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn direct_session(tcp: TcpStream, node_id: Arc<str>, stats: Arc<NodeStats>) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    if ws.send(Message::text(CHALLENGE)).await.is_err() {
        return;
    }
    while let Some(Ok(m)) = ws.next().await {
        let t = match m {
            Message::Text(t) => t,
            Message::Close(_) => break,
            _ => continue,
        };
        let Some(r) = direct_reply(&t, &node_id, &stats) else {
            continue;
        };
        if ws.send(Message::text(r)).await.is_err() {
            break;
        }
    }
}

/// The direct answer to one request frame: a minimal `hello-ok` for `connect`, and for
/// `node.invoke` the node's work wrapped like the gateway's response.
fn direct_reply(text: &str, node_id: &str, stats: &NodeStats) -> Option<String> {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            stats.error(format!("direct: bad frame: {e}"));
            return None;
        }
    };
    if v["type"] != "req" {
        return None;
    }
    let id = &v["id"];
    let res = match v["method"].as_str() {
        Some("connect") => json!({"type": "res", "id": id, "ok": true,
            "payload": {"type": "hello-ok", "protocol": 4, "policy": {"tickIntervalMs": 30000}}}),
        Some("node.invoke") if v["params"]["nodeId"] == node_id => {
            let p = &v["params"];
            let params_json = p.get("params").map(Value::to_string);
            let payload_json = node_payload(params_json.as_deref());
            let parsed: Value = serde_json::from_str(&payload_json).unwrap_or(Value::Null);
            stats.direct.fetch_add(1, Ordering::Relaxed);
            json!({"type": "res", "id": id, "ok": true, "payload": {"ok": true, "nodeId": node_id,
                "command": p["command"], "payload": parsed, "payloadJSON": payload_json}})
        }
        _ => json!({"type": "res", "id": id, "ok": false,
            "error": {"code": "INVALID_REQUEST", "message": "direct: unexpected request"}}),
    };
    Some(res.to_string())
}
