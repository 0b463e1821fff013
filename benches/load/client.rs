//! Protocol client: WebSocket connect, the v4 handshake (challenge -> `connect` -> `hello-ok`),
//! sequential request/response calls and a polite close.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{client_async_with_config, WebSocketStream};

/// The client WebSocket type.
pub type Ws = WebSocketStream<Box<dyn openclaw_actors::session::io::Io>>;

/// The fields of a frame the load tool (and the echo server) look at; the rest is skipped.
#[derive(Deserialize)]
pub struct Frame<'a> {
    /// `req` | `res` | `event`.
    #[serde(rename = "type", borrow)]
    pub ty: Cow<'a, str>,
    /// Request / response id.
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    /// Event name.
    #[serde(borrow, default)]
    pub event: Option<Cow<'a, str>>,
    /// Request method.
    #[serde(borrow, default)]
    pub method: Option<Cow<'a, str>>,
    /// Response status.
    #[serde(default)]
    pub ok: Option<bool>,
    /// Error shape of a failed response.
    #[serde(default)]
    pub error: Option<serde_json::Value>,
}

/// Just `payload.type` of the `connect` response.
#[derive(Deserialize)]
struct HelloFrame<'a> {
    #[serde(borrow, default)]
    payload: Option<HelloPayload<'a>>,
}

#[derive(Deserialize)]
struct HelloPayload<'a> {
    #[serde(rename = "type", borrow, default)]
    ty: Option<Cow<'a, str>>,
}

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct Target {
    /// `ws://127.0.0.1:PORT`.
    pub url: String,
    /// Shared gateway token (empty: no `auth` block).
    pub token: String,
    /// Per-handshake and per-request timeout.
    pub timeout: Duration,
    /// `client.mode` of the `connect` request (`cli`; `--client-mode ui` makes clients
    /// that the gateway lists in presence).
    pub mode: &'static str,
}

/// The result of one request.
pub struct Reply {
    /// `res.ok`.
    pub ok: bool,
    /// `res.error` when not ok.
    pub error: Option<serde_json::Value>,
}

/// An authenticated connection.
pub struct Conn {
    ws: Ws,
    seq: u64,
    /// Events received outside the handshake (ticks, presence, ...).
    pub events: u64,
    /// Size of the `hello-ok` frame, bytes.
    pub hello_bytes: usize,
}

/// Opens a connection and completes the handshake; returns it with the handshake time.
pub async fn open(t: &Target) -> Result<(Conn, Duration), String> {
    let t0 = Instant::now();
    match tokio::time::timeout(t.timeout, handshake(t)).await {
        Ok(Ok(c)) => Ok((c, t0.elapsed())),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("handshake timeout".into()),
    }
}

async fn handshake(t: &Target) -> Result<Conn, String> {
    // Small read buffer: the default eagerly allocates 128 KiB per connection.
    let cfg = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let io = transport(&t.url).await?;
    let (ws, _) = client_async_with_config(t.url.as_str(), io, Some(cfg))
        .await
        .map_err(|e| format!("ws connect: {e}"))?;
    let mut c = Conn {
        ws,
        seq: 0,
        events: 0,
        hello_bytes: 0,
    };
    c.wait_challenge().await?;
    let id = c.next_id();
    c.send(connect_frame(&id, &t.token, t.mode)).await?;
    c.wait_hello(&id).await?;
    Ok(c)
}

