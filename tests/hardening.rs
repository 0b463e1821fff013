//! Defects from the outside robustness test (issue 14), each reproduced against the real
//! gateway binary on loopback: placeholder secrets, WebSocket conformance (426 with the
//! version header; close frames 1002/1007 on protocol errors), header caps (431) and the
//! memory that unfinished headers can pin, and the close after a run of invalid frames.
//! The open-file and per-address caps need remote peers: they live in `tests/netns.rs`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{http_status, patience, run_to_exit, Client, Closed, Gw, Opts, TOKEN};
use futures_util::SinkExt;
use serde_json::json;

// --- placeholder secrets -------------------------------------------------------------------

#[test]
fn placeholder_secrets_refuse_start_up_on_loopback() {
    for (args, env, src) in [
        (vec!["--token", "change-me-now"], vec![], "--token"),
        (
            vec![],
            vec![("OPENCLAW_GATEWAY_TOKEN", "change-me-to-a-long-random-token")],
            "OPENCLAW_GATEWAY_TOKEN",
        ),
        (
            vec!["--password", "change-me-to-a-strong-password"],
            vec![],
            "--password",
        ),
        (vec!["--token", "undefined"], vec![], "--token"),
        (vec!["--token", "null"], vec![], "--token"),
        (vec!["--token", "  "], vec![], "--token"),
    ] {
        let (code, out, err) = run_to_exit(Opts {
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            no_token: true,
            ..Default::default()
        });
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(
            err.contains("published example placeholder") && err.contains(src),
            "{args:?}: {err}"
        );
        for secret in ["change-me-now", "change-me-to-a"] {
            assert!(!err.contains(secret), "secret printed: {err}");
        }
    }
    // From the file, naming the key.
    let (code, _, err) = run_to_exit(Opts {
        config: Some(r#"{ gateway: { auth: { token: "change-me-now" } } }"#.into()),
        no_token: true,
        ..Default::default()
    });
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("gateway.auth.token"), "{err}");
}

// --- open files ------------------------------------------------------------------------------

/// The soft open-file limit is raised to the hard limit at start, and both are logged.
#[test]
fn soft_open_file_limit_is_raised_to_the_hard_limit() {
    let gw = Gw::start(Opts {
        nofile: Some((512, 4096)),
        ..Default::default()
    });
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", gw.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let nums: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(nums, ["4096", "4096"], "{line}");
    let log = gw.stderr();
    assert!(
        log.contains("open-file soft limit raised")
            && log.contains("from=512")
            && log.contains("to=4096"),
        "{log}"
    );
}

// --- WebSocket conformance -----------------------------------------------------------------

/// Sends `head` (an HTTP request without its blank line) and returns the response head.
fn raw_request(port: u16, head: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(patience())).unwrap();
    write!(s, "{head}\r\n").unwrap();
    let mut buf = vec![0u8; 8192];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn bad_websocket_version_gets_426_with_the_version_we_speak() {
    let gw = Gw::start(Opts::default());
    let port = gw.port;
    let up = |version: &str| {
        format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             {version}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        )
    };
    for version in [
        "Sec-WebSocket-Version: 8\r\n",
        "Sec-WebSocket-Version: 14\r\n",
        "",
    ] {
        let r = raw_request(port, &up(version));
        assert_eq!(http_status(&r), 426, "{version:?}: {r}");
        assert!(
            r.to_ascii_lowercase().contains("sec-websocket-version: 13"),
            "{version:?}: {r}"
        );
    }
    let r = raw_request(
        port,
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n",
    );
    assert_eq!(http_status(&r), 400, "{r}");
    let r = raw_request(port, &up("Sec-WebSocket-Version: 13\r\n"));
    assert_eq!(http_status(&r), 101, "{r}");
}

