//! The audit writer thread: drains the channel in batches, writes JSON lines with
//! `O_APPEND`, fsyncs once per batch (group commit), rotates at a batch boundary (see
//! [`super::rotate`]), and on start recovers the sequence number and removes a partial last
//! line left by a crash. A failed write is cut back to the last good length and retried with
//! the same `seq`s, so nothing is lost, repeated or torn ([`super::commit`] decides how).
//! `Sync` waiters hear the outcome of each attempt; `Flush` waiters only of success.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::commit::{complete_len, prepare, Prepare};
use super::rotate::{self, numbered, Rotation, Step};
use super::{AuditCmd, AuditEvent, AuditStats, RxSlot, AUDIT_BATCH};
use crate::shared::{lock, now_ms};

/// Pause before retrying a failed write.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// The current file and where it stands.
struct Sink {
    path: PathBuf,
    rotation: Rotation,
    file: File,
    /// Bytes of the current file known to be written; a failed batch is cut back to this.
    len: u64,
    /// Where the current file's first byte sits in the whole log.
    base: u64,
    /// The current file is new after a rotation and must start with this line.
    header: Option<AuditEvent>,
    /// A write failed: cut the file back to `len` before the next one.
    dirty: bool,
}

/// The last `seq` in `path` (`None`: no complete line), removing a partial last line when
/// `repair`. Returns (last seq, whether a partial line was removed).
fn last_seq(path: &Path, repair: bool) -> std::io::Result<(Option<u64>, bool)> {
    let mut f = match OpenOptions::new().read(true).write(repair).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, false)),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let start = len.saturating_sub(64 * 1024);
    f.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail)?;
    let mut truncated = false;
    let complete = complete_len(&tail);
    if repair && complete < tail.len() {
        f.set_len(start + complete as u64)?;
        truncated = true;
    }
    let last = tail[..complete]
        .split(|b| *b == b'\n')
        .rfind(|l| !l.is_empty())
        .and_then(|l| serde_json::from_slice::<Value>(l).ok())
        .and_then(|v| v.get("seq").and_then(Value::as_u64));
    Ok((last, truncated))
}

/// Reads the last `seq` (in the current file, or in `.1` when the current one is new or
/// missing after a rotation) and truncates a partial last line left by a crash. Returns
/// (next seq, whether a partial line was removed).
fn recover(path: &Path) -> std::io::Result<(u64, bool)> {
    let (last, truncated) = last_seq(path, true)?;
    let last = match last {
        Some(s) => Some(s),
        None => last_seq(&numbered(path, 1), false)?.0,
    };
    Ok((last.unwrap_or(0) + 1, truncated))
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

/// Finishes a rotation a crash cut short between its renames ([`rotate::finish_plan`]):
/// until then, the files above the missing number are invisible to readers. Runs at start,
/// after the current file's torn tail is repaired. `true` when there was one to finish.
fn finish_rotation(path: &Path) -> std::io::Result<bool> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(false);
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut present: Vec<usize> = Vec::new();
    if path.exists() {
        present.push(0);
    }
    for entry in entries {
        let file = entry?.file_name();
        let n = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .filter(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<usize>().ok());
        if let Some(n @ 1..) = n {
            present.push(n);
        }
    }
    let steps = rotate::finish_plan(&present);
    for step in &steps {
        if let Step::Rename(a, b) = *step {
            std::fs::rename(numbered(path, a), numbered(path, b))?;
        }
    }
    if steps.is_empty() {
        return Ok(false);
    }
    sync_dir(path)?;
    tracing::warn!(path = %path.display(), renames = steps.len(), "finished an audit log rotation a crash had cut short");
    Ok(true)
}

/// Makes renames and new files in `path`'s directory durable.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

/// Appends `ev` as one JSON line: its fields and `event`, `seq`, `ts`, keys in sorted order
/// (as a `serde_json::Map` would give them; a field named like one of the three wins),
/// serialized in place: no copy of the fields, no `Value` tree per line.
fn write_line(out: &mut Vec<u8>, ev: &AuditEvent, seq: u64, ts: i64) {
    enum Own<'a> {
        Str(&'a str),
        U(u64),
        I(i64),
    }
    let own = [
        ("event", Own::Str(ev.event)),
        ("seq", Own::U(seq)),
        ("ts", Own::I(ts)),
    ];
    let mut own = own.iter().peekable();
    let mut fields = ev.fields().peekable();
    let mut first = true;
    loop {
        // The smaller key goes next; on a tie the field wins and ours is skipped.
        let take_own = match (own.peek(), fields.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((k, _)), Some((f, _))) => {
                if k == f {
                    own.next();
                    continue;
                }
                k < f
            }
        };
        out.push(if first { b'{' } else { b',' });
        first = false;
        if take_own {
            let Some((k, v)) = own.next() else { break };
            let _ = serde_json::to_writer(&mut *out, k);
            out.push(b':');
            let _ = match v {
                Own::Str(s) => serde_json::to_writer(&mut *out, s),
                Own::U(n) => serde_json::to_writer(&mut *out, n),
                Own::I(n) => serde_json::to_writer(&mut *out, n),
            };
        } else {
            let Some((k, v)) = fields.next() else { break };
            let _ = serde_json::to_writer(&mut *out, k);
            out.push(b':');
            let _ = serde_json::to_writer(&mut *out, v);
        }
    }
    if first {
        out.push(b'{');
    }
    out.extend_from_slice(b"}\n");
}

