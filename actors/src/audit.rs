//! The audit log: JSON lines at `<stateDir>/logs/audit.jsonl` that lose nothing.
//!
//! Producers hold an [`AuditHandle`] and `send().await` into a **bounded** channel, so a slow
//! disk pushes back instead of dropping (a ractor mailbox is unbounded, an output port is
//! lossy: neither carries audit events). A dedicated OS thread drains the channel in batches,
//! writes with `O_APPEND`, and fsyncs once per batch (group commit). The [`AuditLoggerActor`]
//! owns that thread: it starts it, watches it, restarts it after a crash (the receiver is
//! kept in a slot that survives the thread), and drains and syncs it on shutdown.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::shared::{lock, now_ms};

/// Capacity of the audit channel (events waiting for the writer).
pub const AUDIT_QUEUE: usize = 16_384;
/// Most events written per batch (one fsync each).
pub const AUDIT_BATCH: usize = 1_024;
/// Registered name of the audit logger actor.
pub const NAME: &str = "openclaw.audit";

/// One audit record: an event name and its fields. `ts` and `seq` are added by the writer.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// e.g. `conn.open`, `auth.ok`, `auth.fail`.
    pub event: &'static str,
    /// Structured fields. Never a secret.
    pub fields: Map<String, Value>,
}

/// What travels on the audit channel.
#[derive(Debug)]
pub enum AuditCmd {
    /// Write this event.
    Event(AuditEvent),
    /// Reply once everything queued before is on disk.
    Flush(oneshot::Sender<()>),
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
}

/// Cheap, clonable producer side.
#[derive(Debug, Clone)]
pub struct AuditHandle {
    tx: mpsc::Sender<AuditCmd>,
    /// Counters.
    pub stats: Arc<AuditStats>,
    /// The audit file.
    pub path: Arc<PathBuf>,
}

/// The receiving side, kept in a slot that outlives any one writer thread.
type RxSlot = Arc<Mutex<Option<mpsc::Receiver<AuditCmd>>>>;

/// Creates the channel: the handle for producers and the slot for the writer.
pub fn channel(path: PathBuf) -> (AuditHandle, AuditArgs) {
    let (tx, rx) = mpsc::channel(AUDIT_QUEUE);
    let stats = Arc::new(AuditStats::default());
    let handle = AuditHandle {
        tx,
        stats: stats.clone(),
        path: Arc::new(path.clone()),
    };
    let args = AuditArgs {
        path,
        rx: Arc::new(Mutex::new(Some(rx))),
        stats,
        tx: handle.tx.clone(),
    };
    (handle, args)
}

// === impl AuditEvent ===

impl AuditEvent {
    /// A new event with no fields.
    pub fn new(event: &'static str) -> Self {
        Self {
            event,
            fields: Map::new(),
        }
    }

    /// Adds a field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_string(), value.into());
        self
    }
}

// === impl AuditHandle ===

impl AuditHandle {
    /// Queues an event, waiting while the queue is full (back-pressure, never a drop).
    pub async fn record(&self, ev: AuditEvent) {
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(AuditCmd::Event(ev)).await.is_err() {
            tracing::error!("audit channel closed: event lost");
        }
    }

    /// For synchronous contexts (`Drop`): queues now if there is room, else hands the event
    /// to a task that waits for room. Must run inside the tokio runtime.
    pub fn record_detached(&self, ev: AuditEvent) {
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

    /// Events written so far.
    pub fn written(&self) -> u64 {
        self.stats.written.load(Ordering::Relaxed)
    }
}

// === the writer thread ===

/// Reads the last `seq` in an existing file and truncates a partial last line left by a
/// crash. Returns (next seq, whether a partial line was removed).
fn recover(path: &Path) -> std::io::Result<(u64, bool)> {
    let mut f = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((1, false)),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let start = len.saturating_sub(64 * 1024);
    f.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail)?;
    let mut truncated = false;
    let complete = match tail.iter().rposition(|b| *b == b'\n') {
        Some(i) => i + 1,
        None => 0,
    };
    if complete < tail.len() {
        f.set_len(start + complete as u64)?;
        truncated = true;
    }
    let last_seq = tail[..complete]
        .split(|b| *b == b'\n')
        .rfind(|l| !l.is_empty())
        .and_then(|l| serde_json::from_slice::<Value>(l).ok())
        .and_then(|v| v.get("seq").and_then(Value::as_u64))
        .unwrap_or(0);
    Ok((last_seq + 1, truncated))
}