/// A WebSocket connection on a raw socket, for frames tungstenite would refuse to send.
struct RawWs {
    s: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    fn open(port: u16) -> RawWs {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(patience())).unwrap();
        write!(
            s,
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        .unwrap();
        let mut ws = RawWs { s, buf: Vec::new() };
        let end = loop {
            if let Some(i) = ws.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            ws.fill();
        };
        assert!(ws.buf.starts_with(b"HTTP/1.1 101"));
        ws.buf.drain(..end);
        let (op, payload) = ws.frame().expect("challenge");
        assert_eq!(op, 1);
        assert!(String::from_utf8_lossy(&payload).contains("connect.challenge"));
        ws
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 4096];
        let n = self.s.read(&mut chunk).unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// The next server frame `(opcode, payload)`, or `None` at EOF.
    fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 2 {
                let len = (self.buf[1] & 0x7f) as usize;
                let (hdr, len) = match len {
                    126 if self.buf.len() >= 4 => {
                        (4, u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize)
                    }
                    126 => (usize::MAX, 0),
                    127 => panic!("no 64-bit frames expected"),
                    n => (2, n),
                };
                if hdr != usize::MAX && self.buf.len() >= hdr + len {
                    let op = self.buf[0] & 0x0f;
                    let payload = self.buf[hdr..hdr + len].to_vec();
                    self.buf.drain(..hdr + len);
                    return Some((op, payload));
                }
            }
            if self.fill() == 0 {
                return None;
            }
        }
    }

    /// Sends one frame with this first byte (FIN, RSV, opcode); masked unless `unmasked`.
    fn send(&mut self, b0: u8, payload: &[u8], unmasked: bool) {
        let mut f = vec![b0];
        let mask_bit = if unmasked { 0 } else { 0x80 };
        match payload.len() {
            n if n < 126 => f.push(mask_bit | n as u8),
            n => {
                f.push(mask_bit | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        if unmasked {
            f.extend_from_slice(payload);
        } else {
            let key = [0x37u8, 0xfa, 0x21, 0x3d];
            f.extend_from_slice(&key);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        self.s.write_all(&f).unwrap();
    }

    /// Reads until a close frame; returns its code (`None`: the socket ended without one).
    fn close_code(&mut self) -> Option<u16> {
        while let Some((op, p)) = self.frame() {
            if op == 8 {
                return Some(u16::from_be_bytes([p[0], p[1]]));
            }
        }
        None
    }
}

#[test]
fn protocol_errors_get_a_close_frame_first() {
    let gw = Gw::start(Opts::default());
    let text = br#"{"type":"req","id":"1","method":"health"}"#;
    let cases: Vec<(&str, u8, Vec<u8>, bool, u16)> = vec![
        ("unmasked frame", 0x81, text.to_vec(), true, 1002),
        ("reserved data opcode", 0x83, text.to_vec(), false, 1002),
        ("reserved control opcode", 0x8b, vec![], false, 1002),
        ("RSV1 bit", 0xc1, text.to_vec(), false, 1002),
        ("RSV3 bit", 0x91, text.to_vec(), false, 1002),
        ("fragmented ping", 0x09, b"x".to_vec(), false, 1002),
        ("oversize ping", 0x89, vec![b'p'; 126], false, 1002),
        ("continuation first", 0x80, text.to_vec(), false, 1002),
        (
            "invalid UTF-8",
            0x81,
            vec![b'{', 0xff, 0xfe, b'}'],
            false,
            1007,
        ),
    ];
    for (what, b0, payload, unmasked, want) in cases {
        let mut ws = RawWs::open(gw.port);
        ws.send(b0, &payload, unmasked);
        assert_eq!(ws.close_code(), Some(want), "{what}");
    }
    // The gateway is unharmed.
    let (status, _) = common::http_get(gw.port, "/healthz");
    assert_eq!(status, 200);
}

// --- header caps -----------------------------------------------------------------------------

#[test]
fn oversized_headers_get_431() {
    let gw = Gw::start(Opts::default());
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n",
        "a".repeat(102_400)
    );
    let r = send_ignoring_reset(gw.port, big.as_bytes());
    assert_eq!(http_status(&r), 431, "{r}");
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = raw_request(
        gw.port,
        &format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}"),
    );
    assert_eq!(http_status(&r), 431, "{r}");
    // Just under the cap is fine.
    let ok = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n",
        "a".repeat(15_000)
    );
    let r = raw_request(gw.port, &ok);
    assert_eq!(http_status(&r), 200, "{r}");
}

