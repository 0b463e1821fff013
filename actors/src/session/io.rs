//! The per-connection socket halves: the socket is split; the Session reads its half itself
//! (a branch of its loop: [`Session::on_frame`](super) turns each frame into a message), and
//! a writer task writes outbound frames from a channel whose queued bytes are counted
//! against `maxBufferedBytes`, pings authenticated sockets, and closes. Because stalled
//! writes are left to their own task, the session keeps reading while a write is stalled,
//! so a client that stops reading is noticed as a slow consumer instead of freezing the
//! connection. When the session ends after queuing a close, it hands its read half to the
//! writer, which reads on until the peer's close frame (at most [`CLOSE_LINGER`]) so the
//! socket shuts cleanly.
//!
//! The write fast path: when nothing is queued and the writer is not in the middle of a
//! write, [`Outbound::text`] writes the frame itself, without waiting (the socket takes it
//! or tungstenite keeps it); only a write the socket could not finish goes to the writer
//! ([`Out::Flush`]), and everything after it queues behind it. Order is kept because the
//! fast path runs only while the queue is empty, under the sink's lock (issue 15: the hop
//! to the writer task was most of the per-request cost over the bare server).

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink as _, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch, Mutex};
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
pub enum Out {
    /// Send a text frame (its bytes are counted in the queue).
    Text(String),
    /// The fast path left this many bytes (counted in the queue) in tungstenite's buffer:
    /// flush them.
    Flush(usize),
    /// Start WS pings (after `hello-ok`).
    StartPings(Duration),
    /// Send a close frame and end.
    Close(u16, String),
    /// The peer sent a close frame (tungstenite queued the answer): flush and end.
    PeerClosed,
    /// The session ended after queuing a close: its read half, to read until the peer's
    /// close frame.
    Linger(Box<Stream>),
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Out::Text(t) => write!(f, "Text({} bytes)", t.len()),
            Out::Flush(n) => write!(f, "Flush({n} bytes)"),
            Out::StartPings(d) => write!(f, "StartPings({d:?})"),
            Out::Close(code, reason) => write!(f, "Close({code}, {reason:?})"),
            Out::PeerClosed => f.write_str("PeerClosed"),
            Out::Linger(_) => f.write_str("Linger"),
        }
    }
}

