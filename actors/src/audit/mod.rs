//! The audit log: JSON lines at `<stateDir>/logs/audit.jsonl` that lose nothing.
//!
//! Producers hold an [`AuditHandle`] and `send().await` into a **bounded** channel, so a slow
//! disk pushes back instead of dropping (a ractor mailbox is unbounded, an output port is
//! lossy: neither carries audit events). A dedicated OS thread drains the channel in batches,
//! writes with `O_APPEND`, and fsyncs once per batch (group commit). The [`AuditLoggerActor`]
//! owns that thread: it starts it, watches it, restarts it after a crash (the receiver is
//! kept in a slot that survives the thread), and drains and syncs it on shutdown. Events are
//! made only by the typed constructors in [`events`], which list every event and its fields.
//!
//! The file rotates at a batch boundary past `audit.maxBytes` ([`rotate`]); `seq` runs on
//! across files and [`read`] reads them as one stream. While a write fails the log is
//! *failing*: `/readyz` says so and new connections are refused ([`AuditHandle::refusal`])
//! until a write succeeds again; queued events wait and are retried, never dropped. A batch
//! goes in whole or not at all: a failed write is cut back to the last good length before the
//! retry ([`commit`]), so no torn fragment or repeated `seq` stays in the file. A login is
//! answered hello-ok only once its `auth.ok` is on disk ([`AuditHandle::durable`]).

mod commit;
pub mod events;
pub mod read;
pub mod rotate;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

pub use rotate::Rotation;

/// Capacity of the audit channel (events waiting for the writer).
pub const AUDIT_QUEUE: usize = 16_384;
/// Most events written per batch (one fsync each).
pub const AUDIT_BATCH: usize = 1_024;
/// Longest wait for an event to be on disk before the answer it gates is refused.
pub const AUDIT_SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// One audit record: an event name and its fields. `ts` and `seq` are added by the writer.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// e.g. `conn.open`, `auth.ok`, `auth.fail`.
    pub event: &'static str,
    /// Structured fields, sorted by name, each name once (the order a `serde_json::Map`
    /// gives; the line's key order). Never a secret. A sorted `Vec` with static names
    /// instead of a `Map`: no key allocations or tree nodes for the ~12 fields of an event
    /// (issue 15: a handshake makes three).
    fields: Vec<(&'static str, Value)>,
}

/// What travels on the audit channel.
#[derive(Debug)]
pub enum AuditCmd {
    /// Write this event.
    Event(AuditEvent),
    /// Reply once everything queued before is on disk.
    Flush(oneshot::Sender<()>),
    /// Reply `true` once everything queued before is on disk, `false` as soon as an attempt
    /// to write it fails (the events stay queued and are retried); its waiter gives up after
    /// [`AUDIT_SYNC_TIMEOUT`] on the wall clock ([`AuditHandle::durable`]).
    Sync(oneshot::Sender<bool>),
}

/// Counters visible in `status`.
#[derive(Debug, Default)]
pub struct AuditStats {
    /// Events accepted into the queue.
    pub queued: AtomicU64,
    /// Events written and synced.
    pub written: AtomicU64,
    /// Write or sync failures (events are retried with the next batch).
    pub write_errors: AtomicU64,
    /// Batches written (one fsync each).
    pub batches: AtomicU64,
    /// Nanoseconds spent writing and syncing batches.
    pub batch_ns: AtomicU64,
    /// When the last batch was written (ms since the epoch; 0: none yet).
    pub last_ok_ms: std::sync::atomic::AtomicI64,
    /// When the last write failed (ms since the epoch; 0: never).
    pub last_error_ms: std::sync::atomic::AtomicI64,
    /// Rotations done.
    pub rotations: AtomicU64,
    /// New connections refused because the log could not be written.
    pub refused: AtomicU64,
}

impl AuditStats {
    /// Whether the last write attempt failed (the audit log cannot be written now).
    pub fn failing(&self) -> bool {
        let (ok, err) = (
            self.last_ok_ms.load(Ordering::Relaxed),
            self.last_error_ms.load(Ordering::Relaxed),
        );
        err > ok
    }
}