/// Writes `bytes` + the blank line (the server may answer and close before all is written)
/// and returns what came back.
fn send_ignoring_reset(port: u16, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(patience())).unwrap();
    let _ = s.write_all(bytes).and_then(|_| s.write_all(b"\r\n"));
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = s.read(&mut chunk) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// 1,500 connections each trying to send 350 KB of unfinished headers: every one is cut
/// off at the 16 KiB cap, and the gateway's RSS grows by less than the README's bound of
/// 48 KiB per unfinished connection (before the fix: ~540 MB).
#[test]
fn unfinished_headers_pin_bounded_memory() {
    const CONNS: usize = 1500;
    let gw = Gw::start(Opts::default());
    let pid = gw.child.id();
    let before = rss_kib(pid);
    let chunk = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: {}",
        "a".repeat(64 * 1024)
    );
    let mut socks = Vec::with_capacity(CONNS);
    let deadline = Instant::now() + Duration::from_secs(60);
    for _ in 0..CONNS {
        let s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
        s.set_nonblocking(true).unwrap();
        socks.push((s, 0usize));
    }
    // Push up to 350 KB into each without waiting on any one (bounded in time).
    let mut peak = before;
    let mut busy = true;
    while busy && Instant::now() < deadline {
        busy = false;
        for (s, sent) in socks.iter_mut() {
            if *sent >= 350_000 {
                continue;
            }
            match s.write(&chunk.as_bytes()[..chunk.len().min(350_000 - *sent)]) {
                Ok(n) if n > 0 => {
                    *sent += n;
                    busy = true;
                }
                _ => *sent = usize::MAX, // refused, reset or full: this one is done
            }
        }
        peak = peak.max(rss_kib(pid));
    }
    std::thread::sleep(Duration::from_millis(500));
    peak = peak.max(rss_kib(pid));
    let grew = peak.saturating_sub(before);
    eprintln!("unfinished headers: {CONNS} connections, RSS {before} KiB -> peak {peak} KiB (+{grew} KiB)");
    assert!(
        grew < (CONNS as u64) * 48,
        "RSS grew {grew} KiB for {CONNS} connections (bound: 48 KiB each)"
    );
    // Each got 431 or was closed.
    let mut answered = 0;
    for (s, _) in socks.iter_mut() {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut b = [0u8; 64];
        if let Ok(n) = s.read(&mut b) {
            if n == 0 || String::from_utf8_lossy(&b[..n]).contains(" 431 ") {
                answered += 1;
            }
        }
    }
    assert!(
        answered >= CONNS * 9 / 10,
        "{answered}/{CONNS} saw 431 or EOF"
    );
    let (status, _) = common::http_get(gw.port, "/healthz");
    assert_eq!(status, 200);
}

// --- invalid frames ---------------------------------------------------------------------------

#[tokio::test]
async fn a_run_of_invalid_frames_closes_1008() {
    let gw = Gw::start(Opts::default());
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    // Seven invalid frames, then a valid request, then seven more: still open.
    for round in 0..2 {
        for i in 0..7 {
            c.ws.send(tokio_tungstenite::tungstenite::Message::text(format!(
                "garbage {round} {i}"
            )))
            .await
            .unwrap();
            let r = c.recv().await;
            assert_eq!(r["ok"], false, "{r}");
            assert_eq!(r["error"]["code"], "INVALID_REQUEST", "{r}");
        }
        let r = c.call("health", json!({})).await;
        assert_eq!(r["ok"], true, "{r}");
    }
    // Eight in a row: eight answers, then 1008.
    for i in 0..8 {
        c.send(&json!({"type": "req", "id": format!("g{i}")})).await;
    }
    for _ in 0..8 {
        let r = c.recv().await;
        assert_eq!(r["ok"], false, "{r}");
    }
    assert_eq!(
        c.closed().await,
        Closed::Code(1008, "too many invalid frames".into())
    );
}
