//! The per-connection I/O tasks: the socket is split into a reader, which forwards inbound
//! frames to the Session actor by `cast` and keeps reading while a write is stalled (so a
//! client that stops reading is noticed as a slow consumer instead of freezing the
//! connection), and a writer, which writes outbound frames from a channel whose queued bytes
//! are counted against `maxBufferedBytes`, pings authenticated sockets, and closes. Never
//! awaited inside an actor handler.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::{SessionMsg, SessionRef};
use crate::protocol::frame_guard::{is_oversize, GuardedIo};
use crate::protocol::{truncate_close_reason, MAX_PAYLOAD_BYTES};
use crate::shared::ConnStats;

/// Any byte stream a session can run on (TCP now, TLS later).
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// The WebSocket type sessions use.
pub type WsStream = WebSocketStream<GuardedIo<Box<dyn Io>>>;

/// Inbound frames a connection may have waiting for its session: the reader stops reading
/// (and TCP pushes back on the client) until the session catches up, so one flooding client
/// holds a bounded queue and gets its turn like everyone else.
pub const MAX_INBOUND_QUEUED: usize = 32;

/// How long a closing socket waits for the peer's close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// How long an aborted connection (a slow consumer) waits for a stalled write before the
/// socket is dropped without a close frame.
pub const ABORT_LINGER: Duration = Duration::from_secs(10);

/// tungstenite settings chosen for many mostly idle connections: a small read buffer
/// (the default allocates 128 KiB per connection), writes flushed per batch, a bounded
/// write buffer, and message limits at the post-auth maximum (the pre-auth 64 KiB cap is
/// enforced below tungstenite by [`GuardedIo`]).
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_PAYLOAD_BYTES + 1024 * 1024)
        .max_message_size(Some(MAX_PAYLOAD_BYTES))
        .max_frame_size(Some(MAX_PAYLOAD_BYTES))
}

/// Commands for the writer.
#[derive(Debug)]
pub enum Out {
    /// Send a text frame (its bytes are counted in the queue).
    Text(String),
    /// Start WS pings (after `hello-ok`).
    StartPings(Duration),
    /// Send a close frame and end.
    Close(u16, String),
}

/// The session's side of the outbound queue.
#[derive(Debug, Clone)]
pub struct Outbound {
    tx: mpsc::UnboundedSender<Out>,
    queued: Arc<AtomicUsize>,
    abort: Arc<watch::Sender<bool>>,
    inbound: Arc<tokio::sync::Semaphore>,
}

/// Result of queueing a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// Queued.
    Ok,
    /// Over the buffer limit.
    Full,
    /// The I/O task is gone.
    Closed,
}

/// What the reader tells the writer.
enum FromReader {
    /// The peer sent a close frame (tungstenite answered it): flush and end.
    PeerClosed,
    /// Close with this code (1009 for an oversize frame, 1011 when the session is gone).
    Close(u16, &'static str),
}

/// Writer state besides the sink.
struct Writer {
    rx: mpsc::UnboundedReceiver<Out>,
    /// The reader's last word (it sends at most one, then ends): a oneshot, not a channel,
    /// because an idle connection holds it for its whole life (an mpsc costs ~1.3 KB).
    from_reader: oneshot::Receiver<FromReader>,
    /// The reader's word was taken (or it ended without one).
    reader_done: bool,
    queued: Arc<AtomicUsize>,
    abort: watch::Receiver<bool>,
    session: SessionRef,
    stats: Arc<ConnStats>,
    seen: Arc<Seen>,
}

/// When the reader last heard from the peer (ms since `base`), for the ping timeout.
struct Seen {
    base: tokio::time::Instant,
    ms: std::sync::atomic::AtomicU64,
}

type Sink = SplitSink<WsStream, Message>;
type Stream = SplitStream<WsStream>;

// === impl Outbound ===

impl Outbound {
    /// Queues a text frame unless the queue would exceed `limit` bytes.
    pub fn text(&self, text: String, limit: usize) -> Queued {
        let n = text.len();
        let before = self.queued.fetch_add(n, Ordering::AcqRel);
        if before + n > limit && before > 0 {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            return Queued::Full;
        }
        match self.tx.send(Out::Text(text)) {
            Ok(()) => Queued::Ok,
            Err(_) => Queued::Closed,
        }
    }

