//! Spawning our release gateway with a throwaway HOME and a token, finding its port, timing
//! its start-up, and stopping it with SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::sys;

/// How long the gateway may take to print its listening line.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The release binary: `$OPENCLAW_BIN`, else `$CARGO_TARGET_DIR/release/openclaw`, else
/// `<workspace>/target/release/openclaw`.
pub fn bin_path() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(b) = std::env::var_os("OPENCLAW_BIN") {
        return PathBuf::from(b);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    root.join(target).join("release").join("openclaw")
}

/// A running gateway child.
pub struct Gateway {
    child: Child,
    /// Its pid.
    pub pid: u32,
    /// `ws://127.0.0.1:PORT`.
    pub url: String,
    /// When the spawn call was made.
    pub spawned: Instant,
    /// Its HOME.
    pub home: PathBuf,
    /// Remove `home` on drop.
    owns_home: bool,
    lines: mpsc::Receiver<(Instant, String)>,
}

fn gateway_cmd(bin: &Path, home: &Path, token: &str, port: u16) -> Command {
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("OPENCLAW_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", home).env("OPENCLAW_GATEWAY_TOKEN", token);
    cmd.args(["gateway", "--port", &port.to_string()]);
    cmd
}

/// Reads stdout lines on a thread (and keeps draining so the pipe never fills).
fn line_reader(child: &mut Child) -> mpsc::Receiver<(Instant, String)> {
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send((Instant::now(), l));
            }
        });
    }
    rx
}

impl Gateway {
    /// Spawns `cmd` (stdout piped, stderr to `home/stderr.log`); does not wait.
    fn spawn_cmd(mut cmd: Command, home: PathBuf) -> Result<Gateway, String> {
        let stderr = std::fs::File::create(home.join("stderr.log")).map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let spawned = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
        let lines = line_reader(&mut child);
        let pid = child.id();
        Ok(Gateway {
            child,
            pid,
            url: String::new(),
            spawned,
            home,
            owns_home: true,
            lines,
        })
    }

    /// Spawns the gateway on `port` (0: any) in `home`; does not wait.
    pub fn spawn(bin: &Path, home: PathBuf, token: &str, port: u16) -> Result<Gateway, String> {
        Gateway::spawn_cmd(gateway_cmd(bin, &home, token, port), home)
    }

    /// This bench binary in `echo-server` mode as a separate process (for its RSS).
    pub fn start_echo() -> Result<Gateway, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let home = sys::temp_dir("echo").map_err(|e| e.to_string())?;
        let mut cmd = Command::new(exe);
        cmd.args(["echo-server", "--port", "0"]);
        let mut g = Gateway::spawn_cmd(cmd, home)?;
        let (_, port) = g.wait_listening_line()?;
        g.url = format!("ws://127.0.0.1:{port}");
        Ok(g)
    }

    /// Spawns on port 0 and waits for `listening on ws://127.0.0.1:PORT`.
    pub fn start(bin: &Path, token: &str) -> Result<Gateway, String> {
        let home = sys::temp_dir("gw").map_err(|e| e.to_string())?;
        let mut g = Gateway::spawn(bin, home, token, 0)?;
        let (_, port) = g.wait_listening_line()?;
        g.url = format!("ws://127.0.0.1:{port}");
        Ok(g)
    }

    /// Waits for the stdout line announcing the IPv4 listener; returns (when, port).
    pub fn wait_listening_line(&mut self) -> Result<(Instant, u16), String> {
        let deadline = self.spawned + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, l)) => {
                    if let Some(p) = l
                        .strip_prefix("listening on ws://127.0.0.1:")
                        .and_then(|p| p.trim().parse().ok())
                    {
                        return Ok((at, p));
                    }
                }
                Err(_) => {
                    return Err(format!(
                        "gateway did not report listening; stderr: {}",
                        self.stderr_tail()
                    ))
                }
            }
        }
    }

    /// Last lines of the gateway's stderr, for error messages.
    pub fn stderr_tail(&self) -> String {
        let s = std::fs::read_to_string(self.home.join("stderr.log")).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    /// WARN and ERROR lines on the gateway's stderr so far: (warn, error, distinct messages).
    pub fn log_summary(&self) -> (usize, usize, Vec<String>) {
        let text = std::fs::read_to_string(self.home.join("stderr.log")).unwrap_or_default();
        let (mut warn, mut error, mut kinds) = (0, 0, Vec::<String>::new());
        for l in text.lines() {
            let mut words = l.split_whitespace().skip(1);
            let level = words.next().unwrap_or("");
            match level {
                "WARN" => warn += 1,
                "ERROR" => error += 1,
                _ => continue,
            }
            let msg: Vec<&str> = words.take_while(|w| !w.contains('=')).collect();
            let kind = format!("{level} {}", msg.join(" "));
            if kinds.len() < 8 && !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        (warn, error, kinds)
    }

    /// SIGTERM, then wait up to 5 s (SIGKILL after that); returns a description of the exit.
    pub fn stop(&mut self) -> String {
        if let Ok(Some(st)) = self.child.try_wait() {
            return format!("had already exited: {st}");
        }
        sys::sigterm(self.pid);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(st)) = self.child.try_wait() {
                return format!("{st} after SIGTERM in {} ms", t0.elapsed().as_millis());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        "did not exit within 5 s of SIGTERM; killed".into()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
        if self.owns_home {
            let _ = std::fs::remove_dir_all(&self.home);
        }
    }
}

/// One start-up sample, in ms after spawn.
pub struct StartupSample {
    /// The port accepted a TCP connection.
    pub connect_ms: f64,
    /// The `listening on` line was read from stdout.
    pub line_ms: f64,
}

/// Spawns the gateway on a free port and times spawn -> first accepted TCP connect.
pub fn startup_sample(bin: &Path, home: &Path, token: &str) -> Result<StartupSample, String> {
    let port = sys::free_port().map_err(|e| e.to_string())?;
    let mut g = Gateway::spawn(bin, home.to_path_buf(), token, port)?;
    g.owns_home = false; // shared between samples; the caller removes it
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let connect_ms = loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            break g.spawned.elapsed().as_secs_f64() * 1e3;
        }
        if g.spawned.elapsed() > READY_TIMEOUT || matches!(g.child.try_wait(), Ok(Some(_))) {
            return Err(format!(
                "gateway never accepted on {port}; stderr: {}",
                g.stderr_tail()
            ));
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    let (at, _) = g.wait_listening_line()?;
    let line_ms = at.duration_since(g.spawned).as_secs_f64() * 1e3;
    g.stop();
    Ok(StartupSample {
        connect_ms,
        line_ms,
    })
}
