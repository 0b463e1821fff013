//! Running the real `ssh`: the argument list (pure), and a process owner that puts ssh in
//! its own process group, keeps the last lines of its stderr, reports its exit by message,
//! and kills the whole group (TERM, then KILL after 2 s) on request or when dropped, so no
//! ssh (or a ProxyCommand child) outlives its tunnel, even after a panic.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;

use crate::config::tunnels::{Direction, TunnelSpec};
use crate::shared::lock;

/// Lines of ssh stderr kept for status.
pub const STDERR_LINES: usize = 20;
/// Grace between TERM and KILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// The `ssh` arguments for a tunnel (after the program name).
pub fn argv(t: &TunnelSpec) -> Vec<String> {
    let mut a = vec!["-N".to_string()];
    for (k, v) in &t.options {
        a.push("-o".into());
        a.push(format!("{k}={v}"));
    }
    if let Some(k) = &t.known_hosts_file {
        a.push("-o".into());
        a.push(format!("UserKnownHostsFile={k}"));
    }
    if let Some(i) = &t.identity_file {
        a.extend([
            "-i".into(),
            i.clone(),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
        ]);
    }
    if let Some(p) = t.ssh_port {
        a.extend(["-p".into(), p.to_string()]);
    }
    match t.direction {
        // The ~/.ssh/config block's LocalForward is the forward: no second one.
        Direction::Local if t.forward_from_config => {}
        Direction::Local => {
            a.push("-L".into());
            a.push(format!(
                "127.0.0.1:{}:{}:{}",
                t.local_port, t.remote_host, t.remote_port
            ));
        }
        Direction::Remote => {
            a.push("-R".into());
            a.push(format!(
                "{}:{}:127.0.0.1:{}",
                t.remote_host, t.remote_port, t.local_port
            ));
        }
    }
    a.push("--".into());
    a.push(t.target.clone());
    a
}

/// Sends `sig` to a process group; a group that is gone is fine.
pub fn signal_group(pgid: u32, sig: Signal) {
    let _ = killpg(Pid::from_raw(pgid as i32), sig);
}

/// A running ssh. Dropping it kills the process group at once.
#[derive(Debug)]
pub struct SshProcess {
    /// Process id (= process group id).
    pub pid: u32,
    /// Last stderr lines.
    pub stderr: Arc<Mutex<VecDeque<String>>>,
    kill: Option<oneshot::Sender<()>>,
    /// Set once the process is reaped: its group id may then be reused, so never signal it.
    reaped: Arc<std::sync::atomic::AtomicBool>,
}

/// How ssh ended.
#[derive(Debug, Clone)]
pub struct Exit {
    /// `exit 255`, `signal 9`, …
    pub status: String,
    /// The last stderr line, if any.
    pub last_line: Option<String>,
}

// === impl SshProcess ===

impl SshProcess {
    /// Spawns `program argv` in its own process group; `on_exit` runs once when it ends.
    pub fn spawn(
        program: &str,
        args: &[String],
        on_exit: impl FnOnce(Exit) + Send + 'static,
    ) -> std::io::Result<SshProcess> {
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().unwrap_or(0);
        let stderr = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_LINES)));
        let mut reader = None;
        if let Some(err) = child.stderr.take() {
            let ring = stderr.clone();
            reader = Some(tokio::spawn(async move {
                let mut lines = BufReader::new(err).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    let mut r = lock(&ring);
                    if r.len() == STDERR_LINES {
                        r.pop_front();
                    }
                    r.push_back(l);
                }
            }));
        }
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let ring = stderr.clone();
        let reaped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reaped_w = reaped.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                s = child.wait() => s,
                _ = kill_rx => {
                    // Asked to stop, or the owner was dropped: TERM the group, then KILL.
                    signal_group(pid, Signal::SIGTERM);
                    match tokio::time::timeout(KILL_GRACE, child.wait()).await {
                        Ok(s) => s,
                        Err(_) => {
                            signal_group(pid, Signal::SIGKILL);
                            child.wait().await
                        }
                    }
                }
            };
            // Kill anything left in the group (a ProxyCommand, say) before the id is free.
            signal_group(pid, Signal::SIGKILL);
            reaped_w.store(true, std::sync::atomic::Ordering::SeqCst);
            // Let the reader drain ssh's last words (the reason it exited) before reporting.
            if let Some(r) = reader {
                let _ = tokio::time::timeout(Duration::from_millis(300), r).await;
            }
            let status = match status {
                Ok(s) => describe(s),
                Err(e) => format!("wait failed: {e}"),
            };
            let last_line = lock(&ring).back().cloned();
            on_exit(Exit { status, last_line });
        });
        Ok(SshProcess {
            pid,
            stderr,
            kill: Some(kill_tx),
            reaped,
        })
    }

    /// Asks the waiter to kill the group (TERM, then KILL).
    pub fn kill(&mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
    }

    /// The last stderr lines.
    pub fn stderr_tail(&self) -> Vec<String> {
        lock(&self.stderr).iter().cloned().collect()
    }
}

