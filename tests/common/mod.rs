//! Test harness: starts the real `openclaw` binary on `127.0.0.1:0` with a throwaway HOME,
//! reads the bound port back, and speaks the protocol as a client. Patience for slow CI is
//! `OPENCLAW_TEST_PATIENCE_MS` (default 15000).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream as TokioTcp;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A strong token used by most tests.
pub const TOKEN: &str = "TestToken0123456789abcdefghijklmnopqrstuvwxyzAB";

/// A well-formed token that is not the gateway's.
pub const WRONG_TOKEN: &str = "WrongToken0123456789abcdefghijklmnop";

/// How long to wait for anything.
pub fn patience() -> Duration {
    let ms = std::env::var("OPENCLAW_TEST_PATIENCE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15_000);
    Duration::from_millis(ms)
}

/// Env var naming the real parts (comma-separated keys, or `all`) whose absence fails a test
/// instead of skipping it. CI sets it (`.ci/run`) so a green run means they really ran.
pub const REQUIRE_ENV: &str = "OPENCLAW_TEST_REQUIRE";

/// The parts tests may need, and how to provide each.
pub const REQUIREMENTS: &[(&str, &str)] = &[
    (
        "sshd",
        "install openssh-server and openssh-client (`apt-get install openssh-server openssh-client`)",
    ),
    (
        "netns",
        "run as root or with CAP_NET_ADMIN, with iproute2 installed (`ip netns`; `apt-get install iproute2`)",
    ),
    (
        "prometheus",
        "install Prometheus and promtool (`apt-get install prometheus`)",
    ),
    (
        "ipv6",
        "enable IPv6 on loopback (`sysctl net.ipv6.conf.lo.disable_ipv6=0`)",
    ),
    (
        "tmpfs",
        "run as root or with CAP_SYS_ADMIN so the test can mount a small tmpfs (`mount -t tmpfs`, util-linux)",
    ),
];

/// Whether `what` is required by an `OPENCLAW_TEST_REQUIRE` value (`None`: unset). An
/// unknown key is an error, so a typo cannot quietly turn a requirement back into a skip.
pub fn is_required(what: &str, setting: Option<&str>) -> Result<bool, String> {
    let mut required = false;
    for key in setting.unwrap_or("").split(',').map(str::trim) {
        if key.is_empty() {
            continue;
        }
        if key != "all" && !REQUIREMENTS.iter().any(|(k, _)| *k == key) {
            let known: Vec<&str> = REQUIREMENTS.iter().map(|(k, _)| *k).collect();
            return Err(format!(
                "{REQUIRE_ENV}: unknown key {key:?} (known: all, {})",
                known.join(", ")
            ));
        }
        required |= key == "all" || key == what;
    }
    Ok(required)
}

/// Gate for a test's real part: `available` is `Ok(value)` when it can run, `Err(reason)`
/// when not. Returns the value; when unavailable, panics if `what` is listed in
/// `OPENCLAW_TEST_REQUIRE` (naming what is missing and the fix), otherwise prints
/// `SKIPPED: <what>: <reason>` to stderr and returns `None` so the test returns early:
/// `let Some(ns) = require("netns", NetNs::create()) else { return };`
pub fn require<T>(what: &str, available: Result<T, String>) -> Option<T> {
    let reason = match available {
        Ok(v) => return Some(v),
        Err(reason) => reason,
    };
    let setting = std::env::var(REQUIRE_ENV).ok();
    let fix = REQUIREMENTS
        .iter()
        .find(|(k, _)| *k == what)
        .map_or("see README \"Run the tests\"", |(_, fix)| fix);
    match is_required(what, setting.as_deref()) {
        Ok(false) => {
            eprintln!(
                "SKIPPED: {what}: {reason} (to fail instead: {REQUIRE_ENV}={what}; fix: {fix})"
            );
            None
        }
        Ok(true) => panic!(
            "required test part {what:?} is missing: {reason}\n\
             {REQUIRE_ENV}={} makes this a failure instead of a skip.\n\
             Fix: {fix}",
            setting.unwrap_or_default()
        ),
        Err(e) => panic!("{e}"),
    }
}

/// A unique temp dir, `oc-e2e-<tag>-<pid>-<uuid>`. Tests keep theirs (a failure can be
/// looked into); the first call in a test process removes the ones left by test processes
/// that are gone ([`sweep_dead_dirs`]), so runs do not pile them up.
pub fn temp_dir(tag: &str) -> PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| sweep_dead_dirs(&std::env::temp_dir()));
    let d = std::env::temp_dir().join(format!(
        "oc-e2e-{tag}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Removes `oc-e2e-…-<pid>-<uuid>` dirs under `tmp` whose test process no longer runs (no
/// `/proc/<pid>`). A live process's dirs, and anything not named so, are left alone.
fn sweep_dead_dirs(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("oc-e2e-")) else {
            continue;
        };
        // `<tag>-<pid>-<uuid>`: the uuid has 5 dash-separated groups, the pid comes before.
        let parts: Vec<&str> = rest.rsplitn(7, '-').collect();
        let pid = match parts.get(5).map(|p| p.parse::<u32>()) {
            Some(Ok(pid)) if parts.len() == 7 => pid,
            _ => continue,
        };
        let uuid = format!(
            "{}-{}-{}-{}-{}",
            parts[4], parts[3], parts[2], parts[1], parts[0]
        );
        if uuid::Uuid::parse_str(&uuid).is_err() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let _ = std::fs::remove_dir_all(e.path());
    }
}