/// TCP to the URL's `host:port`, then TLS for `wss://`. The bench talks only to servers it
/// started on loopback, so the certificate is not checked (the handshake still is).
async fn transport(url: &str) -> Result<Box<dyn openclaw_actors::session::io::Io>, String> {
    let (tls, rest) = match url.strip_prefix("wss://") {
        Some(r) => (true, r),
        None => (
            false,
            url.strip_prefix("ws://")
                .ok_or("url must be ws:// or wss://")?,
        ),
    };
    let hp = rest.split('/').next().unwrap_or(rest);
    let tcp = TcpStream::connect(hp)
        .await
        .map_err(|e| format!("connect {hp}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    if !tls {
        return Ok(Box::new(tcp));
    }
    let cfg = openclaw_actors::tls::pin::PinVerifier::any_certificate();
    let name = rustls_pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let s = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls: {e}"))?;
    Ok(Box::new(s))
}

/// The `connect` request a local CLI sends (token auth, no device block); with mode `ui`
/// the TUI's, with `webchat` the web chat's.
fn connect_frame(id: &str, token: &str, mode: &str) -> String {
    let client_id = match mode {
        "ui" => "openclaw-tui",
        "webchat" => "webchat-ui",
        _ => "cli",
    };
    let mut params = serde_json::json!({
        "minProtocol": 4, "maxProtocol": 4,
        "client": {"id": client_id, "version": "bench", "platform": "linux", "mode": mode},
        "role": "operator", "scopes": ["operator.admin"],
    });
    if !token.is_empty() {
        params["auth"] = serde_json::json!({ "token": token });
    }
    serde_json::json!({"type": "req", "id": id, "method": "connect", "params": params}).to_string()
}

/// Builds a request frame; `method` must be a plain name, `params` raw JSON.
pub fn request_frame(id: &str, method: &str, params: Option<&str>) -> String {
    match params {
        Some(p) => format!(r#"{{"type":"req","id":"{id}","method":"{method}","params":{p}}}"#),
        None => format!(r#"{{"type":"req","id":"{id}","method":"{method}"}}"#),
    }
}

impl Conn {
    fn next_id(&mut self) -> String {
        self.seq += 1;
        self.seq.to_string()
    }

    async fn send(&mut self, text: String) -> Result<(), String> {
        self.ws
            .send(Message::text(text))
            .await
            .map_err(|e| format!("send: {e}"))
    }

    /// The next text frame; control frames are skipped, close/EOF are errors.
    async fn recv_text(&mut self) -> Result<tokio_tungstenite::tungstenite::Utf8Bytes, String> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => return Ok(t),
                Some(Ok(Message::Close(f))) => {
                    let f = f
                        .map(|f| format!("{} {}", u16::from(f.code), f.reason))
                        .unwrap_or_default();
                    return Err(format!("closed by server: {f}"));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("recv: {e}")),
                None => return Err("eof".into()),
            }
        }
    }

    async fn wait_challenge(&mut self) -> Result<(), String> {
        loop {
            let t = self.recv_text().await?;
            let f: Frame = serde_json::from_str(&t).map_err(|e| format!("bad frame: {e}"))?;
            if f.ty == "event" && f.event.as_deref() == Some("connect.challenge") {
                return Ok(());
            }
        }
    }

    async fn wait_hello(&mut self, id: &str) -> Result<(), String> {
        loop {
            let t = self.recv_text().await?;
            let f: Frame = serde_json::from_str(&t).map_err(|e| format!("bad frame: {e}"))?;
            if f.ty != "res" || f.id.as_deref() != Some(id) {
                continue;
            }
            let h: HelloFrame = serde_json::from_str(&t).map_err(|e| format!("bad hello: {e}"))?;
            let is_hello = h.payload.and_then(|p| p.ty).as_deref() == Some("hello-ok");
            if f.ok == Some(true) && is_hello {
                self.hello_bytes = t.len();
                return Ok(());
            }
            return Err(format!("connect rejected: {}", f.error.unwrap_or_default()));
        }
    }

    /// Sends one request and waits for its response (events in between are counted).
    pub async fn call(&mut self, method: &str, params: Option<&str>) -> Result<Reply, String> {
        let id = self.next_id();
        self.send(request_frame(&id, method, params)).await?;
        loop {
            let t = self.recv_text().await?;
            let f: Frame = serde_json::from_str(&t).map_err(|e| format!("bad frame: {e}"))?;
            if f.ty == "res" && f.id.as_deref() == Some(id.as_str()) {
                return Ok(Reply {
                    ok: f.ok == Some(true),
                    error: f.error,
                });
            }
            if f.ty == "event" {
                self.events += 1;
            }
        }
    }

    /// Sends one request and returns its whole response frame (events in between are counted).
    pub async fn call_value(
        &mut self,
        method: &str,
        params: Option<&str>,
    ) -> Result<serde_json::Value, String> {
        let id = self.next_id();
        self.send(request_frame(&id, method, params)).await?;
        loop {
            let t = self.recv_text().await?;
            let v: serde_json::Value =
                serde_json::from_str(&t).map_err(|e| format!("bad frame: {e}"))?;
            if v["type"] == "res" && v["id"] == id.as_str() {
                return Ok(v);
            }
            if v["type"] == "event" {
                self.events += 1;
            }
        }
    }

    /// The socket, for a caller that drives its own request/response pipeline.
    pub fn into_ws(self) -> Ws {
        self.ws
    }

    /// Waits for the next inbound message (idle holding); `false` once the socket is gone.
    pub async fn idle_next(&mut self) -> bool {
        match self.ws.next().await {
            Some(Ok(Message::Text(_))) => {
                self.events += 1;
                true
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => false,
            Some(Ok(_)) => true,
        }
    }

    /// Sends a close frame and waits (bounded) for the server's close / EOF.
    pub async fn close(mut self, linger: Duration) {
        if self.ws.close(None).await.is_err() {
            return;
        }
        let drain = async { while let Some(Ok(_)) = self.ws.next().await {} };
        let _ = tokio::time::timeout(linger, drain).await;
    }
}
