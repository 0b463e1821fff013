//! Health probes through a local forward. `tcp`: the connect must succeed and the forward
//! must not close it at once (a closed far port). `gateway`: a WebSocket upgrade and the far
//! gateway's `connect.challenge`; this also catches a black-holed tunnel (far side frozen),
//! where the local connect still succeeds because ssh itself accepts it.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::config::tunnels::ProbeKind;

/// Probes `127.0.0.1:port`; `Err` says what failed.
pub async fn probe(kind: ProbeKind, port: u16, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, run(kind, port)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no answer through the tunnel within {} ms",
            timeout.as_millis()
        )),
    }
}

async fn run(kind: ProbeKind, port: u16) -> Result<(), String> {
    match kind {
        ProbeKind::Tcp => {
            let mut s = TcpStream::connect(("127.0.0.1", port))
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let mut b = [0u8; 1];
            match tokio::time::timeout(Duration::from_millis(150), s.read(&mut b)).await {
                Ok(Ok(0)) => Err("the far side closed the forwarded connection".into()),
                Ok(Err(e)) => Err(format!("read: {e}")),
                _ => Ok(()),
            }
        }
        ProbeKind::Gateway => {
            let url = format!("ws://127.0.0.1:{port}/");
            let (mut ws, _) = tokio_tungstenite::connect_async(url)
                .await
                .map_err(|e| format!("websocket: {e}"))?;
            let first = ws.next().await;
            let _ = ws.close(None).await;
            match first {
                Some(Ok(m)) if m.to_text().is_ok_and(|t| t.contains("connect.challenge")) => Ok(()),
                Some(Ok(_)) => {
                    Err("the far side is not an OpenClaw gateway (no connect.challenge)".into())
                }
                Some(Err(e)) => Err(format!("websocket: {e}")),
                None => Err("the far side closed the connection".into()),
            }
        }
    }
}
