//! The Listener actor: one per bound address. It binds in `pre_start` (so a busy port fails
//! start-up with a clear error) and runs the accept loop in a task it owns; each accepted
//! TCP connection is served by hyper (HTTP/1.1 with upgrades, header-read timeout enforced
//! by hyper's timer) in its own task. Upgrades become sessions via the SessionManager.

pub mod http;
pub mod probes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use tokio::net::{TcpListener, TcpSocket};

use crate::shared::Registry;
use http::HttpCtx;

/// How long a client may take to send request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The most request-line-plus-header bytes a client may send (Node's default); more gets
/// 431. It is also hyper's read-buffer cap, so a connection that has not upgraded pins at
/// most this much buffered input however slowly it sends.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The listener actor.
pub struct ListenerActor;

/// Start-up arguments.
#[derive(Clone)]
pub struct ListenerArgs {
    /// Address to bind (port 0: the gateway's port once known, else any).
    pub addr: SocketAddr,
    /// What request handling needs (shared by all listeners).
    pub http: Arc<HttpCtx>,
    /// Skip quietly when the address family is unavailable (IPv6 off).
    pub optional: bool,
}

/// Messages to a listener (none yet besides lifecycle; kept for tracing symmetry).
pub enum ListenerMsg {}

/// Reference to a listener.
pub type ListenerRef = ActorRef<ListenerMsg>;

/// Starts a listener linked to `supervisor`; binding fails the start.
pub async fn spawn(
    args: ListenerArgs,
    supervisor: ActorCell,
) -> Result<ListenerRef, ractor::SpawnErr> {
    Ok(Actor::spawn_linked(None, ListenerActor, args, supervisor)
        .await?
        .0)
}

/// State: the accept task, aborted when the state drops (stop, crash or kill).
pub struct ListenerState {
    addr: Option<SocketAddr>,
    accept: Option<tokio::task::JoinHandle<()>>,
    registry: Arc<Registry>,
}

/// Why binding failed, in words a user can act on.
pub fn bind_error(addr: SocketAddr, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "cannot listen on {addr}: address already in use; is another gateway running? \
             (check with `openclaw status`, or pick another port with --port)"
        ),
        std::io::ErrorKind::PermissionDenied => {
            format!("cannot listen on {addr}: permission denied (ports below 1024 need privileges; use --port)")
        }
        _ => format!("cannot listen on {addr}: {e}"),
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        let s = TcpSocket::new_v6()?;
        // `[::]` next to `0.0.0.0` (bind lan): IPv6 only, or the two would collide.
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv6V6Only, &true)
            .map_err(std::io::Error::from)?;
        s
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(1024)
}

