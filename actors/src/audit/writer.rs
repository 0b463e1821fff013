//! The audit writer thread: drains the channel in batches, writes JSON lines with
//! `O_APPEND`, fsyncs once per batch (group commit), and on start recovers the sequence
//! number and removes a partial last line left by a crash.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::{AuditCmd, AuditEvent, AuditStats, RxSlot, AUDIT_BATCH};
use crate::shared::{lock, now_ms};

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
pub(super) fn run(path: PathBuf, slot: RxSlot, stats: Arc<AuditStats>) {
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
        pending.push(AuditEvent::audit_recovered());
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
        let t0 = std::time::Instant::now();
        let res = out
            .write_all(&batch)
            .and_then(|_| out.flush())
            .and_then(|_| out.get_ref().sync_data());
        let took = t0.elapsed().as_nanos() as u64;
        stats.batch_ns.fetch_add(took, Ordering::Relaxed);
        match res {
            Ok(()) => {
                stats.batches.fetch_add(1, Ordering::Relaxed);
                stats
                    .last_ok_ms
                    .store(crate::shared::now_ms(), Ordering::Relaxed);
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
                stats
                    .last_error_ms
                    .store(crate::shared::now_ms(), Ordering::Relaxed);
                tracing::error!(path = %path.display(), error = %e, "audit write failed; retrying");
                std::thread::sleep(Duration::from_millis(200));
                if let Ok(f) = open_append(&path) {
                    out = BufWriter::with_capacity(64 * 1024, f);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{channel, AuditArgs};

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
        let t = std::thread::spawn(move || run(path, rx, stats));
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