    /// Sends a control command.
    pub fn control(&self, cmd: Out) -> bool {
        self.tx.send(cmd).is_ok()
    }

    /// Closes without sending what is still queued (a slow consumer): queued frames are
    /// dropped, and a write stalled on the peer gives up after [`ABORT_LINGER`].
    pub fn abort(&self, code: u16, reason: &str) {
        let _ = self.abort.send(true);
        let _ = self.tx.send(Out::Close(code, reason.to_string()));
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// The session took one inbound frame: the reader may queue another.
    pub fn inbound_taken(&self) {
        self.inbound.add_permits(1);
    }
}

// === impl Seen ===

impl Seen {
    fn touch(&self) {
        let ms = self.base.elapsed().as_millis() as u64;
        self.ms.store(ms, Ordering::Relaxed);
    }

    fn since(&self) -> Duration {
        let last = Duration::from_millis(self.ms.load(Ordering::Relaxed));
        self.base.elapsed().saturating_sub(last)
    }
}

/// Starts the reader and writer for `ws`; returns the outbound queue and the writer's
/// handle (it ends the reader).
pub fn spawn(
    ws: WsStream,
    session: SessionRef,
    stats: Arc<ConnStats>,
) -> (Outbound, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (reader_tx, from_reader) = oneshot::channel();
    let (abort_tx, abort) = watch::channel(false);
    let queued = Arc::new(AtomicUsize::new(0));
    let inbound = Arc::new(tokio::sync::Semaphore::new(MAX_INBOUND_QUEUED));
    let out = Outbound {
        tx,
        queued: queued.clone(),
        abort: Arc::new(abort_tx),
        inbound: inbound.clone(),
    };
    let seen = Arc::new(Seen {
        base: tokio::time::Instant::now(),
        ms: Default::default(),
    });
    let (sink, stream) = ws.split();
    let reader = tokio::spawn(read_loop(
        stream,
        Reader {
            to_writer: reader_tx,
            session: session.clone(),
            stats: stats.clone(),
            seen: seen.clone(),
            inbound,
        },
    ));
    let w = Writer {
        rx,
        from_reader,
        reader_done: false,
        queued,
        abort,
        session,
        stats,
        seen,
    };
    let task = tokio::spawn(write_loop(sink, w, reader));
    (out, task)
}

/// What the reader holds besides the stream.
struct Reader {
    to_writer: oneshot::Sender<FromReader>,
    session: SessionRef,
    stats: Arc<ConnStats>,
    seen: Arc<Seen>,
    /// One permit per frame the session has not taken yet ([`MAX_INBOUND_QUEUED`]).
    inbound: Arc<tokio::sync::Semaphore>,
}

/// Forwards inbound frames to the session until the peer closes or the socket fails.
async fn read_loop(mut stream: Stream, r: Reader) {
    let Reader {
        to_writer,
        session,
        stats,
        seen,
        inbound,
    } = r;
    let closed = |error: Option<String>| SessionMsg::SocketClosed {
        code: None,
        reason: String::new(),
        error,
    };
    loop {
        // Wait for room in the session's queue before reading the next frame.
        match inbound.acquire().await {
            Ok(p) => p.forget(),
            Err(_) => return,
        }
        let Some(msg) = stream.next().await else {
            break;
        };
        seen.touch();
        let text = match msg {
            Ok(Message::Text(t)) => t.as_str().to_owned(),
            Ok(Message::Binary(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(Message::Close(frame)) => {
                let (code, reason) = frame
                    .map(|f| (Some(u16::from(f.code)), f.reason.as_str().to_owned()))
                    .unwrap_or((None, String::new()));
                let _ = to_writer.send(FromReader::PeerClosed);
                let _ = session.cast(SessionMsg::SocketClosed {
                    code,
                    reason,
                    error: None,
                });
                return;
            }
            Ok(_) => {
                // ping/pong: tungstenite answers pings itself; nothing went to the session.
                inbound.add_permits(1);
                continue;
            }
            Err(e) => {
                // RFC 6455 §7.1.7: fail the connection with a close frame, not a bare FIN.
                if let Some((code, reason)) = close_for(&e) {
                    let _ = to_writer.send(FromReader::Close(code, reason));
                }
                let _ = session.cast(closed(Some(describe(&e))));
                return;
            }
        };
        stats.frames_in.fetch_add(1, Ordering::Relaxed);
        stats
            .bytes_in
            .fetch_add(text.len() as u64, Ordering::Relaxed);
        if session.cast(SessionMsg::Inbound(text)).is_err() {
            let _ = to_writer.send(FromReader::Close(1011, "internal error"));
            return;
        }
    }
    let _ = session.cast(closed(None));
}

/// Writes queued frames and pings until a close; then closes and ends the reader.
async fn write_loop(mut sink: Sink, mut w: Writer, reader: tokio::task::JoinHandle<()>) {
    let mut ping: Option<tokio::time::Interval> = None;
    let mut ping_every = Duration::MAX;
    let end: Option<(u16, String)> = loop {
        tokio::select! {
            biased;
            cmd = &mut w.from_reader, if !w.reader_done => {
                w.reader_done = true;
                match cmd {
                    Ok(FromReader::PeerClosed) => {
                        let _ = sink.flush().await;
                        break None;
                    }
                    Ok(FromReader::Close(code, reason)) => break Some((code, reason.to_string())),
                    // The reader ended without a word (it told the session instead).
                    Err(_) => {}
                }
            },
            cmd = w.rx.recv() => match cmd {
                Some(Out::Text(t)) => match write_batch(&mut sink, t, &mut w).await {
                    Err(()) => break None,
                    Ok(Some(Out::StartPings(every))) => ping = Some(start_pings(every, &mut ping_every)),
                    Ok(Some(Out::Close(code, reason))) => break Some((code, reason)),
                    Ok(_) => {}
                },
                Some(Out::StartPings(every)) => ping = Some(start_pings(every, &mut ping_every)),
                Some(Out::Close(code, reason)) => break Some((code, reason)),
                // The session is gone without closing (it crashed): close on its behalf.
                None => break Some((1011, "internal error".into())),
            },
            _ = async { ping.as_mut().expect("guarded").tick().await }, if ping.is_some() => {
                if w.seen.since() > ping_every.saturating_mul(2) {
                    let _ = w.session.cast(SessionMsg::SocketClosed { code: None, reason: String::new(), error: Some("ping timeout".into()) });
                    break Some((1001, "ping timeout".into()));
                }
                if !stall_guarded(sink.send(Message::Ping(Default::default())), &mut w.abort).await {
                    let _ = w.session.cast(SessionMsg::SocketClosed { code: None, reason: String::new(), error: Some("write failed".into()) });
                    break None;
                }
            }
        }
    };
    let stop_reader = reader.abort_handle();
    if let Some((code, reason)) = end {
        close(&mut sink, code, &reason, &mut w.abort).await;
        // Wait briefly for the peer's close (the reader ends on it, or on EOF).
        let _ = tokio::time::timeout(CLOSE_LINGER, reader).await;
    }
    stop_reader.abort();
}

/// Runs a write; `false` when it failed, or when the connection was aborted and the write
/// stayed stalled for [`ABORT_LINGER`].
async fn stall_guarded<E>(
    write: impl std::future::Future<Output = Result<(), E>>,
    abort: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        r = write => r.is_ok(),
        _ = async {
            let _ = abort.wait_for(|a| *a).await;
            tokio::time::sleep(ABORT_LINGER).await;
        } => false,
    }
}

/// Writes `first` and whatever else is already queued, then flushes once. Once the
/// connection is aborted, queued frames are dropped instead of written.
async fn write_batch(sink: &mut Sink, first: String, w: &mut Writer) -> Result<Option<Out>, ()> {
    let mut bytes = 0usize;
    let mut frames = 0u64;
    let mut next = Some(first);
    let mut deferred = None;
    let mut dropped = 0usize;
    while let Some(t) = next.take() {
        if *w.abort.borrow() {
            dropped += t.len();
        } else {
            bytes += t.len();
            frames += 1;
            if !stall_guarded(sink.feed(Message::text(t)), &mut w.abort).await {
                return write_failed(w);
            }
        }
        if frames < 64 {
            match w.rx.try_recv() {
                Ok(Out::Text(t)) => next = Some(t),
                Ok(other) => deferred = Some(other),
                Err(_) => {}
            }
        }
    }
    let flushed = frames == 0 || stall_guarded(sink.flush(), &mut w.abort).await;
    w.queued.fetch_sub(bytes + dropped, Ordering::AcqRel);
    w.stats.frames_out.fetch_add(frames, Ordering::Relaxed);
    w.stats.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    if !flushed {
        return write_failed(w);
    }
    Ok(deferred)
}

/// Tells the session the socket failed; the batch ends.
fn write_failed(w: &Writer) -> Result<Option<Out>, ()> {
    let _ = w.session.cast(SessionMsg::SocketClosed {
        code: None,
        reason: String::new(),
        error: Some("write failed".into()),
    });
    Err(())
}

fn start_pings(every: Duration, ping_every: &mut Duration) -> tokio::time::Interval {
    *ping_every = every;
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}

/// Sends a close frame (bounded when aborted).
async fn close(sink: &mut Sink, code: u16, reason: &str, abort: &mut watch::Receiver<bool>) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: truncate_close_reason(reason).into(),
    };
    let _ = stall_guarded(sink.send(Message::Close(Some(frame))), abort).await;
}

/// The close frame a read error earns (RFC 6455 §7.4.1): 1009 for an oversize message, 1007
/// for a text message that is not UTF-8, 1002 for any other protocol violation (unmasked
/// frame, reserved opcode or RSV bit, fragmented or oversize control frame). `None` when the
/// socket itself failed: there is no one left to tell.
pub(crate) fn close_for(e: &WsError) -> Option<(u16, &'static str)> {
    match e {
        WsError::Io(io) if is_oversize(io) => Some((1009, "max payload size exceeded")),
        WsError::Capacity(_) => Some((1009, "max payload size exceeded")),
        WsError::Utf8(_) => Some((1007, "invalid utf-8 in text frame")),
        WsError::Protocol(p) => Some((1002, protocol_reason(p))),
        _ => None,
    }
}

/// A short, fixed close reason for a protocol violation (never echoes client bytes).
fn protocol_reason(p: &tokio_tungstenite::tungstenite::error::ProtocolError) -> &'static str {
    use tokio_tungstenite::tungstenite::error::ProtocolError as P;
    match p {
        P::UnmaskedFrameFromClient => "unmasked frame from client",
        P::NonZeroReservedBits => "reserved bits set",
        P::UnknownControlFrameType(_) | P::UnknownDataFrameType(_) => "reserved opcode",
        P::FragmentedControlFrame | P::ControlFrameTooBig => "invalid control frame",
        P::InvalidCloseSequence | P::InvalidOpcode(_) => "invalid frame sequence",
        _ => "protocol error",
    }
}

fn describe(e: &WsError) -> String {
    match e {
        WsError::Io(io) if is_oversize(io) => format!("oversize frame: {io}"),
        other => other.to_string(),
    }
}