impl Drop for SshProcess {
    fn drop(&mut self) {
        // The owner is gone (stop, crash or kill of the actor): no orphan ssh, ever.
        if !self.reaped.load(std::sync::atomic::Ordering::SeqCst) {
            signal_group(self.pid, Signal::SIGKILL);
        }
        self.kill();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tunnels::{validate, TunnelConfig};

    #[test]
    fn argv_for_local_and_remote() {
        let t = TunnelConfig {
            name: "a".into(),
            ssh_target: "me@host1:2222".into(),
            local_port: 19789,
            remote_port: 19001,
            identity_file: Some("/k".into()),
            known_hosts_file: Some("/kh".into()),
            ..Default::default()
        };
        let spec = &validate(std::slice::from_ref(&t), std::path::Path::new("c")).unwrap()[0];
        let a = argv(spec).join(" ");
        for want in [
            "-N",
            "-o ExitOnForwardFailure=yes",
            "-o BatchMode=yes",
            "-o ServerAliveInterval=15",
            "-o ServerAliveCountMax=3",
            "-o ConnectTimeout=10",
            "-o StrictHostKeyChecking=yes",
            "-o UserKnownHostsFile=/kh",
            "-i /k -o IdentitiesOnly=yes",
            "-p 2222",
            "-L 127.0.0.1:19789:127.0.0.1:19001",
            "-- me@host1",
        ] {
            assert!(a.contains(want), "{want} missing in {a}");
        }
        assert!(a.ends_with("-- me@host1"), "target last, after --: {a}");
        let mut r = t;
        r.direction = Some("remote".into());
        let spec = &validate(&[r], std::path::Path::new("c")).unwrap()[0];
        assert!(argv(spec)
            .join(" ")
            .contains("-R 127.0.0.1:19001:127.0.0.1:19789"));
    }

    #[tokio::test]
    async fn dropping_the_owner_kills_the_whole_group() {
        // sh starts a grandchild; both must die with the group.
        let args = vec![
            "-c".to_string(),
            "sleep 30 & echo started >&2; wait".to_string(),
        ];
        let (tx, rx) = oneshot::channel();
        let p = SshProcess::spawn("sh", &args, move |e| {
            let _ = tx.send(e);
        })
        .unwrap();
        let pgid = p.pid;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(p.stderr_tail(), vec!["started".to_string()]);
        drop(p);
        let exit = tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .unwrap()
            .unwrap();
        assert!(exit.status.starts_with("signal"), "{exit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let alive = live_members(pgid);
        assert!(
            alive.is_empty(),
            "process group {pgid} still has live members {alive:?}"
        );
    }

    /// Non-zombie processes in process group `pgid` (a killed orphan may linger as a zombie
    /// until init reaps it; it holds no port and runs no code).
    fn live_members(pgid: u32) -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let f: Vec<&str> = stat
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
                    .collect();
                f.first() != Some(&"Z")
                    && f.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid)
            })
            .collect()
    }
}
