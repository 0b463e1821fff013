//! The echo baseline: a bare tokio-tungstenite server that speaks just enough of the protocol
//! (challenge, minimal `hello-ok`, `{ok:true}` for every other request) to be driven by the
//! same client. It measures what a WebSocket round trip costs on this machine without any
//! gateway logic.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::client::Frame;

const CHALLENGE: &str =
    r#"{"type":"event","event":"connect.challenge","payload":{"nonce":"x","ts":0}}"#;

/// Accepts connections forever (over TLS with `tls`).
pub async fn serve(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>) {
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                let _ = tcp.set_nodelay(true);
                match tls.clone() {
                    None => {
                        tokio::spawn(session(tcp));
                    }
                    Some(acceptor) => {
                        tokio::spawn(async move {
                            if let Ok(s) = acceptor.accept(tcp).await {
                                let _ = session(s).await;
                            }
                        });
                    }
                }
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

/// A bare rustls acceptor (TLS 1.3, ring, ALPN http/1.1) with a fresh self-signed ECDSA
/// P-256 pair: the "bare TLS echo" baseline.
pub fn tls_acceptor() -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    let (c, k) = openclaw_actors::tls::autogen::generate("localhost").map_err(|e| e.to_string())?;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(c.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let key =
        rustls_pki_types::PrivateKeyDer::from_pem_slice(k.as_bytes()).map_err(|e| e.to_string())?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg)))
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

async fn session<S>(tcp: S) -> Result<(), WsError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // The gateway's tungstenite settings (1 KiB read buffer, unbuffered writes): the default
    // 128 KiB read buffer costs ~180k instructions per request in zeroing alone (callgrind,
    // benches/instructions.sh), which is not "the least possible work".
    let cfg = openclaw_actors::session::io::ws_config();
    let mut ws = tokio_tungstenite::accept_async_with_config(tcp, Some(cfg)).await?;
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
    rt.spawn(serve(listener, None));
    Ok(Background { rt, port })
}

impl Background {
    /// Stops the server (drops its tasks and threads).
    pub fn stop(self) {
        self.rt.shutdown_background();
    }
}