/// How to start a gateway.
#[derive(Default, Clone)]
pub struct Opts {
    /// Config file contents (JSON5), written to `<home>/.openclaw/openclaw.json`.
    pub config: Option<String>,
    /// Extra env vars.
    pub env: Vec<(String, String)>,
    /// Extra args after `gateway`.
    pub args: Vec<String>,
    /// Do not set OPENCLAW_GATEWAY_TOKEN.
    pub no_token: bool,
    /// Run inside this network namespace (`ip netns exec NAME`).
    pub netns: Option<String>,
    /// Open-file limits `(soft, hard)` to start under (`prlimit --nofile=S:H`).
    pub nofile: Option<(u64, u64)>,
}

/// A running gateway process; killed on drop.
pub struct Gw {
    pub child: Child,
    pub port: u16,
    pub home: PathBuf,
    pub stdout_lines: Vec<String>,
}

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_openclaw")
}

/// Runs the binary to completion (for start-up refusals), with a temp HOME.
pub fn run_to_exit(opts: Opts) -> (i32, String, String) {
    let home = temp_dir("exit");
    run_bounded(command(&home, &opts))
}

/// Runs `cmd` with piped output; a process still running after the patience is killed.
/// Both pipes are drained while it runs: a child writing more than the pipe buffer (e.g.
/// `openclaw completions bash`, ~60 KiB) would otherwise block forever.
pub fn run_bounded(mut cmd: Command) -> (i32, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let deadline = Instant::now() + patience();
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = child.wait().unwrap();
    // A grandchild still holding a pipe must not hang the test: give up on its output.
    let take = |rx: std::sync::mpsc::Receiver<Vec<u8>>| {
        let bytes = rx.recv_timeout(patience()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (status.code().unwrap_or(-1), take(out), take(err))
}

/// Reads `r` to the end on a thread; the bytes arrive on the returned channel.
fn drain(mut r: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        let _ = tx.send(v);
    });
    rx
}

/// `openclaw ARGS` with only `HOME`, `PATH` and `env` set.
pub fn client_command(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args);
    cmd
}

