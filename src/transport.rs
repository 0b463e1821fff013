//! How the CLI reaches a gateway: `ws://` over TCP, or `wss://` over rustls — pinned to a
//! SHA-256 fingerprint when one is given (checked inside the TLS handshake, before any HTTP
//! byte, so the token never reaches a server with the wrong certificate), else verified
//! against the system's CA store. Plain `ws://` is refused to a host that is not private
//! (loopback, RFC 1918, link-local, CGNAT/tailnet 100.64.0.0/10, `.local`, `.ts.net`),
//! unless `OPENCLAW_ALLOW_INSECURE_PRIVATE_WS=1`: the token would cross the network in clear.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use openclaw_actors::session::io::Io;
use openclaw_actors::tls::pin::PinVerifier;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;

/// A connected WebSocket, plain or TLS.
pub type Ws = WebSocketStream<Box<dyn Io>>;

/// The env var that allows plain `ws://` to a non-private host.
pub const ALLOW_INSECURE: &str = "OPENCLAW_ALLOW_INSECURE_PRIVATE_WS";

/// A parsed gateway URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `wss` or not.
    pub tls: bool,
    /// Host name or IP (no brackets).
    pub host: String,
    /// Port (default 18789).
    pub port: u16,
}

// === impl Url ===

impl Url {
    /// Parses `ws://host[:port][/…]` or `wss://…`.
    pub fn parse(url: &str) -> Result<Url, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("wss://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("ws://") {
            (false, r)
        } else {
            return Err(format!(
                "{url:?} is not a gateway URL: write it as ws://host:port or wss://host:port"
            ));
        };
        let hp = rest.split('/').next().unwrap_or(rest);
        let (host, port) = match hp.strip_prefix('[') {
            Some(r) => {
                let (h, p) = r
                    .split_once(']')
                    .ok_or_else(|| format!("{url:?}: unclosed [ in the host"))?;
                (h.to_string(), p.strip_prefix(':'))
            }
            None => match hp.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hp.to_string(), None),
            },
        };
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        let port = match port {
            Some(p) => p
                .parse()
                .map_err(|_| format!("{url:?}: {p:?} is not a port number"))?,
            None => openclaw_actors::config::DEFAULT_PORT,
        };
        Ok(Url { tls, host, port })
    }
}

/// Whether `host` (a name, and the addresses it resolved to) is on a private network.
pub fn is_private(host: &str, addrs: &[IpAddr]) -> bool {
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".local") || name.ends_with(".ts.net") {
        return true;
    }
    let private = |ip: &IpAddr| match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            v.is_loopback()
                || v.is_private()
                || v.is_link_local()
                || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v) => {
            let s = v.segments();
            v.is_loopback()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || v.to_ipv4_mapped().is_some_and(|m| m.is_loopback() || m.is_private())
        }
    };
    match host.parse::<IpAddr>() {
        Ok(ip) => private(&ip),
        Err(_) => !addrs.is_empty() && addrs.iter().all(private),
    }
}

/// Opens TCP (and TLS for `wss://`) to `url`, then upgrades to WebSocket. `pin` is the
/// expected certificate fingerprint (lowercase hex).
pub async fn connect(url_text: &str, pin: Option<&str>) -> Result<Ws, String> {
    let url = Url::parse(url_text)?;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
        .collect();
    let ips: Vec<IpAddr> = addrs.iter().map(|a| a.ip()).collect();
    if !url.tls
        && !is_private(&url.host, &ips)
        && std::env::var(ALLOW_INSECURE).as_deref() != Ok("1")
    {
        return Err(format!(
            "refusing plain ws:// to {} (not a private address): the token would cross the network \
             unencrypted; use wss:// (gateway.tls on the gateway), or an SSH tunnel and \
             ws://127.0.0.1:PORT, or set {ALLOW_INSECURE}=1",
            url.host
        ));
    }
    if pin.is_some() && !url.tls {
        return Err("a TLS fingerprint needs a wss:// gateway URL".into());
    }
    let tcp = TcpStream::connect(&addrs[..])
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = if url.tls {
        Box::new(tls(tcp, &url.host, pin).await?)
    } else {
        Box::new(tcp)
    };
    let (ws, _) = tokio_tungstenite::client_async(url_text, io)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

async fn tls(
    tcp: TcpStream,
    host: &str,
    pin: Option<&str>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let config = match pin {
        Some(p) => PinVerifier::client_config(p.to_string()),
        None => webpki_config()?,
    };
    let name = rustls_pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host:?} is not a valid TLS server name: {e}"))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| tls_error(&e))
}

/// The TLS error in the words users search for (the pin mismatch verbatim).
fn tls_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find("gateway tls fingerprint mismatch") {
        Some(i) => s[i..].to_string(),
        None => format!("TLS handshake failed: {s} (pin the gateway's certificate with --tls-fingerprint, see `openclaw tls fingerprint` on the gateway)"),
    }
}

/// Verification against the system's CA store.
fn webpki_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for c in found.certs {
        let _ = roots.add(c);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = |s| Url::parse(s);
        assert_eq!(
            u("ws://127.0.0.1:1").unwrap(),
            Url {
                tls: false,
                host: "127.0.0.1".into(),
                port: 1
            }
        );
        assert_eq!(
            u("wss://[::1]:2/x").unwrap(),
            Url {
                tls: true,
                host: "::1".into(),
                port: 2
            }
        );
        assert_eq!(u("wss://gw.example").unwrap().port, 18789);
        for bad in ["http://x", "ws://", "ws://h:port", "wss://[::1"] {
            assert!(u(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn private_hosts() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let cases: &[(&str, &[&str], bool)] = &[
            ("127.0.0.1", &[], true),
            ("::1", &[], true),
            ("10.1.2.3", &[], true),
            ("192.168.1.9", &[], true),
            ("172.20.0.1", &[], true),
            ("169.254.0.5", &[], true),
            ("100.101.102.103", &[], true), // tailnet
            ("100.128.0.1", &[], false),
            ("fd00::1", &[], true),
            ("8.8.8.8", &[], false),
            ("localhost", &[], true),
            ("box.local", &[], true),
            ("remote-machine.tail1234.ts.net", &[], true),
            ("remote-machine", &["100.64.0.7"], true), // MagicDNS short name
            ("gw.example.com", &["93.184.216.34"], false),
            ("mixed.example", &["10.0.0.1", "93.184.216.34"], false),
            ("unresolved", &[], false),
        ];
        for (host, addrs, want) in cases {
            let a: Vec<IpAddr> = addrs.iter().map(|s| ip(s)).collect();
            assert_eq!(is_private(host, &a), *want, "{host} {addrs:?}");
        }
    }
}
