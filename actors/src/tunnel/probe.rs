//! Health probes through a local forward. `tcp`: the connect must succeed and the forward
//! must not close it at once (a closed far port). `gateway`: a WebSocket upgrade and the far
//! gateway's `connect.challenge`; this also catches a black-holed tunnel (far side frozen),
//! where the local connect still succeeds because ssh itself accepts it.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::config::tunnels::ProbeKind;

/// Probes `127.0.0.1:port` (through TLS when `tls` is `Some(pin)`); `Err` says what failed.
pub async fn probe(
    kind: ProbeKind,
    port: u16,
    tls: Option<Option<String>>,
    timeout: Duration,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, run(kind, port, tls)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no answer through the tunnel within {} ms",
            timeout.as_millis()
        )),
    }
}

async fn run(kind: ProbeKind, port: u16, tls: Option<Option<String>>) -> Result<(), String> {
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
            let tcp = TcpStream::connect(("127.0.0.1", port))
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let io: Box<dyn crate::session::io::Io> = match tls {
                None => Box::new(tcp),
                Some(pin) => Box::new(tls_connect(tcp, pin).await?),
            };
            let url = format!("ws://127.0.0.1:{port}/");
            let (mut ws, _) = tokio_tungstenite::client_async(url, io)
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

/// TLS to the forward: pinned when a pin is given, else without a certificate check (the
/// probe carries no credentials; it only asks for `connect.challenge`).
async fn tls_connect(
    tcp: TcpStream,
    pin: Option<String>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let cfg = match pin {
        Some(p) => crate::tls::pin::PinVerifier::client_config(p),
        None => crate::tls::pin::PinVerifier::any_certificate(),
    };
    let name = rustls_pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .map_err(|e| {
            let s = e.to_string();
            match s.find("gateway tls fingerprint mismatch") {
                Some(i) => s[i..].to_string(),
                None => format!("tls: {s}"),
            }
        })
}