fn command(home: &Path, opts: &Opts) -> Command {
    // `ip netns exec` and `prlimit` exec the program: the child pid is the gateway's.
    let mut argv: Vec<String> = Vec::new();
    if let Some(ns) = &opts.netns {
        argv.extend(["ip", "netns", "exec", ns].map(String::from));
    }
    if let Some((soft, hard)) = opts.nofile {
        argv.extend([
            "prlimit".into(),
            format!("--nofile={soft}:{hard}"),
            "--".into(),
        ]);
    }
    argv.push(bin().to_string());
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .arg("gateway");
    if !opts.no_token {
        cmd.env("OPENCLAW_GATEWAY_TOKEN", TOKEN);
    }
    let port_from_env = opts.env.iter().any(|(k, _)| k == "OPENCLAW_GATEWAY_PORT");
    if !opts.args.iter().any(|a| a == "--port") && !port_from_env {
        cmd.args(["--port", "0"]);
    }
    cmd.args(&opts.args);
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    if let Some(c) = &opts.config {
        let dir = home.join(".openclaw");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("openclaw.json"), c).unwrap();
    }
    cmd
}

// === impl Gw ===

impl Gw {
    /// Starts a gateway and waits for its listening line.
    pub fn start(opts: Opts) -> Gw {
        Gw::start_in(temp_dir("gw"), opts)
    }

    /// Starts a gateway with `home` as its HOME (e.g. again after a crash).
    pub fn start_in(home: PathBuf, opts: Opts) -> Gw {
        let mut cmd = command(&home, &opts);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        let log = home.join("stderr.log");
        std::thread::spawn(move || {
            let mut f = std::fs::File::create(log).unwrap();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(f, "{line}");
            }
        });
        let deadline = Instant::now() + patience();
        let mut lines = Vec::new();
        let mut port = None;
        while port.is_none() && Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => {
                    let rest = l
                        .strip_prefix("listening on ws://")
                        .or_else(|| l.strip_prefix("listening on wss://"));
                    if let Some(rest) = rest {
                        port = rest.rsplit(':').next().and_then(|p| p.trim().parse().ok());
                    }
                    lines.push(l);
                }
                Err(_) => {
                    if let Ok(Some(st)) = child.try_wait() {
                        let err =
                            std::fs::read_to_string(home.join("stderr.log")).unwrap_or_default();
                        panic!("gateway exited early with {st}: {err}");
                    }
                }
            }
        }
        // collect the rest of the banner
        while let Ok(l) = rx.recv_timeout(Duration::from_millis(50)) {
            lines.push(l);
        }
        let port = port.unwrap_or_else(|| panic!("no listening line; got {lines:?}"));
        Gw {
            child,
            port,
            home,
            stdout_lines: lines,
        }
    }

    /// `ws://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// The state dir.
    pub fn state_dir(&self) -> PathBuf {
        self.home.join(".openclaw")
    }

    /// Audit log lines parsed.
    pub fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.state_dir().join("logs/audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until an audit event matching `pred` shows up.
    pub fn wait_audit(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + patience();
        loop {
            if let Some(v) = self.audit().into_iter().find(|v| pred(v)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no audit event {what}; have {:#?}",
                self.audit()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a signal to the gateway.
    pub fn signal(&self, sig: i32) {
        assert_eq!(kill(self.child.id(), sig), 0);
    }

    /// Waits for exit and returns the code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + patience();
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Runs `openclaw ARGS` as a client of this gateway on its own machine (its HOME, its
    /// port, the test token from the environment).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let port = self.port.to_string();
        let env = [
            ("OPENCLAW_GATEWAY_TOKEN", TOKEN),
            ("OPENCLAW_GATEWAY_PORT", port.as_str()),
        ];
        run_bounded(client_command(&self.home, &env, args))
    }

    /// The gateway's stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.home.join("stderr.log")).unwrap_or_default()
    }
}

/// Sends `sig` to a process this test started.
#[allow(unsafe_code)]
pub fn kill(pid: u32, sig: i32) -> i32 {
    // SAFETY: plain kill(2) on a child pid the test spawned and still owns.
    unsafe { libc::kill(pid as libc::pid_t, sig) }
}

impl Drop for Gw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Plain HTTP GET over a raw socket: (status, body).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(patience())).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let body = buf.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (http_status(&buf), body)
}

/// The status code of an HTTP/1.1 response's text (0 when there is none).
pub fn http_status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A WebSocket client.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TokioTcp>>,
    next_id: u64,
    last_close: Option<Closed>,
}