/// Cheap, clonable producer side.
#[derive(Debug, Clone)]
pub struct AuditHandle {
    tx: mpsc::Sender<AuditCmd>,
    /// Counters.
    pub stats: Arc<AuditStats>,
    /// The audit file.
    pub path: Arc<PathBuf>,
    /// Per-connection traces (the Hub shares this one), noted for each connection's events.
    pub trace: Arc<crate::trace::TraceControl>,
}

/// The receiving side, kept in a slot that outlives any one writer thread.
pub(crate) type RxSlot = Arc<Mutex<Option<mpsc::Receiver<AuditCmd>>>>;

/// Creates the channel with the default rotation.
pub fn channel(path: PathBuf) -> (AuditHandle, AuditArgs) {
    channel_with(path, Rotation::default())
}

/// Creates the channel: the handle for producers and the slot for the writer, which
/// rotates per `rotation`.
pub fn channel_with(path: PathBuf, rotation: Rotation) -> (AuditHandle, AuditArgs) {
    let (tx, rx) = mpsc::channel(AUDIT_QUEUE);
    let stats = Arc::new(AuditStats::default());
    let handle = AuditHandle {
        tx,
        stats: stats.clone(),
        path: Arc::new(path.clone()),
        trace: Arc::default(),
    };
    let args = AuditArgs {
        path,
        rotation,
        rx: Arc::new(Mutex::new(Some(rx))),
        stats,
        tx: handle.tx.clone(),
    };
    (handle, args)
}

// === impl AuditEvent ===

impl AuditEvent {
    /// Notes the event for its connection's trace (`openclaw trace`).
    fn trace(&self, t: &crate::trace::TraceControl) {
        if let Some(c) = self.get("connId").and_then(Value::as_str) {
            t.note(c, || format!("actor=audit event={}", self.event));
        }
    }

    /// A new event with no fields (only the constructors in [`events`] call this).
    fn new(event: &'static str) -> Self {
        Self {
            event,
            fields: Vec::with_capacity(8),
        }
    }

    /// Adds a field (replacing one of the same name).
    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        let value = value.into();
        match self.fields.binary_search_by(|(k, _)| (*k).cmp(key)) {
            Ok(i) => self.fields[i].1 = value,
            Err(i) => self.fields.insert(i, (key, value)),
        }
        self
    }

    /// A field's value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields
            .binary_search_by(|(k, _)| (*k).cmp(key))
            .ok()
            .map(|i| &self.fields[i].1)
    }

    /// The fields, sorted by name.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.fields.iter().map(|(k, v)| (*k, v))
    }
}

// === impl AuditHandle ===

impl AuditHandle {
    /// Queues an event, waiting while the queue is full (back-pressure, never a drop).
    pub async fn record(&self, ev: AuditEvent) {
        ev.trace(&self.trace);
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(AuditCmd::Event(ev)).await.is_err() {
            tracing::error!("audit channel closed: event lost");
        }
    }

