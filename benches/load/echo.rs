//! The echo baseline: a bare tokio-tungstenite server that speaks just enough of the protocol
//! (challenge, minimal `hello-ok`, `{ok:true}` for every other request) to be driven by the
//! same client. It measures what a WebSocket round trip costs on this machine without any
//! gateway logic.

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::client::Frame;

const CHALLENGE: &str =
    r#"{"type":"event","event":"connect.challenge","payload":{"nonce":"x","ts":0}}"#;

/// Accepts connections forever.
pub async fn serve(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(session(tcp));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

/// The reply to one request frame, or `None` when the frame is not a request.
fn reply(text: &str) -> Option<String> {
    let f: Frame = serde_json::from_str(text).ok()?;
    if f.ty != "req" {
        return None;
    }
    let id = serde_json::to_string(f.id.as_deref().unwrap_or("")).ok()?;
    Some(if f.method.as_deref() == Some("connect") {
        format!(
            r#"{{"type":"res","id":{id},"ok":true,"payload":{{"type":"hello-ok","protocol":4,"policy":{{"tickIntervalMs":30000}}}}}}"#
        )
    } else {
        format!(r#"{{"type":"res","id":{id},"ok":true,"payload":{{"ok":true}}}}"#)
    })
}

async fn session(tcp: TcpStream) -> Result<(), WsError> {
    let mut ws = tokio_tungstenite::accept_async(tcp).await?;
    ws.send(Message::text(CHALLENGE)).await?;
    while let Some(m) = ws.next().await {
        let text = match m? {
            Message::Text(t) => t,
            Message::Close(_) => break,
            _ => continue,
        };
        if let Some(r) = reply(&text) {
            ws.send(Message::text(r)).await?;
        }
    }
    Ok(())
}

/// An echo server on its own runtime (own worker threads), so it competes for the CPUs
/// like a separate server process would instead of sharing the load client's workers.
pub struct Background {
    rt: tokio::runtime::Runtime,
    /// The bound port on 127.0.0.1.
    pub port: u16,
}

/// Starts the echo server on `127.0.0.1:port` (0: any free port).
pub fn start_background(port: u16) -> std::io::Result<Background> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("echo-server")
        .enable_all()
        .build()?;
    let listener = rt.block_on(TcpListener::bind(("127.0.0.1", port)))?;
    let port = listener.local_addr()?.port();
    rt.spawn(serve(listener));
    Ok(Background { rt, port })
}

impl Background {
    /// Stops the server (drops its tasks and threads).
    pub fn stop(self) {
        self.rt.shutdown_background();
    }
}