/// The lines of `header` (if any) then `events`, numbered from `seq`.
fn lines<'a>(header: Option<&'a AuditEvent>, events: &'a [AuditEvent], seq: u64) -> Vec<u8> {
    let mut batch = Vec::with_capacity(events.len() * 160 + 160);
    for (i, ev) in header.into_iter().chain(events).enumerate() {
        write_line(&mut batch, ev, seq + i as u64, now_ms());
    }
    batch
}

// === impl Sink ===

impl Sink {
    /// Opens the current file; a new file after a rotation gets its `audit.rotated` line
    /// with the next batch.
    fn open(path: PathBuf, rotation: Rotation, next_seq: u64) -> std::io::Result<Sink> {
        let segs = super::read::segments(&path)?;
        let file = open_append(&path)?;
        let len = file.metadata()?.len();
        let current = segs.iter().find(|s| s.path == path).map(|s| s.base);
        let rotated_end = segs
            .iter()
            .rfind(|s| s.path != path)
            .map(|s| s.base + s.size);
        let (base, header) = match (len, current, rotated_end) {
            (0, _, Some(end)) => (end, Some(rotated_header(&path, next_seq, end))),
            (_, Some(base), _) => (base, None),
            _ => (0, None),
        };
        Ok(Sink {
            path,
            rotation,
            file,
            len,
            base,
            header,
            dirty: false,
        })
    }

    /// Writes and syncs `events` numbered from `seq`, rotating first when due. Returns the
    /// lines written (the events and a rotation line).
    fn write(
        &mut self,
        events: &[AuditEvent],
        seq: u64,
        stats: &AuditStats,
    ) -> std::io::Result<u64> {
        if self.dirty {
            self.cut_back()?;
        }
        let mut batch = lines(self.header.as_ref(), events, seq);
        if self.header.is_none() && self.rotation.due(self.len, batch.len() as u64) {
            self.rotate(seq)?;
            stats.rotations.fetch_add(1, Ordering::Relaxed);
            batch = lines(self.header.as_ref(), events, seq);
        }
        self.dirty = true;
        self.file.write_all(&batch)?;
        self.file.sync_data()?;
        self.dirty = false;
        self.len += batch.len() as u64;
        let n = events.len() as u64 + u64::from(self.header.take().is_some());
        Ok(n)
    }

    /// Removes what a failed write may have left after `len` (see [`super::commit`]). The
    /// file is opened `O_APPEND`, so the next write goes to the new end.
    fn cut_back(&mut self) -> std::io::Result<()> {
        match prepare(self.len, self.file.metadata()?.len()) {
            Prepare::Append => {}
            Prepare::CutBack(to) => {
                self.file.set_len(to)?;
                self.file.sync_data()?;
            }
            Prepare::Adopt(len) => self.len = len,
        }
        self.dirty = false;
        Ok(())
    }

    /// Shifts the rotated files, moves the current one to `.1` and opens a fresh one whose
    /// first line (written with the next batch, numbered `seq`) is `audit.rotated`.
    fn rotate(&mut self, seq: u64) -> std::io::Result<()> {
        // After a partial earlier attempt the current file may already be `.1`.
        if self.path.exists() {
            let mut rotated = 0;
            while numbered(&self.path, rotated + 1).exists() {
                rotated += 1;
            }
            for step in self.rotation.plan(rotated) {
                match step {
                    Step::Remove(n) => std::fs::remove_file(numbered(&self.path, n))?,
                    Step::Rename(a, b) => {
                        std::fs::rename(numbered(&self.path, a), numbered(&self.path, b))?
                    }
                }
            }
        }
        let file = open_append(&self.path)?;
        sync_dir(&self.path)?;
        let base = self.base + self.len;
        tracing::info!(path = %self.path.display(), seq, offset = base, "audit log rotated");
        self.header = Some(rotated_header(&self.path, seq, base));
        self.file = file;
        self.base = base;
        self.len = 0;
        Ok(())
    }
}

