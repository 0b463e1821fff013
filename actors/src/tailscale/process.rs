//! Running `tailscale`: one-shot commands with a timeout (killed on timeout), and the
//! long-lived claim in its own process group. The claim's owner stops it with SIGTERM to the
//! group and SIGKILL after 2 s; dropping the owner kills the group, so no claim outlives the
//! gateway on any exit path.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{oneshot, watch};

use super::parse::{classify, Failure, READY_MARKER};
use crate::shared::lock;
use crate::tunnel::ssh::signal_group;

/// How long a stopped claim gets between SIGTERM and SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(2);
/// Output lines kept from the claim.
const TAIL_LINES: usize = 20;

/// Runs `bin args` to completion within `timeout`; `Ok(stdout)` on exit 0, else the failure.
pub async fn run(bin: &Path, args: &[String], timeout: Duration) -> Result<String, Failure> {
    let child = tokio::process::Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Failure::Missing),
        Err(e) => return Err(classify(&format!("cannot run {}: {e}", bin.display()))),
    };
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(Failure::Other(format!(
            "no answer within {} s",
            timeout.as_secs_f32()
        ))),
        Ok(Err(e)) => Err(classify(&e.to_string())),
        Ok(Ok(out)) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        Ok(Ok(out)) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let text = if err.trim().is_empty() {
                String::from_utf8_lossy(&out.stdout).into_owned()
            } else {
                err.into_owned()
            };
            let text: String = text.trim().chars().take(500).collect();
            Err(classify(&format!("{} ({})", text, describe(out.status))))
        }
    }
}

fn describe(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => "ended".into(),
    }
}

/// The running claim (`tailscale serve|funnel --yes --bg=false <port>`).
#[derive(Debug)]
pub struct Claim {
    /// Process id (= process group id).
    pub pid: u32,
    tail: Arc<Mutex<VecDeque<String>>>,
    stop: Option<oneshot::Sender<()>>,
    reaped: Arc<AtomicBool>,
    done: watch::Receiver<bool>,
}

// === impl Claim ===

impl Claim {
    /// Starts the claim and waits until it prints [`READY_MARKER`] (within `ready_within`).
    /// `on_exit(status, last line)` runs once when it ends (also after `Err` here, never
    /// for a claim that did not start).
    pub async fn start(
        bin: &Path,
        args: &[String],
        ready_within: Duration,
        on_exit: impl FnOnce(String, Option<String>) + Send + 'static,
    ) -> Result<Claim, Failure> {
        let mut child = match tokio::process::Command::new(bin)
            .args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Failure::Missing),
            Err(e) => return Err(classify(&e.to_string())),
        };
        let pid = child.id().unwrap_or(0);
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
        let (ready_tx, mut ready_rx) = watch::channel(false);
        let readers: Vec<_> = [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|e| Box::new(e) as Box<dyn AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        .map(|r| tokio::spawn(read_lines(r, tail.clone(), ready_tx.clone())))
        .collect();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = watch::channel(false);
        let reaped = Arc::new(AtomicBool::new(false));
        let (reaped_w, tail_w) = (reaped.clone(), tail.clone());
        tokio::spawn(async move {
            let status = tokio::select! {
                s = child.wait() => s,
                _ = stop_rx => {
                    signal_group(pid, Signal::SIGTERM);
                    match tokio::time::timeout(TERM_GRACE, child.wait()).await {
                        Ok(s) => s,
                        Err(_) => {
                            signal_group(pid, Signal::SIGKILL);
                            child.wait().await
                        }
                    }
                }
            };
            signal_group(pid, Signal::SIGKILL);
            reaped_w.store(true, Ordering::SeqCst);
            for r in readers {
                let _ = tokio::time::timeout(Duration::from_millis(300), r).await;
            }
            let _ = done_tx.send(true);
            let status = status
                .map(describe)
                .unwrap_or_else(|e| format!("wait failed: {e}"));
            let last = lock(&tail_w).back().cloned();
            on_exit(status, last);
        });
        let mut claim = Claim {
            pid,
            tail,
            stop: Some(stop_tx),
            reaped,
            done: done_rx,
        };
        let mut done = claim.done.clone();
        let ready = tokio::time::timeout(ready_within, async {
            loop {
                if *ready_rx.borrow() {
                    return true;
                }
                tokio::select! {
                    r = ready_rx.changed() => if r.is_err() { return false },
                    _ = done.changed() => return *ready_rx.borrow(),
                }
            }
        })
        .await;
        match ready {
            Ok(true) => Ok(claim),
            Ok(false) => {
                // It exited before it was ready: its own words say why.
                let _ =
                    tokio::time::timeout(Duration::from_millis(500), claim.done.changed()).await;
                let text = claim.tail().join(" ").trim().to_string();
                Err(classify(if text.is_empty() {
                    "the claim exited at once"
                } else {
                    &text
                }))
            }
            Err(_) => {
                claim.stop().await;
                Err(Failure::Other(format!(
                    "the route claim did not become ready within {} seconds (no \"{READY_MARKER}\")",
                    ready_within.as_secs()
                )))
            }
        }
    }

    /// The last output lines.
    pub fn tail(&self) -> Vec<String> {
        lock(&self.tail).iter().cloned().collect()
    }

    /// SIGTERM to the group, SIGKILL after [`TERM_GRACE`]; returns once it is gone.
    pub async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let mut done = self.done.clone();
        let _ = tokio::time::timeout(TERM_GRACE + Duration::from_secs(2), async {
            while !*done.borrow() {
                if done.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // The owner is gone without a stop (a crash): no orphan claim.
        if !self.reaped.load(Ordering::SeqCst) && self.stop.is_some() {
            signal_group(self.pid, Signal::SIGTERM);
        }
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn read_lines(
    r: Box<dyn AsyncRead + Send + Unpin>,
    tail: Arc<Mutex<VecDeque<String>>>,
    ready: watch::Sender<bool>,
) {
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(l)) = lines.next_line().await {
        if l.contains(READY_MARKER) {
            let _ = ready.send(true);
        }
        let mut t = lock(&tail);
        if t.len() == TAIL_LINES {
            t.pop_front();
        }
        t.push_back(l.chars().take(300).collect());
    }
}