/// The session's side of the outbound queue.
#[derive(Clone)]
pub struct Outbound {
    tx: mpsc::UnboundedSender<Out>,
    queued: Arc<AtomicUsize>,
    abort: Arc<watch::Sender<bool>>,
    seen: Arc<Seen>,
    sink: Arc<Mutex<Sink>>,
    stats: Arc<ConnStats>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
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

/// Writer state besides the sink.
struct Writer {
    rx: mpsc::UnboundedReceiver<Out>,
    queued: Arc<AtomicUsize>,
    abort: watch::Receiver<bool>,
    session: SessionRef,
    stats: Arc<ConnStats>,
    seen: Arc<Seen>,
}

/// When the session last heard from the peer (ms since `base`), for the ping timeout.
#[derive(Debug)]
struct Seen {
    base: tokio::time::Instant,
    ms: std::sync::atomic::AtomicU64,
}

type Sink = SplitSink<WsStream, Message>;
type Shared = Arc<Mutex<Sink>>;
/// The read half of a session's socket.
pub type Stream = SplitStream<WsStream>;

// === impl Outbound ===

impl Outbound {
    /// Queues a text frame unless the queue would exceed `limit` bytes.
    pub fn text(&self, text: String, limit: usize) -> Queued {
        let n = text.len();
        let text = match self.write_now(text) {
            Ok(()) => return Queued::Ok,
            Err(text) => text,
        };
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

    /// The fast path: with nothing queued and the sink free, writes `text` and flushes
    /// without waiting. `Err(text)` when it cannot be tried (the frame is queued instead).
    /// A flush the socket could not finish, or that failed, goes to the writer as
    /// [`Out::Flush`] with the frame's bytes counted as queued, so later frames queue
    /// behind it and a failure is reported by the writer as for any write.
    fn write_now(&self, text: String) -> Result<(), String> {
        if self.queued.load(Ordering::Acquire) != 0 || *self.abort.borrow() {
            return Err(text);
        }
        let Ok(mut sink) = self.sink.try_lock() else {
            return Err(text);
        };
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut sink = Pin::new(&mut *sink);
        if !matches!(sink.as_mut().poll_ready(&mut cx), Poll::Ready(Ok(()))) {
            return Err(text);
        }
        let n = text.len();
        let sent = sink.as_mut().start_send(Message::text(text)).is_ok();
        self.stats.frames_out.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        if sent && matches!(sink.as_mut().poll_flush(&mut cx), Poll::Ready(Ok(()))) {
            return Ok(());
        }
        // Unfinished (or failed): the writer flushes (or reports the failure).
        self.queued.fetch_add(n, Ordering::AcqRel);
        let _ = self.tx.send(Out::Flush(n));
        Ok(())
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

    /// The peer was heard from (any frame): resets the ping timeout.
    pub fn heard(&self) {
        self.seen.touch();
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

/// Splits `ws` and starts the writer; returns the outbound queue and the read half, which
/// the session reads itself.
pub fn spawn(ws: WsStream, session: SessionRef, stats: Arc<ConnStats>) -> (Outbound, Stream) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (abort_tx, abort) = watch::channel(false);
    let queued = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Seen {
        base: tokio::time::Instant::now(),
        ms: Default::default(),
    });
    let (sink, stream) = ws.split();
    let sink = Arc::new(Mutex::new(sink));
    let out = Outbound {
        tx,
        queued: queued.clone(),
        abort: Arc::new(abort_tx),
        seen: seen.clone(),
        sink: sink.clone(),
        stats: stats.clone(),
    };
    let w = Writer {
        rx,
        queued,
        abort,
        session,
        stats,
        seen,
    };
    tokio::spawn(write_loop(sink, w));
    (out, stream)
}

/// What one read of the socket means for the session.
pub enum Read {
    /// A data frame (binary is taken as lossy UTF-8).
    Frame(String),
    /// Ping or pong (tungstenite answers pings itself): nothing for the session.
    Control,
    /// The socket is done: the peer closed (tungstenite queued the answer), it ended, or a
    /// read failed (its close frame, if it earns one, is queued). Stop reading.
    Closed {
        /// Close code from the peer, if any.
        code: Option<u16>,
        /// Close reason from the peer.
        reason: String,
        /// The read error, if any.
        error: Option<String>,
    },
}

/// Interprets one read of the session's half (`None`: the stream ended), counting bytes
/// and telling the writer what a close needs.
pub fn on_read(read: Option<Result<Message, WsError>>, out: &Outbound, stats: &ConnStats) -> Read {
    let closed = |error: Option<String>| Read::Closed {
        code: None,
        reason: String::new(),
        error,
    };
    let Some(read) = read else {
        return closed(None);
    };
    out.heard();
    let text = match read {
        Ok(Message::Text(t)) => t.as_str().to_owned(),
        Ok(Message::Binary(b)) => String::from_utf8_lossy(&b).into_owned(),
        Ok(Message::Close(frame)) => {
            let (code, reason) = frame
                .map(|f| (Some(u16::from(f.code)), f.reason.as_str().to_owned()))
                .unwrap_or((None, String::new()));
            out.control(Out::PeerClosed);
            return Read::Closed {
                code,
                reason,
                error: None,
            };
        }
        Ok(_) => return Read::Control,
        Err(e) => {
            // RFC 6455 §7.1.7: fail the connection with a close frame, not a bare FIN.
            if let Some((code, reason)) = close_for(&e) {
                out.control(Out::Close(code, reason.to_string()));
            }
            return closed(Some(describe(&e)));
        }
    };
    stats.frames_in.fetch_add(1, Ordering::Relaxed);
    stats
        .bytes_in
        .fetch_add(text.len() as u64, Ordering::Relaxed);
    Read::Frame(text)
}

/// What a control command means for the write loop.
enum Flow {
    Go,
    /// End now (after a flush when the peer closed).
    End,
    /// Send this close frame, then linger for the peer's.
    Close(u16, String),
}

/// Applies a non-text command.
async fn control(cmd: Out, sink: &mut Sink, ping: &mut Ping, w: &mut Writer) -> Flow {
    match cmd {
        Out::Text(_) => Flow::Go, // texts go through write_batch
        Out::Flush(n) => {
            let flushed = stall_guarded(sink.flush(), &mut w.abort).await;
            w.queued.fetch_sub(n, Ordering::AcqRel);
            if flushed {
                Flow::Go
            } else {
                let _ = write_failed(w);
                Flow::End
            }
        }
        Out::StartPings(every) => {
            *ping = Some(start_pings(every));
            Flow::Go
        }
        Out::Close(code, reason) => Flow::Close(code, reason),
        Out::PeerClosed => {
            let _ = sink.flush().await;
            Flow::End
        }
        // The session ended without a close (its half is only handed over after one).
        Out::Linger(_) => Flow::Go,
    }
}

type Ping = Option<(tokio::time::Interval, Duration)>;

/// Writes queued frames and pings until a close; then closes and reads the session's half
/// (when it hands it over) until the peer's close frame. The sink's lock is held for each
/// write (a stalled one included), so the session's fast path stays off meanwhile.
async fn write_loop(shared: Shared, mut w: Writer) {
    let mut ping: Ping = None;
    let end: Option<(u16, String)> = loop {
        let flow = tokio::select! {
            cmd = w.rx.recv() => match cmd {
                Some(Out::Text(t)) => {
                    let mut sink = shared.lock().await;
                    match write_batch(&mut sink, t, &mut w).await {
                        Err(()) => Flow::End,
                        Ok(Some(cmd)) => control(cmd, &mut sink, &mut ping, &mut w).await,
                        Ok(None) => Flow::Go,
                    }
                }
                Some(cmd) => control(cmd, &mut *shared.lock().await, &mut ping, &mut w).await,
                // The session is gone without closing (it crashed): close on its behalf.
                None => Flow::Close(1011, "internal error".into()),
            },
            _ = async { ping.as_mut().expect("guarded").0.tick().await }, if ping.is_some() => {
                let every = ping.as_ref().map_or(Duration::MAX, |p| p.1);
                if w.seen.since() > every.saturating_mul(2) {
                    let _ = w.session.cast(SessionMsg::SocketClosed { code: None, reason: String::new(), error: Some("ping timeout".into()) });
                    Flow::Close(1001, "ping timeout".into())
                } else if !stall_guarded(shared.lock().await.send(Message::Ping(Default::default())), &mut w.abort).await {
                    let _ = w.session.cast(SessionMsg::SocketClosed { code: None, reason: String::new(), error: Some("write failed".into()) });
                    Flow::End
                } else {
                    Flow::Go
                }
            }
        };
        match flow {
            Flow::Go => {}
            Flow::End => break None,
            Flow::Close(code, reason) => break Some((code, reason)),
        }
    };
    if let Some((code, reason)) = end {
        close(&mut *shared.lock().await, code, &reason, &mut w.abort).await;
        // Wait briefly for the peer's close: the session hands its read half over as it
        // ends (after the close it queued); read until the peer's close frame or EOF.
        let linger = async {
            while let Some(cmd) = w.rx.recv().await {
                if let Out::Linger(mut stream) = cmd {
                    // Bounded by CLOSE_LINGER, not by a count: closing with unread bytes
                    // (a client still pipelining requests) would send an RST, which can
                    // destroy the close frame before the client reads it.
                    while let Some(Ok(m)) = stream.next().await {
                        if m.is_close() {
                            break;
                        }
                    }
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_LINGER, linger).await;
    }
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

fn start_pings(every: Duration) -> (tokio::time::Interval, Duration) {
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    (i, every)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::MAX_BUFFERED_BYTES;
    use crate::shared::ConnFacts;
    use tokio_tungstenite::tungstenite::protocol::Role;

    /// A session's socket halves over an in-memory pipe holding `buf` bytes, and the
    /// client's end of it.
    async fn pair(buf: usize) -> (Outbound, Stream, WebSocketStream<tokio::io::DuplexStream>) {
        let (server, client) = tokio::io::duplex(buf);
        let io: Box<dyn Io> = Box::new(server);
        let limit = Arc::new(AtomicUsize::new(MAX_PAYLOAD_BYTES));
        let ws = WebSocketStream::from_raw_socket(
            GuardedIo::new(io, limit),
            Role::Server,
            Some(ws_config()),
        )
        .await;
        let peer = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        let facts = Arc::new(ConnFacts::direct("127.0.0.1:5000"));
        let stats = crate::shared::Registry::default().register(facts);
        let (session, _rx) = SessionRef::detached();
        let (out, stream) = spawn(ws, session, stats);
        (out, stream, peer)
    }

    async fn next_text(peer: &mut WebSocketStream<tokio::io::DuplexStream>) -> String {
        let m = tokio::time::timeout(Duration::from_secs(10), peer.next())
            .await
            .expect("a frame within 10 s")
            .expect("the stream is open")
            .expect("a valid frame");
        m.into_text().expect("a text frame").as_str().to_owned()
    }

    #[tokio::test]
    async fn with_nothing_queued_the_session_writes_the_frame_itself() {
        let (out, _stream, mut peer) = pair(64 * 1024).await;
        assert_eq!(out.text("one".into(), MAX_BUFFERED_BYTES), Queued::Ok);
        // Written and flushed before `text` returned: nothing is left for the writer.
        assert_eq!(out.queued(), 0);
        assert_eq!(out.stats.frames_out.load(Ordering::Relaxed), 1);
        assert_eq!(next_text(&mut peer).await, "one");
    }

    #[tokio::test]
    async fn a_frame_the_socket_cannot_take_at_once_is_finished_by_the_writer_in_order() {
        let (out, _stream, mut peer) = pair(4096).await;
        let big = "x".repeat(300_000);
        assert_eq!(out.text(big.clone(), MAX_BUFFERED_BYTES), Queued::Ok);
        // The pipe took at most 4 KiB: the rest is the writer's, counted as queued, so the
        // next frame queues behind it instead of being written first.
        assert_eq!(out.queued(), big.len());
        assert_eq!(out.text("after".into(), MAX_BUFFERED_BYTES), Queued::Ok);
        assert_eq!(out.queued(), big.len() + "after".len());
        assert_eq!(next_text(&mut peer).await, big);
        assert_eq!(next_text(&mut peer).await, "after");
        for _ in 0..1000 {
            if out.queued() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            out.queued(),
            0,
            "the writer's flush is counted off the queue"
        );
        // The queue is empty again: the next frame takes the fast path.
        assert_eq!(out.text("again".into(), MAX_BUFFERED_BYTES), Queued::Ok);
        assert_eq!(out.queued(), 0);
        assert_eq!(next_text(&mut peer).await, "again");
    }
}