/// The first line of a file started by a rotation at `offset`, before `next_seq`.
fn rotated_header(path: &Path, next_seq: u64, offset: u64) -> AuditEvent {
    let old = numbered(path, 1);
    let name = old
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    AuditEvent::audit_rotated(&name, next_seq.saturating_sub(1), offset)
}

/// Who waits for the batch being written: `Flush` until it is on disk, `Sync` for the
/// outcome of the next attempt.
#[derive(Default)]
struct Waiting {
    flushes: Vec<tokio::sync::oneshot::Sender<()>>,
    syncs: Vec<tokio::sync::oneshot::Sender<bool>>,
}

impl Waiting {
    /// Files a command: an event joins the batch, a waiter joins this list.
    fn take(&mut self, cmd: AuditCmd, pending: &mut Vec<AuditEvent>) {
        match cmd {
            AuditCmd::Event(e) => pending.push(e),
            AuditCmd::Flush(a) => self.flushes.push(a),
            AuditCmd::Sync(a) => self.syncs.push(a),
        }
    }

    /// The batch is on disk: everyone hears so.
    fn written(&mut self) {
        for a in self.flushes.drain(..) {
            let _ = a.send(());
        }
        for a in self.syncs.drain(..) {
            let _ = a.send(true);
        }
    }

    /// An attempt failed: `Sync` waiters hear it now, `Flush` waiters wait for the retry.
    fn failed(&mut self) {
        for a in self.syncs.drain(..) {
            let _ = a.send(false);
        }
    }
}

/// Marks the audit log unwritable (`/readyz` fails, new connections are refused).
fn failed(stats: &AuditStats, path: &Path, what: &str, e: &std::io::Error) {
    stats.write_errors.fetch_add(1, Ordering::Relaxed);
    stats.last_error_ms.store(now_ms(), Ordering::Relaxed);
    tracing::error!(path = %path.display(), error = %e, "{what}");
}