impl Actor for ListenerActor {
    type Msg = ListenerMsg;
    type State = ListenerState;
    type Arguments = ListenerArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<ListenerMsg>,
        a: ListenerArgs,
    ) -> Result<ListenerState, ActorProcessingErr> {
        let mut addr = a.addr;
        let registry = a.http.hub.registry.clone();
        let known = registry.port();
        if addr.port() == 0 && known != 0 {
            addr.set_port(known);
        }
        let listener = match bind(addr) {
            Ok(l) => l,
            Err(e)
                if a.optional
                    && matches!(
                        e.raw_os_error(),
                        Some(libc::EADDRNOTAVAIL) | Some(libc::EAFNOSUPPORT)
                    ) =>
            {
                tracing::debug!(%addr, error = %e, "IPv6 loopback unavailable; not listening on it");
                return Ok(ListenerState {
                    addr: None,
                    accept: None,
                    registry,
                });
            }
            Err(e) => return Err(bind_error(addr, &e).into()),
        };
        let local = listener.local_addr()?;
        registry.add_listener(local);
        tracing::info!(addr = %local, "listening");
        let accept = tokio::spawn(accept_loop(listener, a.http));
        Ok(ListenerState {
            addr: Some(local),
            accept: Some(accept),
            registry,
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<ListenerMsg>,
        msg: ListenerMsg,
        _st: &mut ListenerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {}
    }
}

impl Drop for ListenerState {
    fn drop(&mut self) {
        if let Some(t) = self.accept.take() {
            t.abort();
        }
        if let Some(a) = self.addr {
            self.registry.remove_listener(a);
        }
    }
}

/// Accepts connections and serves each in its own task (also the managed Tailscale listener).
pub(crate) async fn accept_loop(listener: TcpListener, ctx: Arc<HttpCtx>) {
    let tls = ctx
        .hub
        .tls
        .as_ref()
        .map(|t| tokio_rustls::TlsAcceptor::from(t.server_config()));
    let mut refusals = Throttle::default();
    let mut accept_errors = Throttle::default();
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let permit = match admit_socket(&ctx, peer) {
                    Ok(p) => Arc::new(p),
                    Err(r) => {
                        // Never read: the answer costs no buffer, and the fd closes now.
                        let _ = tcp.try_write(&r.http_answer());
                        if let Some(n) = refusals.hit() {
                            tracing::warn!(
                                %peer,
                                reason = r.reason(),
                                refused = n,
                                open = ctx.hub.conns.open(),
                                "connections refused at accept (gateway.connections)"
                            );
                        }
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let ctx = ctx.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => serve_tls(tcp, peer, ctx, acceptor, permit).await,
                        None => serve(tcp, peer, ctx, permit).await,
                    }
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning, and say so once per
                // interval (the connection cap keeps this from happening in normal runs).
                if let Some(n) = accept_errors.hit() {
                    tracing::warn!(error = %e, failures = n, "accept failed");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The `gateway.connections` slot for a new socket from `peer`.
fn admit_socket(
    ctx: &HttpCtx,
    peer: SocketAddr,
) -> Result<crate::guard::conncap::ConnPermit, crate::guard::conncap::ConnRefusal> {
    use crate::guard::conncap::PeerClass;
    let live = ctx.hub.live.get();
    let ip = peer.ip();
    let class = if ip.is_loopback() || ip.to_canonical().is_loopback() {
        PeerClass::Loopback
    } else if live.policy.trusted_proxies.contains(ip) {
        PeerClass::Proxy
    } else {
        PeerClass::Remote
    };
    ctx.hub.conns.try_open(ip, class, &live.policy.connections)
}

/// Logs a repeated condition at most once per [`Throttle::EVERY`], with the count since.
#[derive(Default)]
struct Throttle {
    last: Option<tokio::time::Instant>,
    count: u64,
}

impl Throttle {
    const EVERY: Duration = Duration::from_secs(10);

    /// Counts one; `Some(count)` when it is time to log.
    fn hit(&mut self) -> Option<u64> {
        self.count += 1;
        let now = tokio::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Self::EVERY)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

/// Serves HTTP/1.1 (with upgrades) on one connection.
async fn serve<I>(
    io: I,
    peer: SocketAddr,
    ctx: Arc<HttpCtx>,
    permit: Arc<crate::guard::conncap::ConnPermit>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| http::handle(req, peer, ctx.clone(), permit.clone()));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_header_size(MAX_HEADER_BYTES)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "http connection ended with an error");
    }
}

/// What a plain-HTTP request on the TLS port gets: a short, clear refusal, not a hang.
const PLAIN_ON_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
Connection: close\r\nContent-Length: 59\r\n\r\nthis port speaks TLS: use https:// or wss:// (gateway.tls)\n";

/// The first byte of a TLS connection (a handshake record).
const TLS_HANDSHAKE: u8 = 0x16;

/// TLS: a plain-text first byte gets [`PLAIN_ON_TLS`]; otherwise the handshake (bounded by
/// the header-read timeout), then HTTP over it.
async fn serve_tls(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    ctx: Arc<HttpCtx>,
    acceptor: tokio_rustls::TlsAcceptor,
    permit: Arc<crate::guard::conncap::ConnPermit>,
) {
    let mut first = [0u8; 1];
    match tokio::time::timeout(HEADER_READ_TIMEOUT, tcp.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => {}
        Ok(Ok(1)) => {
            use tokio::io::AsyncWriteExt;
            let mut tcp = tcp;
            let _ = tcp.write_all(PLAIN_ON_TLS).await;
            let _ = tcp.shutdown().await;
            return tracing::debug!(%peer, "plain request on the TLS port refused");
        }
        _ => return,
    }
    match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => serve(stream, peer, ctx, permit).await,
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}
