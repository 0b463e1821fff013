//! The CLI's gateway client: connect, wait for the challenge, `connect` as a local `cli`
//! client, then call methods. Errors are sorted into unreachable (exit 1) and rejected
//! auth (exit 2), each with a one-line reason and fix.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::target::Target;
use crate::transport::{self, Ws};

/// Why a client command failed.
#[derive(Debug)]
pub enum ClientError {
    /// Not reachable (exit 1).
    Unreachable(String),
    /// Reachable but the credentials were refused (exit 2).
    Auth(String),
    /// A request failed (exit 1).
    Request(String),
}

/// An authenticated connection.
pub struct Conn {
    ws: Ws,
    next: u64,
    timeout: Duration,
    /// The `hello-ok` payload.
    pub hello: Value,
    /// Time from TCP connect to `hello-ok`.
    pub handshake: Duration,
}

// === impl ClientError ===

impl ClientError {
    /// Process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::Auth(_) => 2,
            _ => 1,
        }
    }

    /// One line for stderr.
    pub fn message(&self) -> &str {
        match self {
            ClientError::Unreachable(m) | ClientError::Auth(m) | ClientError::Request(m) => m,
        }
    }
}

fn unreachable(t: &Target, e: &str) -> ClientError {
    let hint = if t.is_loopback() {
        "is the gateway running? start it with: openclaw gateway"
    } else {
        "is the gateway or its tunnel up? check with: openclaw ping --gateway URL"
    };
    let what = if e.contains("Connection refused") {
        "connection refused".to_string()
    } else {
        e.to_string()
    };
    ClientError::Unreachable(format!("{what} on {} — {hint}", t.host_port()))
}

// === impl Conn ===

impl Conn {
    /// Connects and authenticates with `scopes`.
    pub async fn open(t: &Target, scopes: &[&str], timeout: Duration) -> Result<Conn, ClientError> {
        let started = Instant::now();
        let connect = transport::connect(&t.url, t.pin.as_deref());
        let ws = match tokio::time::timeout(timeout, connect).await {
            Err(_) => {
                return Err(unreachable(
                    t,
                    &format!("no answer within {} ms", timeout.as_millis()),
                ))
            }
            Ok(Err(e)) if e.contains("tls fingerprint") || e.starts_with("refusing") => {
                return Err(ClientError::Unreachable(e))
            }
            Ok(Err(e)) => return Err(unreachable(t, &e)),
            Ok(Ok(x)) => x,
        };
        let mut c = Conn {
            ws,
            next: 0,
            timeout,
            hello: Value::Null,
            handshake: Duration::ZERO,
        };
        let challenge = c.recv().await.map_err(|e| unreachable(t, &e))?;
        if challenge["event"] != "connect.challenge" {
            return Err(ClientError::Unreachable(format!(
                "{} did not send connect.challenge: is it an OpenClaw gateway?",
                t.url
            )));
        }
        let mut auth = serde_json::Map::new();
        if let Some(tok) = &t.token {
            auth.insert("token".into(), json!(tok.expose()));
        }
        if let Some(pw) = &t.password {
            auth.insert("password".into(), json!(pw.expose()));
        }
        let params = json!({
            "minProtocol": 3, "maxProtocol": 4,
            "client": {"id": "cli", "version": env!("CARGO_PKG_VERSION"), "platform": std::env::consts::OS, "mode": "cli"},
            "role": "operator", "scopes": scopes, "auth": auth,
        });
        let res = c
            .request_raw("connect", params)
            .await
            .map_err(|e| unreachable(t, &e))?;
        if res["ok"] != true {
            let msg = res["error"]["message"]
                .as_str()
                .unwrap_or("rejected")
                .to_string();
            let fix = match t.token.is_some() || t.password.is_some() {
                true => format!(
                    "check the token for {} (credentials from {})",
                    t.url, t.creds_source
                ),
                false => "pass --token or set OPENCLAW_GATEWAY_TOKEN".to_string(),
            };
            return Err(ClientError::Auth(format!("{msg} — {fix}")));
        }
        c.hello = res["payload"].clone();
        c.handshake = started.elapsed();
        Ok(c)
    }

    async fn recv(&mut self) -> Result<Value, String> {
        loop {
            let m = tokio::time::timeout(self.timeout, self.ws.next())
                .await
                .map_err(|_| format!("no answer within {} ms", self.timeout.as_millis()))?;
            match m {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str(&t).map_err(|e| format!("bad frame: {e}"))
                }
                Some(Ok(Message::Close(f))) => {
                    let why = f
                        .map(|f| format!("{} {}", u16::from(f.code), f.reason))
                        .unwrap_or_default();
                    return Err(format!("connection closed by the gateway {why}"));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("connection closed".into()),
            }
        }
    }

    async fn request_raw(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next += 1;
        let id = format!("{}:{}", self.next, uuid::Uuid::new_v4());
        let frame = json!({"type": "req", "id": id, "method": method, "params": params});
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let v = self.recv().await?;
            if v["type"] == "res" && v["id"] == id.as_str() {
                return Ok(v);
            }
        }
    }

    /// Calls `method`; `Ok(payload)` or the gateway's error as one line.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        let res = self
            .request_raw(method, params)
            .await
            .map_err(ClientError::Request)?;
        if res["ok"] == true {
            Ok(res["payload"].clone())
        } else {
            let e = &res["error"];
            Err(ClientError::Request(format!(
                "{method} failed: {} ({})",
                e["message"].as_str().unwrap_or("error"),
                e["code"].as_str().unwrap_or("?")
            )))
        }
    }

    /// Sets how long each later `call` waits for its answer (default: the `open` timeout).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Closes politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