/// The writer loop. Runs until every sender is gone.
pub(super) fn run(path: PathBuf, rotation: Rotation, slot: RxSlot, stats: Arc<AuditStats>) {
    let mut guard = lock(&slot);
    let Some(rx) = guard.as_mut() else { return };
    let (mut seq, recovered) = match recover(&path) {
        Ok(r) => r,
        Err(e) => {
            failed(&stats, &path, "cannot read the audit log tail", &e);
            return;
        }
    };
    if let Err(e) = finish_rotation(&path) {
        failed(
            &stats,
            &path,
            "cannot finish an interrupted audit log rotation",
            &e,
        );
        std::thread::sleep(RETRY_PAUSE);
        return;
    }
    let mut sink = match Sink::open(path.clone(), rotation, seq) {
        Ok(s) => s,
        Err(e) => {
            // The actor notices the exit and restarts the writer; until then it is failing.
            failed(&stats, &path, "cannot open the audit log", &e);
            std::thread::sleep(RETRY_PAUSE);
            return;
        }
    };
    let mut pending: Vec<AuditEvent> = Vec::new();
    if recovered {
        pending.push(AuditEvent::audit_recovered());
    }
    let mut waiting = Waiting::default();
    loop {
        if pending.is_empty() {
            match rx.blocking_recv() {
                Some(cmd) => waiting.take(cmd, &mut pending),
                None => break,
            }
        }
        while pending.len() < AUDIT_BATCH {
            match rx.try_recv() {
                Ok(cmd) => waiting.take(cmd, &mut pending),
                Err(_) => break,
            }
        }
        if pending.is_empty() {
            // Only waiters: whatever was queued before them was taken into an earlier batch,
            // and that batch is on disk (a failed one keeps its events in `pending`). No
            // write, no sync: concurrent logins share the fsync of their events' batch.
            waiting.written();
            continue;
        }
        let t0 = std::time::Instant::now();
        let res = sink.write(&pending, seq, &stats);
        let took = t0.elapsed().as_nanos() as u64;
        stats.batch_ns.fetch_add(took, Ordering::Relaxed);
        match res {
            Ok(lines) => {
                stats.batches.fetch_add(1, Ordering::Relaxed);
                stats.last_ok_ms.store(now_ms(), Ordering::Relaxed);
                seq += lines;
                stats
                    .written
                    .fetch_add(pending.len() as u64, Ordering::Relaxed);
                pending.clear();
                waiting.written();
            }
            Err(e) => {
                // Keep the events and retry with the same seqs (the next attempt first cuts
                // this one back): audit never drops silently.
                failed(&stats, &path, "audit write failed; retrying", &e);
                waiting.failed();
                std::thread::sleep(RETRY_PAUSE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer thread on `p`; only the returned handle keeps its channel open, so the
    /// thread ends once the handle (and its clones) are dropped.
    fn start_writer(
        p: &Path,
        rot: Rotation,
    ) -> (crate::audit::AuditHandle, std::thread::JoinHandle<()>) {
        let (h, args) = channel(p.to_path_buf());
        let AuditArgs {
            path,
            rx,
            stats,
            tx,
            ..
        } = args;
        drop(tx);
        (h, std::thread::spawn(move || run(path, rot, rx, stats)))
    }
    use crate::audit::{channel, AuditArgs};

    /// A scratch directory for one test (removed if left from an earlier run, not created)
    /// and the log path in it.
    fn scratch(tag: &str) -> (PathBuf, PathBuf) {
        let d = std::env::temp_dir().join(format!("oc-audit-{tag}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let p = d.join("audit.jsonl");
        (d, p)
    }

    /// 4 KiB files, none dropped: many rotations from few events.
    const SMALL_FILES: Rotation = Rotation {
        max_bytes: 4096,
        keep: 1000,
    };

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn recover_truncates_partial_line_and_continues_seq() {
        let (d, p) = scratch("");
        std::fs::create_dir_all(&d).unwrap();
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
    fn a_rotation_cut_short_by_a_crash_is_finished_at_start() {
        let (d, p) = scratch("cut-");
        let rot = SMALL_FILES;
        let rt = current_thread();
        let write = |n: u64| {
            let (h, t) = start_writer(&p, rot);
            rt.block_on(async {
                for i in 0..n {
                    h.record(AuditEvent::new("test").with("i", i)).await;
                    if i % 20 == 19 {
                        assert!(h.flush(Duration::from_secs(30)).await);
                    }
                }
                assert!(h.flush(Duration::from_secs(30)).await);
            });
            drop(h);
            t.join().unwrap();
        };
        let seqs = || -> Vec<u64> {
            let mut out = Vec::new();
            for s in crate::audit::read::segments(&p).unwrap() {
                for l in std::fs::read_to_string(&s.path).unwrap().lines() {
                    let v: Value = serde_json::from_str(l).unwrap();
                    out.push(v["seq"].as_u64().unwrap());
                }
            }
            out
        };
        write(600); // ~55-byte lines in 4 KiB files: ~8 rotated files (200 gave 2-3)
        let rotated = (1..).take_while(|&n| numbered(&p, n).exists()).count();
        assert!(rotated >= 3, "{rotated}");
        let before = seqs();
        // The crash: a rotation's renames ran from the oldest down to `.1 → .2`, and the
        // process died before `audit.jsonl → .1`.
        for n in (1..=rotated).rev() {
            std::fs::rename(numbered(&p, n), numbered(&p, n + 1)).unwrap();
        }
        assert!(!numbered(&p, 1).exists());
        assert!(finish_rotation(&d.join("none.jsonl")).is_ok_and(|done| !done));
        write(10);
        assert!(numbered(&p, 1).exists(), "the current file became .1");
        let after = seqs();
        assert_eq!(
            &after[..before.len()],
            &before[..],
            "nothing above the gap went missing"
        );
        let want: Vec<u64> = (1..=after.len() as u64).collect();
        assert_eq!(after, want, "gapless across the finished rotation");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn rotation_keeps_seq_gapless_across_files_and_restarts() {
        use std::os::unix::fs::PermissionsExt;
        let (d, p) = scratch("rot-");
        let rot = SMALL_FILES;
        let rt = current_thread();
        const N: u64 = 3_000;
        for run_no in 0..2u64 {
            let (h, t) = start_writer(&p, rot);
            rt.block_on(async {
                for i in 0..N {
                    h.record(AuditEvent::new("test").with("i", i).with("run", run_no))
                        .await;
                    if i % 20 == 19 {
                        // small batches: many rotations, each file within maxBytes
                        assert!(h.flush(Duration::from_secs(30)).await);
                    }
                }
                assert!(h.flush(Duration::from_secs(30)).await);
            });
            assert_eq!(h.written(), N);
            assert!(h.stats.rotations.load(Ordering::Relaxed) > 10);
            drop(h);
            t.join().unwrap();
        }
        let segs = crate::audit::read::segments(&p).unwrap();
        assert!(segs.len() > 20, "{}", segs.len());
        let mut seqs = Vec::new();
        let mut tests = 0;
        for s in &segs {
            let mode = std::fs::metadata(&s.path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", s.path.display());
            assert!(
                s.size <= 4096 || s.path == p,
                "{} is {}",
                s.path.display(),
                s.size
            );
            let text = std::fs::read_to_string(&s.path).unwrap();
            for (i, l) in text.lines().enumerate() {
                let v: Value = serde_json::from_str(l).unwrap();
                if i == 0 && s.base > 0 {
                    assert_eq!(v["event"], "audit.rotated", "{l}");
                    assert_eq!(v["offset"], s.base);
                    assert_eq!(
                        v["lastSeq"].as_u64().unwrap() + 1,
                        v["seq"].as_u64().unwrap()
                    );
                }
                tests += u64::from(v["event"] == "test");
                seqs.push(v["seq"].as_u64().unwrap());
            }
        }
        assert_eq!(tests, 2 * N);
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "gapless");
        assert_eq!(seqs[0], 1);
        let all = crate::audit::read::tail(
            &p,
            crate::session::logtail::TailParams {
                cursor: Some(0),
                limit: 5000,
                max_bytes: 1_000_000,
            },
        )
        .unwrap();
        assert_eq!(all["lines"].as_array().unwrap().len(), seqs.len().min(5000));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn lines_match_a_sorted_map_serialization() {
        // The reference: the fields plus event/seq/ts in one Map (fields win), serialized.
        fn reference(ev: &AuditEvent, seq: u64, ts: i64) -> Vec<u8> {
            let mut m = serde_json::Map::new();
            m.insert("ts".into(), Value::from(ts));
            m.insert("seq".into(), Value::from(seq));
            m.insert("event".into(), Value::from(ev.event));
            for (k, v) in ev.fields() {
                m.insert(k.to_string(), v.clone());
            }
            let mut out = serde_json::to_vec(&Value::Object(m)).unwrap();
            out.push(b'\n');
            out
        }
        let cases = [
            AuditEvent::new("conn.open"),
            AuditEvent::new("auth.ok")
                .with("peer", "127.0.0.1:5")
                .with("scopes", serde_json::json!(["a", "b\"c"]))
                .with("zz", 1),
            AuditEvent::new("x")
                .with("a", 1)
                .with("f", 2)
                .with("r", 3)
                .with("u", 4),
            AuditEvent::new("clash")
                .with("seq", "mine")
                .with("ts", Value::Null)
                .with("event", "e"),
            AuditEvent::new("unicode").with("é", "\u{1F600}\n"),
        ];
        for ev in &cases {
            let mut got = Vec::new();
            write_line(&mut got, ev, 42, 1_700_000_000_123);
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(reference(ev, 42, 1_700_000_000_123)).unwrap()
            );
        }
    }

    #[test]
    fn sync_waiters_hear_each_attempt_and_flush_waiters_only_success() {
        let (sync, mut heard) = tokio::sync::oneshot::channel();
        let (flush, mut flushed) = tokio::sync::oneshot::channel();
        let (mut w, mut pending) = (Waiting::default(), Vec::new());
        w.take(AuditCmd::Sync(sync), &mut pending);
        w.take(AuditCmd::Flush(flush), &mut pending);
        w.take(AuditCmd::Event(AuditEvent::new("test")), &mut pending);
        assert_eq!(pending.len(), 1);
        w.failed();
        assert_eq!(heard.try_recv(), Ok(false));
        assert!(flushed.try_recv().is_err(), "a flush waits for the retry");
        w.written();
        assert!(flushed.try_recv().is_ok());
    }

    #[test]
    fn durable_means_the_event_is_on_disk() {
        let (d, p) = scratch("d-");
        let (h, t) = start_writer(&p, Rotation::default());
        let rt = current_thread();
        rt.block_on(async {
            h.record(AuditEvent::new("test").with("i", 1)).await;
            assert!(h.durable().await);
            assert!(std::fs::read_to_string(&p).unwrap().contains("\"i\":1"));
            // Nothing new queued: the answer needs no write and no fsync (a login shares the
            // sync of its event's batch instead of costing one of its own).
            let batches = h.stats.batches.load(Ordering::Relaxed);
            for _ in 0..3 {
                assert!(h.durable().await);
            }
            assert_eq!(h.stats.batches.load(Ordering::Relaxed), batches);
            h.record(AuditEvent::new("test").with("i", 2)).await;
            assert!(h.durable().await);
            assert_eq!(h.stats.batches.load(Ordering::Relaxed), batches + 1);
        });
        drop(h);
        t.join().unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn writer_loses_nothing_under_a_full_queue() {
        let (d, p) = scratch("w-");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (h, t) = start_writer(&p, Rotation::default());
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