fn open_append(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        crate::state::ensure_private_dir(dir)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

fn line(ev: &AuditEvent, seq: u64) -> Vec<u8> {
    let mut m = Map::with_capacity(ev.fields.len() + 3);
    m.insert("ts".into(), Value::from(now_ms()));
    m.insert("seq".into(), Value::from(seq));
    m.insert("event".into(), Value::from(ev.event));
    for (k, v) in &ev.fields {
        m.insert(k.clone(), v.clone());
    }
    let mut out = serde_json::to_vec(&Value::Object(m)).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The writer loop. Runs until every sender is gone.
fn writer(path: PathBuf, slot: RxSlot, stats: Arc<AuditStats>) {
    let mut guard = lock(&slot);
    let Some(rx) = guard.as_mut() else { return };
    let (mut seq, recovered) = match recover(&path) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot read the audit log tail");
            (1, false)
        }
    };
    let file = match open_append(&path) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot open the audit log");
            return;
        }
    };
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    let mut pending: Vec<AuditEvent> = Vec::new();
    if recovered {
        pending.push(
            AuditEvent::new("audit.recovered")
                .with("note", "partial last line removed after a crash"),
        );
    }
    let mut acks = Vec::new();
    loop {
        if pending.is_empty() {
            match rx.blocking_recv() {
                Some(AuditCmd::Event(e)) => pending.push(e),
                Some(AuditCmd::Flush(a)) => acks.push(a),
                None => break,
            }
        }
        while pending.len() < AUDIT_BATCH {
            match rx.try_recv() {
                Ok(AuditCmd::Event(e)) => pending.push(e),
                Ok(AuditCmd::Flush(a)) => acks.push(a),
                Err(_) => break,
            }
        }
        let mut batch = Vec::with_capacity(pending.len() * 160);
        for (i, ev) in pending.iter().enumerate() {
            batch.extend_from_slice(&line(ev, seq + i as u64));
        }
        let res = out
            .write_all(&batch)
            .and_then(|_| out.flush())
            .and_then(|_| out.get_ref().sync_data());
        match res {
            Ok(()) => {
                seq += pending.len() as u64;
                stats
                    .written
                    .fetch_add(pending.len() as u64, Ordering::Relaxed);
                pending.clear();
                for a in acks.drain(..) {
                    let _ = a.send(());
                }
            }
            Err(e) => {
                // Keep the events and retry: audit never drops silently.
                stats.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(path = %path.display(), error = %e, "audit write failed; retrying");
                std::thread::sleep(Duration::from_millis(200));
                if let Ok(f) = open_append(&path) {
                    out = BufWriter::with_capacity(64 * 1024, f);
                }
            }
        }
    }
}

// === the actor ===

/// Owns the writer thread.
pub struct AuditLoggerActor;

/// Start-up arguments (cloned into each restart).
#[derive(Clone)]
pub struct AuditArgs {
    path: PathBuf,
    rx: RxSlot,
    stats: Arc<AuditStats>,
    tx: mpsc::Sender<AuditCmd>,
}

/// Messages to the audit logger.
pub enum AuditMsg {
    /// Periodic check that the writer thread is alive; a dead writer fails the actor so the
    /// supervisor restarts it (and the writer with it).
    Check,
    /// Reply when all queued events are on disk.
    Flush {
        /// Answer: `true` when flushed in time.
        reply_to: RpcReplyPort<bool>,
    },
}

/// State: the writer thread.
pub struct AuditState {
    writer: Option<JoinHandle<()>>,
    args: AuditArgs,
}

/// Reference to the audit logger.
pub type AuditRef = ActorRef<AuditMsg>;

impl AuditMsg {
    /// Message kind for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditMsg::Check => "Check",
            AuditMsg::Flush { .. } => "Flush",
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
        let writer = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer(path, slot, stats))?;
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
            AuditMsg::Flush { reply_to } => {
                let tx = state.args.tx.clone();
                tokio::spawn(async move {
                    let (ack, done) = oneshot::channel();
                    let ok = tx.send(AuditCmd::Flush(ack)).await.is_ok()
                        && matches!(
                            tokio::time::timeout(Duration::from_secs(10), done).await,
                            Ok(Ok(()))
                        );
                    let _ = reply_to.send(ok);
                });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recover_truncates_partial_line_and_continues_seq() {
        let d = std::env::temp_dir().join(format!("oc-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("audit.jsonl");
        std::fs::write(&p, "{\"seq\":1}\n{\"seq\":2}\n{\"seq\":3,\"ev").unwrap();
        assert_eq!(recover(&p).unwrap(), (3, true));
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"seq\":1}\n{\"seq\":2}\n"
        );
        assert_eq!(recover(&p).unwrap(), (3, false));
        assert_eq!(recover(&d.join("none")).unwrap(), (1, false));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn writer_loses_nothing_under_a_full_queue() {
        let d = std::env::temp_dir().join(format!("oc-audit-w-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let p = d.join("audit.jsonl");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (h, args) = channel(p.clone());
        let AuditArgs {
            path,
            rx,
            stats,
            tx,
        } = args;
        drop(tx); // the writer ends when the last sender (the handle) is gone
        let t = std::thread::spawn(move || writer(path, rx, stats));
        const N: u64 = 50_000; // > AUDIT_QUEUE: producers must wait, not drop
        rt.block_on(async {
            let mut tasks = Vec::new();
            for w in 0..4u64 {
                let h = h.clone();
                tasks.push(tokio::spawn(async move {
                    for i in 0..N / 4 {
                        h.record(AuditEvent::new("test").with("w", w).with("i", i))
                            .await;
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            assert!(h.flush(Duration::from_secs(30)).await);
        });
        assert_eq!(h.written(), N);
        drop(h);
        t.join().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let seqs: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(seqs.len() as u64, N);
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "seq must be gapless"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
