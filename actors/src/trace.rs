//! Per-connection live tracing (`openclaw trace`): while a trace is active, every actor
//! message that concerns one of its connections — the session's own messages, the rate-limit
//! check of each request, the Auth actor's decision, the node relay's messages and the audit
//! events of the connection — is noted into the trace's bounded buffer, whatever the log
//! filter says, and read back by `gateway.trace.read`. The notes are explicit calls at those
//! points ([`TraceControl::note`]): with no trace running each costs one atomic load, where a
//! tracing-subscriber per-layer filter cost a fifth of `health` throughput (measured). A trace
//! ends by itself after its time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::shared::lock;

/// Lines kept per trace (the oldest go first).
pub const MAX_LINES: usize = 10_000;
/// Traces at once.
pub const MAX_TRACES: usize = 8;
/// Longest trace.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// One active trace.
#[derive(Debug)]
struct Trace {
    conn_ids: HashSet<String>,
    lines: VecDeque<(u64, String)>,
    next: u64,
    until: Instant,
}

/// Active traces, written by the binary's tracing layer.
#[derive(Default)]
pub struct TraceControl {
    active: AtomicUsize,
    next_id: AtomicU64,
    traces: Mutex<HashMap<u64, Trace>>,
}

/// What `read` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// `(seq, line)` after the cursor.
    pub lines: Vec<(u64, String)>,
    /// The next cursor.
    pub next: u64,
    /// The trace ended (timed out); nothing more will come.
    pub done: bool,
}

impl std::fmt::Debug for TraceControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceControl")
            .field("active", &self.active.load(Ordering::Relaxed))
            .finish()
    }
}

impl TraceControl {
    /// Ends the traces whose time is up (a timer calls it; reads do too).
    pub fn expire(&self, now: Instant) {
        let mut t = lock(&self.traces);
        t.retain(|_, tr| tr.until > now || !tr.lines.is_empty());
        for tr in t.values_mut() {
            if tr.until <= now {
                tr.conn_ids.clear(); // keep unread lines, capture nothing more
            }
        }
        self.active.store(t.len(), Ordering::Relaxed);
    }

    /// Notes `line()` for `conn_id` if it is traced (one atomic load when nothing is).
    pub fn note(&self, conn_id: &str, line: impl FnOnce() -> String) {
        if self.any() && self.wants(conn_id) {
            let l = format!("{} conn={conn_id} {}", crate::shared::now_ms(), line());
            self.push(conn_id, &l, Instant::now());
        }
    }

    /// Whether any trace is active (the fast path).
    pub fn any(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }

    /// Starts a trace of `conn_ids` for `dur`; returns its id.
    pub fn start(
        &self,
        conn_ids: HashSet<String>,
        dur: Duration,
        now: Instant,
    ) -> Result<u64, String> {
        let mut t = lock(&self.traces);
        t.retain(|_, tr| tr.until > now);
        if t.len() >= MAX_TRACES {
            return Err(format!(
                "{MAX_TRACES} traces are already running; wait for one to end"
            ));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        t.insert(
            id,
            Trace {
                conn_ids,
                lines: VecDeque::new(),
                next: 1,
                until: now + dur.min(MAX_DURATION),
            },
        );
        self.active.store(t.len(), Ordering::Relaxed);
        Ok(id)
    }

    /// Whether `conn_id` is traced now.
    pub fn wants(&self, conn_id: &str) -> bool {
        self.any()
            && lock(&self.traces)
                .values()
                .any(|t| t.conn_ids.contains(conn_id))
    }

    /// Captures `line` for every active trace of `conn_id`.
    pub fn push(&self, conn_id: &str, line: &str, now: Instant) {
        let mut t = lock(&self.traces);
        for tr in t.values_mut() {
            if tr.until > now && tr.conn_ids.contains(conn_id) {
                if tr.lines.len() == MAX_LINES {
                    tr.lines.pop_front();
                }
                tr.lines.push_back((tr.next, line.to_string()));
                tr.next += 1;
            }
        }
    }

    /// Lines of trace `id` after `after`; a finished trace is forgotten once read to its end.
    pub fn read(&self, id: u64, after: u64, now: Instant) -> Option<Page> {
        let mut t = lock(&self.traces);
        let tr = t.get(&id)?;
        let lines: Vec<(u64, String)> = tr
            .lines
            .iter()
            .filter(|(s, _)| *s > after)
            .cloned()
            .collect();
        let next = lines.last().map_or(after, |(s, _)| *s);
        let done = tr.until <= now;
        if done {
            t.remove(&id);
            self.active.store(t.len(), Ordering::Relaxed);
        }
        Some(Page { lines, next, done })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_captures_only_its_connections_and_ends_by_itself() {
        let c = TraceControl::default();
        let t0 = Instant::now();
        assert!(!c.any());
        let id = c
            .start(["a".to_string()].into(), Duration::from_secs(5), t0)
            .unwrap();
        assert!(c.any() && c.wants("a") && !c.wants("b"));
        c.push("a", "one", t0);
        c.push("b", "other", t0);
        c.push("a", "two", t0);
        let p = c.read(id, 0, t0).unwrap();
        assert_eq!(p.lines, vec![(1, "one".into()), (2, "two".into())]);
        assert!(!p.done);
        assert_eq!(c.read(id, p.next, t0).unwrap().lines, vec![]);
        let end = c.read(id, p.next, t0 + Duration::from_secs(6)).unwrap();
        assert!(end.done);
        assert!(
            c.read(id, 0, t0).is_none() && !c.any(),
            "forgotten once finished"
        );
    }

    #[test]
    fn buffers_and_trace_counts_are_bounded() {
        let c = TraceControl::default();
        let t0 = Instant::now();
        let id = c
            .start(["a".to_string()].into(), Duration::from_secs(5), t0)
            .unwrap();
        for i in 0..(MAX_LINES + 5) {
            c.push("a", &i.to_string(), t0);
        }
        let p = c.read(id, 0, t0).unwrap();
        assert_eq!((p.lines.len(), p.lines[0].1.as_str()), (MAX_LINES, "5"));
        for _ in 1..MAX_TRACES {
            c.start(HashSet::new(), Duration::from_secs(5), t0).unwrap();
        }
        assert!(c.start(HashSet::new(), Duration::from_secs(5), t0).is_err());
    }
}
