//! The per-connection I/O task: owns the WebSocket, forwards inbound text frames to the
//! Session actor by `cast`, writes outbound frames from an unbounded channel whose queued
//! bytes are counted against `maxBufferedBytes`, pings authenticated sockets, and closes.
//! Never awaited inside an actor handler.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
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

/// Commands for the I/O task.
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
}

/// Starts the I/O task for `ws`; returns the outbound queue and the task handle.
pub fn spawn(
    ws: WsStream,
    session: SessionRef,
    stats: Arc<ConnStats>,
) -> (Outbound, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let out = Outbound {
        tx,
        queued: queued.clone(),
    };
    let task = tokio::spawn(run(ws, rx, queued, session, stats));
    (out, task)
}

async fn run(
    mut ws: WsStream,
    mut rx: mpsc::UnboundedReceiver<Out>,
    queued: Arc<AtomicUsize>,
    session: SessionRef,
    stats: Arc<ConnStats>,
) {
    let mut ping: Option<tokio::time::Interval> = None;
    let mut last_seen = Instant::now();
    let mut ping_every = Duration::MAX;
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Out::Text(t)) => match write_batch(&mut ws, t, &mut rx, &queued, &stats, &session).await {
                    Err(()) => break,
                    Ok(Some(Out::StartPings(every))) => ping = Some(start_pings(every, &mut ping_every)),
                    Ok(_) => {}
                },
                Some(Out::StartPings(every)) => ping = Some(start_pings(every, &mut ping_every)),
                Some(Out::Close(code, reason)) => {
                    close(&mut ws, code, &reason).await;
                    break;
                }
                // The session is gone without closing (it crashed): close on its behalf.
                None => {
                    close(&mut ws, 1011, "internal error").await;
                    break;
                }
            },
            msg = ws.next() => {
                last_seen = Instant::now();
                match msg {
                    Some(Ok(Message::Text(t))) => {
                        stats.frames_in.fetch_add(1, Ordering::Relaxed);
                        stats.bytes_in.fetch_add(t.len() as u64, Ordering::Relaxed);
                        if session.cast(SessionMsg::Inbound(t.as_str().to_owned())).is_err() {
                            close(&mut ws, 1011, "internal error").await;
                            break;
                        }
                    }
                    Some(Ok(Message::Binary(b))) => {
                        stats.frames_in.fetch_add(1, Ordering::Relaxed);
                        stats.bytes_in.fetch_add(b.len() as u64, Ordering::Relaxed);
                        let _ = session.cast(SessionMsg::Inbound(String::from_utf8_lossy(&b).into_owned()));
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let (code, reason) = frame
                            .map(|f| (Some(u16::from(f.code)), f.reason.as_str().to_owned()))
                            .unwrap_or((None, String::new()));
                        // tungstenite queued the close reply; flush it, then we are done.
                        let _ = ws.flush().await;
                        let _ = session.cast(SessionMsg::SocketClosed { code, reason, error: None });
                        break;
                    }
                    Some(Ok(_)) => {} // ping/pong: tungstenite answers pings itself
                    Some(Err(e)) => {
                        let error = describe(&e);
                        if is_too_big(&e) {
                            close(&mut ws, 1009, "max payload size exceeded").await;
                        }
                        let _ = session.cast(SessionMsg::SocketClosed { code: None, reason: String::new(), error: Some(error) });
                        break;
                    }
                    None => {
                        let _ = session.cast(SessionMsg::SocketClosed { code: None, reason: String::new(), error: None });
                        break;
                    }
                }
            }
            _ = async { ping.as_mut().expect("guarded").tick().await }, if ping.is_some() => {
                if last_seen.elapsed() > ping_every.saturating_mul(2) {
                    close(&mut ws, 1001, "ping timeout").await;
                    let _ = session.cast(SessionMsg::SocketClosed { code: None, reason: String::new(), error: Some("ping timeout".into()) });
                    break;
                }
                if ws.send(Message::Ping(Default::default())).await.is_err() {
                    let _ = session.cast(SessionMsg::SocketClosed { code: None, reason: String::new(), error: Some("write failed".into()) });
                    break;
                }
            }
        }
    }
}

/// Writes `first` and whatever else is already queued, then flushes once.
async fn write_batch(
    ws: &mut WsStream,
    first: String,
    rx: &mut mpsc::UnboundedReceiver<Out>,
    queued: &AtomicUsize,
    stats: &ConnStats,
    session: &SessionRef,
) -> Result<Option<Out>, ()> {
    let mut bytes = 0usize;
    let mut frames = 0u64;
    let mut next = Some(first);
    let mut deferred = None;
    while let Some(t) = next.take() {
        bytes += t.len();
        frames += 1;
        if ws.feed(Message::text(t)).await.is_err() {
            let _ = session.cast(SessionMsg::SocketClosed {
                code: None,
                reason: String::new(),
                error: Some("write failed".into()),
            });
            return Err(());
        }
        if frames < 64 {
            match rx.try_recv() {
                Ok(Out::Text(t)) => next = Some(t),
                Ok(other) => deferred = Some(other),
                Err(_) => {}
            }
        }
    }
    let flushed = ws.flush().await;
    queued.fetch_sub(bytes, Ordering::AcqRel);
    stats.frames_out.fetch_add(frames, Ordering::Relaxed);
    stats.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    if flushed.is_err() {
        let _ = session.cast(SessionMsg::SocketClosed {
            code: None,
            reason: String::new(),
            error: Some("write failed".into()),
        });
        return Err(());
    }
    match deferred {
        Some(Out::Close(code, reason)) => {
            close(ws, code, &reason).await;
            Err(())
        }
        other => Ok(other),
    }
}

fn start_pings(every: Duration, ping_every: &mut Duration) -> tokio::time::Interval {
    *ping_every = every;
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}

/// Sends a close frame, then waits briefly for the peer's close.
async fn close(ws: &mut WsStream, code: u16, reason: &str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: truncate_close_reason(reason).into(),
    };
    let _ = ws.close(Some(frame)).await;
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

fn is_too_big(e: &WsError) -> bool {
    match e {
        WsError::Io(io) => is_oversize(io),
        WsError::Capacity(_) => true,
        _ => false,
    }
}

fn describe(e: &WsError) -> String {
    match e {
        WsError::Io(io) if is_oversize(io) => format!("oversize frame: {io}"),
        other => other.to_string(),
    }
}