    /// For synchronous contexts (`Drop`): queues now if there is room, else hands the event
    /// to a task that waits for room. Must run inside the tokio runtime.
    pub fn record_detached(&self, ev: AuditEvent) {
        ev.trace(&self.trace);
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(AuditCmd::Event(ev)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(cmd)) => {
                let tx = self.tx.clone();
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        let _ = tx.send(cmd).await;
                    });
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("audit channel closed: event lost")
            }
        }
    }

    /// Waits until every event queued before this call is written and synced.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let (ack, done) = oneshot::channel();
        if self.tx.send(AuditCmd::Flush(ack)).await.is_err() {
            return false;
        }
        matches!(tokio::time::timeout(timeout, done).await, Ok(Ok(())))
    }

    /// Whether everything queued before this call is on disk: `false` at once while the log
    /// is failing, else the outcome of the writer's next attempt (`false` if it fails: full
    /// disk, I/O error), or `false` after [`AUDIT_SYNC_TIMEOUT`] (a hung disk, a writer that
    /// cannot start). Gates answers that must not go out unaudited: a login's hello-ok waits
    /// for its `auth.ok`.
    ///
    /// The answer is awaited on a oneshot (no thread hand-off per login: issue 15). The
    /// timeout is wall-clock time: when tokio's timer says it has passed, a paused test clock
    /// may have jumped there while the writer thread was still syncing, so the rest is
    /// waited out on the wall clock before giving up.
    pub async fn durable(&self) -> bool {
        if self.stats.failing() {
            return false;
        }
        let started = std::time::Instant::now();
        let (ack, mut done) = oneshot::channel();
        if self.tx.send(AuditCmd::Sync(ack)).await.is_err() {
            return false;
        }
        if let Ok(answer) = tokio::time::timeout(AUDIT_SYNC_TIMEOUT, &mut done).await {
            return answer.unwrap_or(false);
        }
        while started.elapsed() < AUDIT_SYNC_TIMEOUT {
            match done.try_recv() {
                Ok(answer) => return answer,
                Err(oneshot::error::TryRecvError::Closed) => return false,
                Err(oneshot::error::TryRecvError::Empty) => {
                    // A real 10 ms, whatever the test clock does.
                    let nap = std::time::Duration::from_millis(10);
                    let _ = tokio::task::spawn_blocking(move || std::thread::sleep(nap)).await;
                }
            }
        }
        done.try_recv().unwrap_or(false)
    }

    /// Events written so far.
    pub fn written(&self) -> u64 {
        self.stats.written.load(Ordering::Relaxed)
    }

    /// Fail closed: while the log cannot be written, the body of the 503 that refuses a new
    /// connection (counted; logged at the first refusal and then at each power of two).
    pub fn refusal(&self, peer: std::net::SocketAddr) -> Option<String> {
        if !self.stats.failing() {
            return None;
        }
        let n = self.stats.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(%peer, refused = n, path = %self.path.display(),
                "upgrade refused: the audit log cannot be written");
        }
        Some(format!(
            "audit log cannot be written ({}): refusing new connections until it can; \
             check disk space and permissions\n",
            self.path.display()
        ))
    }
}

// === the actor ===

/// Owns the writer thread.
pub struct AuditLoggerActor;

/// Start-up arguments (cloned into each restart).
#[derive(Clone)]
pub struct AuditArgs {
    path: PathBuf,
    rotation: Rotation,
    rx: RxSlot,
    stats: Arc<AuditStats>,
    tx: mpsc::Sender<AuditCmd>,
}

/// Messages to the audit logger.
pub enum AuditMsg {
    /// Periodic check that the writer thread is alive; a dead writer fails the actor so the
    /// supervisor restarts it (and the writer with it).
    Check,
}

/// State: the writer thread.
pub struct AuditState {
    writer: Option<JoinHandle<()>>,
    args: AuditArgs,
}

/// Reference to the audit logger.
pub type AuditRef = ActorRef<AuditMsg>;

/// Starts the audit logger linked to `supervisor`.
pub async fn spawn(args: AuditArgs, supervisor: ActorCell) -> Result<AuditRef, ractor::SpawnErr> {
    Ok(
        Actor::spawn_linked(None, AuditLoggerActor, args, supervisor)
            .await?
            .0,
    )
}

impl AuditMsg {
    /// Message kind for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditMsg::Check => "Check",
        }
    }
}

impl Actor for AuditLoggerActor {
    type Msg = AuditMsg;
    type State = AuditState;
    type Arguments = AuditArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<AuditMsg>,
        args: AuditArgs,
    ) -> Result<AuditState, ActorProcessingErr> {
        let (path, slot, stats) = (args.path.clone(), args.rx.clone(), args.stats.clone());
        let rotation = args.rotation;
        let writer = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer::run(path, rotation, slot, stats))?;
        myself.send_interval(Duration::from_secs(1), || AuditMsg::Check);
        Ok(AuditState {
            writer: Some(writer),
            args,
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<AuditMsg>,
        msg: AuditMsg,
        state: &mut AuditState,
    ) -> Result<(), ActorProcessingErr> {
        tracing::trace!(actor = "audit", msg = msg.kind(), "message");
        match msg {
            AuditMsg::Check => {
                if state.writer.as_ref().is_none_or(|w| w.is_finished()) {
                    return Err("audit writer thread exited".into());
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _me: ActorRef<AuditMsg>,
        state: &mut AuditState,
    ) -> Result<(), ActorProcessingErr> {
        // Drain and sync everything queued so far.
        let (ack, done) = oneshot::channel();
        if state.args.tx.send(AuditCmd::Flush(ack)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(10), done).await;
        }
        Ok(())
    }
}