/// What ended a connection.
#[derive(Debug, PartialEq)]
pub enum Closed {
    /// Close frame with code and reason.
    Code(u16, String),
    /// TCP ended without a close frame.
    Eof,
}

// === impl Client ===

impl Client {
    /// Connects (no handshake).
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio::time::timeout(patience(), tokio_tungstenite::connect_async(url))
            .await
            .unwrap()
            .unwrap();
        Client {
            ws,
            next_id: 0,
            last_close: None,
        }
    }

    /// Wraps an already connected socket.
    pub fn from_ws(ws: WebSocketStream<MaybeTlsStream<TokioTcp>>) -> Client {
        Client {
            ws,
            next_id: 0,
            last_close: None,
        }
    }

    /// Next JSON frame (skipping none).
    pub async fn recv(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(patience(), self.ws.next())
                .await
                .expect("timed out waiting for a frame");
            match m {
                Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
                Some(Ok(Message::Ping(_))) | Some(Ok(Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Next frame that is a `res` with this id (events in between are skipped).
    pub async fn recv_res(&mut self, id: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == "res" && v["id"] == id {
                return v;
            }
        }
    }

    /// Waits for the close; returns code and reason.
    pub async fn closed(&mut self) -> Closed {
        loop {
            let m = tokio::time::timeout(patience(), self.ws.next())
                .await
                .expect("timed out waiting for close");
            match m {
                Some(Ok(Message::Close(Some(f)))) => {
                    return Closed::Code(f.code.into(), f.reason.to_string())
                }
                Some(Ok(Message::Close(None))) => return Closed::Code(1005, String::new()),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Closed::Eof,
            }
        }
    }

    /// Next JSON frame, or `None` once a close frame or the end of the stream is seen (the
    /// close is then available from [`Client::closed_after_stream_end`]).
    pub async fn ws_next(&mut self) -> Option<Value> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(f))) => {
                    self.last_close = Some(match f {
                        Some(f) => Closed::Code(f.code.into(), f.reason.to_string()),
                        None => Closed::Code(1005, String::new()),
                    });
                    return None;
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => {
                    self.last_close.get_or_insert(Closed::Eof);
                    return None;
                }
            }
        }
    }

    /// The close seen by [`Client::ws_next`].
    pub fn closed_after_stream_end(&mut self) -> Closed {
        self.last_close.take().unwrap_or(Closed::Eof)
    }

    /// Sends a JSON value.
    pub async fn send(&mut self, v: &Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    /// Sends a request and returns its id.
    pub async fn req(&mut self, method: &str, params: Value) -> String {
        self.next_id += 1;
        let id = format!("t{}", self.next_id);
        self.send(&json!({"type":"req","id":id,"method":method,"params":params}))
            .await;
        id
    }

    /// Sends a request and waits for its response.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.req(method, params).await;
        self.recv_res(&id).await
    }

    /// Reads the challenge and sends `connect` with these params; returns (challenge, res).
    pub async fn connect_with(&mut self, params: Value) -> (Value, Value) {
        let ch = self.recv().await;
        assert_eq!(ch["event"], "connect.challenge", "{ch}");
        self.send(&json!({"type":"req","id":"c1","method":"connect","params":params}))
            .await;
        let res = self.recv_res("c1").await;
        (ch, res)
    }

    /// Connects and authenticates as the local CLI with admin scope; returns hello-ok.
    pub async fn authed(url: &str, token: &str) -> (Client, Value) {
        let mut c = Client::connect(url).await;
        let (_, res) = c
            .connect_with(connect_params(token, "cli", "cli", &["operator.admin"]))
            .await;
        assert_eq!(res["ok"], true, "{res}");
        (c, res["payload"].clone())
    }
}

/// Standard `connect` params.
pub fn connect_params(token: &str, id: &str, mode: &str, scopes: &[&str]) -> Value {
    json!({
        "minProtocol": 4, "maxProtocol": 4,
        "client": {"id": id, "version": "test", "platform": "linux", "mode": mode},
        "role": "operator", "scopes": scopes, "auth": {"token": token},
    })
}
pub mod inproc;
pub mod node;
pub mod sshd;
