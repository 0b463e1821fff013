//! Fuzz entry points, shared by the cargo-fuzz targets in `fuzz/` (nightly, libFuzzer) and
//! by the stable corpus replay (`actors/tests/fuzz_corpus.rs`), so CI checks every corpus
//! file without a fuzzer. Each function takes raw bytes, must never panic, and asserts the
//! invariants that are cheap to state for its input. Not an API: hidden from the docs.

use std::cell::RefCell;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::auth::rules::{self, Pairing, Secrets, Verdict};
use crate::config::{self, load, plan, tunnels, AuthMode, HostInfo, Inputs};
use crate::guard::forwarded::{Attribution, Forwarding};
use crate::guard::ipset::IpSet;
use crate::guard::{Policy, Refusal};
use crate::protocol::connect::ConnectParams;
use crate::protocol::errors::ErrorShape;
use crate::protocol::frame::{self, Request};
use crate::protocol::frame_guard::FrameScanner;
use crate::secret::Secret;
use crate::session::logtail::{self, TailParams};

/// A fuzz entry point: raw bytes in, a panic on a broken invariant.
pub type Target = fn(&[u8]);

/// Every fuzz target by name (its directory under `fuzz/corpus/`) with its entry point.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame_guard", frame_guard),
    ("request_frame", request_frame),
    ("connect_auth", connect_auth),
    ("admission", admission),
    ("config", config),
    ("logs_cursor", logs_cursor),
];

/// The token of the fixed config [`connect_auth`] decides against.
pub const FUZZ_TOKEN: &str = "fuzz-token-4f0c2a9e7b13d865";
/// The password of that config.
pub const FUZZ_PASSWORD: &str = "fuzz-password-91d3e0b7c2a4";

/// The pre-auth frame scanner. `data[0]` picks the limit, `data[1]` the read size, the
/// rest is the client byte stream. Invariants: the verdict (and the reported size) does not
/// depend on how the stream is split into reads; a rejection reports a size over the limit;
/// a stream accepted under a limit is accepted under any larger one.
pub fn frame_guard(data: &[u8]) {
    let [sel, chunk, stream @ ..] = data else {
        return;
    };
    let limit = match sel % 4 {
        0 => 0,
        1 => 125,
        2 => 65_536,
        _ => 25 << 20,
    };
    let chunk = usize::from(*chunk).max(1);
    let whole = scan(stream, stream.len().max(1), limit);
    let split = scan(stream, chunk, limit);
    assert_eq!(whole, split, "verdict depends on the read size {chunk}");
    match whole {
        Some(size) => assert!(size > limit, "rejected {size} under limit {limit}"),
        None => assert_eq!(scan(stream, chunk, u64::MAX), None, "larger limit rejects"),
    }
}

/// Feeds `stream` in `chunk`-sized reads; the rejected size, if any.
fn scan(stream: &[u8], chunk: usize, limit: u64) -> Option<u64> {
    let mut s = FrameScanner::default();
    for c in stream.chunks(chunk) {
        if let Err(e) = s.feed(c, limit) {
            return Some(e.size);
        }
    }
    None
}

/// A text frame through `parse_request`. Invariants: an accepted request has a non-empty id
/// and method and survives a round trip through JSON; the error answer for a refused frame
/// is itself valid JSON carrying the id it names.
pub fn request_frame(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match frame::parse_request(text) {
        Ok(req) => {
            assert!(!req.id.is_empty() && !req.method.is_empty());
            let mut again = json!({"type": "req", "id": req.id, "method": req.method});
            if let Some(p) = &req.params {
                again["params"] = p.clone();
            }
            assert_eq!(frame::parse_request(&again.to_string()).as_ref(), Ok(&req));
        }
        Err(e) => {
            let id = e.response_id();
            let answer = frame::response_err(&id, &ErrorShape::invalid_frame(&e.to_string()));
            let v: Value = serde_json::from_str(&answer).expect("error answer is JSON");
            assert_eq!(v["id"].as_str(), Some(id.as_str()));
        }
    }
}

/// A `connect` frame through the params parser and the pure auth decision, against a fixed
/// config with token [`FUZZ_TOKEN`] and password [`FUZZ_PASSWORD`], in token mode and in
/// password mode, local and not. Invariants: nothing is accepted without a device unless
/// the secret of the mode in force is presented exactly (never an empty, blank or wrong one,
/// nor the other mode's secret); a non-local client
/// without a device gets no scopes; a node without a device is never accepted.
pub fn connect_auth(data: &[u8]) {
    let Some(Ok(Request { params, .. })) = std::str::from_utf8(data).ok().map(frame::parse_request)
    else {
        return;
    };
    let Ok(p) = ConnectParams::parse(params.as_ref()) else {
        return;
    };
    let auth = p.auth.clone().unwrap_or_default();
    let sent = [auth.token.as_deref(), auth.password.as_deref()];
    for (mode, method, secret) in [
        (AuthMode::Token, "token", FUZZ_TOKEN),
        (AuthMode::Password, "password", FUZZ_PASSWORD),
    ] {
        // Both secrets configured; the mode picks the one that counts.
        let secrets = Secrets {
            mode,
            token: Some(Secret::new(FUZZ_TOKEN)),
            password: Some(Secret::new(FUZZ_PASSWORD)),
        };
        for local in [false, true] {
            let v = rules::decide(&secrets, &p, "fuzz-nonce", local, |_| Pairing::Unknown, 0);
            let Verdict::Accept {
                method: m,
                scopes,
                device_id: None,
                ..
            } = v
            else {
                continue;
            };
            assert_eq!(m, method, "accepted by another method");
            assert!(sent.contains(&Some(secret)), "accepted without the secret");
            assert!(local || scopes.is_empty(), "remote device-less scopes");
            assert_ne!(p.role(), "node", "node accepted without a device");
        }
    }
}

/// Forwarded-header attribution and admission. The first line picks the TCP peer, each
/// further `name: value` line is a request header. Policy: proxies 10.0.0.0/8 and
/// 127.0.0.1 are trusted, clients from 192.0.2.0/24 and 2001:db8::/32 (and loopback) are
/// allowed. Invariants: no forwarding headers means the peer is the client; headers from an
/// untrusted peer are refused; an admitted client is allowed and only a trusted
/// proxy vouches; a loopback peer with no headers is admitted, the same way every time.
pub fn admission(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let Some(peer) = lines.next().and_then(|l| l.trim().parse::<IpAddr>().ok()) else {
        return;
    };
    let mut fwd = Forwarding::default();
    let mut headers: Vec<(String, String)> = Vec::new();
    for l in lines.take(64) {
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
        match name.as_str() {
            "x-forwarded-for" => fwd.xff.push(value.clone()),
            "forwarded" => fwd.forwarded.push(value.clone()),
            "x-real-ip" if fwd.real_ip.is_none() => fwd.real_ip = Some(value.clone()),
            n if n.starts_with("x-forwarded-") => fwd.other = true,
            n if n.starts_with("tailscale-") => fwd.tailscale = true,
            _ => {}
        }
        headers.push((name, value));
    }
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let policy = fuzz_policy(peer.is_ipv4());
    let got = policy.admit(peer, &fwd, &header);
    let canon = crate::guard::ipset::canonical(peer);
    match &got {
        Ok(a) => {
            let client = a.attribution.client();
            assert!(
                client.is_loopback() || policy.allowed.as_ref().is_some_and(|s| s.contains(client))
            );
            match a.attribution {
                Attribution::Direct(ip) => assert!(!fwd.present() && ip == canon),
                Attribution::Proxied { proxy, .. } => {
                    assert!(fwd.present() && policy.trusted_proxies.contains(proxy))
                }
            }
        }
        Err(Refusal::Forwarding(_)) => assert!(fwd.present()),
        Err(Refusal::NotAllowed(ip)) => assert!(!ip.is_loopback()),
    }
    if fwd.present() && !policy.trusted_proxies.contains(canon) {
        assert!(got.is_err(), "headers from an untrusted peer admitted");
    }
    let none = Forwarding::default();
    let no_header = |_: &str| None;
    for lo in ["127.0.0.1", "::1"] {
        let lo: IpAddr = lo.parse().expect("literal");
        let first = policy.admit(lo, &none, &no_header);
        assert_eq!(
            first.as_ref().map(|a| a.attribution),
            Ok(Attribution::Direct(lo))
        );
        assert_eq!(first, policy.admit(lo, &none, &no_header), "unstable");
    }
}

/// The admission policy [`admission`] runs against (trusting the proxies of one family).
fn fuzz_policy(v4: bool) -> Policy {
    let trusted: &[&str] = if v4 {
        &["10.0.0.0/8", "127.0.0.1"]
    } else {
        &["fd00::/8", "::1"]
    };
    Policy {
        allowed: IpSet::parse(&["192.0.2.0/24", "2001:db8::/32"]).ok(),
        allow_loopback: true,
        trusted_proxies: IpSet::parse(trusted).unwrap_or_default(),
        allow_real_ip_fallback: true,
        ..Default::default()
    }
}

/// Config text (JSON5) through `load::parse_str`, the tunnel checks (with a canned
/// `ssh -G`) and the whole resolution for `openclaw gateway` (skipped for `sshHost`
/// tunnels, which would run the real `ssh -G`). Invariants: no panic and no stack overflow
/// at any nesting; a config that resolves re-validates: its schema value written back
/// parses to the same value, and resolving it again gives an empty reload plan.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    with_scratch(|dir| {
        let path = dir.join("openclaw.json5");
        let home = dir.display().to_string();
        let env = move |k: &str| match k {
            "HOME" => Some(home.clone()),
            "FIXTURE_TOKEN" | "GATEWAY_TOKEN" => Some("Abcdefghij0123456789Abcdefghij01".into()),
            _ => None,
        };
        let parsed = load::parse_str(text, &path, &env);
        let Ok(file) = parsed else {
            return;
        };
        let specs = file.tunnels.as_deref().unwrap_or(&[]);
        let _ = tunnels::validate_with(specs, &path, &canned_ssh_g);
        if specs.iter().any(|t| t.ssh_host.is_some()) {
            return; // resolve would run the real `ssh -G`
        }
        if std::fs::write(&path, text).is_err() {
            return;
        }
        let inputs = Inputs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let host = fuzz_host();
        let Ok(first) = config::resolve_with(&inputs, &env, &host) else {
            return;
        };
        let value = serde_json::to_value(&first.file).expect("schema serializes");
        let back = load::parse_str(&value.to_string(), &path, &env).expect("written back parses");
        assert_eq!(serde_json::to_value(&back).ok(), Some(value), "round trip");
        let again = config::resolve_with(&inputs, &env, &host).expect("resolves again");
        assert_eq!(plan::plan(&first, &again), plan::Plan::default());
    });
}

/// `ssh -G` for any alias: a host with one `LocalForward`.
fn canned_ssh_g(alias: &str) -> Result<String, String> {
    Ok(format!(
        "host {alias}\nhostname 127.0.0.1\nuser fuzz\nport 22\n\
         localforward 18789 127.0.0.1:18789\n"
    ))
}

/// A machine with loopback, a LAN and a tailnet address, not in a container.
fn fuzz_host() -> HostInfo {
    HostInfo {
        addrs: Box::new(|| {
            ["127.0.0.1", "::1", "192.168.1.10", "100.100.1.2"]
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect()
        }),
        in_container: Box::new(|| false),
    }
}

/// A scratch directory, removed when its thread ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `f` with this thread's scratch directory (made once, reused).
fn with_scratch(f: impl FnOnce(&Path)) {
    thread_local! {
        static DIR: RefCell<Option<Scratch>> = const { RefCell::new(None) };
    }
    DIR.with(|d| {
        let mut d = d.borrow_mut();
        let dir = d.get_or_insert_with(|| {
            let n = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |t| t.as_nanos());
            Scratch(std::env::temp_dir().join(format!("oc-fuzz-{}-{n}", std::process::id())))
        });
        if std::fs::create_dir_all(&dir.0).is_ok() {
            f(&dir.0);
        }
    });
}

/// `logs.tail` paging over an in-memory file that grows. The first line is the params
/// object, the rest is the file; a first read sees its first half, a second read (at the
/// cursor the first handed out) all of it. Invariants: each read stays within `maxBytes`,
/// `limit` lines and the data; every page is a run of consecutive complete lines of the
/// file (never the rest of a line); reading again at a cursor with nothing appended returns
/// nothing; paging from 0 with no bounds returns every complete line.
pub fn logs_cursor(data: &[u8]) {
    let (head, file) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(params) = serde_json::from_slice::<Value>(head) else {
        return;
    };
    let Ok(p) = TailParams::parse(Some(&params)) else {
        return;
    };
    let prefix = &file[..file.len() / 2];
    let cursor = checked_page(prefix, p);
    let at = TailParams {
        cursor: Some(cursor),
        ..p
    };
    let again = tail_mem(prefix, at);
    assert_eq!(again["cursor"].as_u64(), Some(cursor), "cursor moved");
    assert_eq!(
        again["lines"].as_array().map(Vec::len),
        Some(0),
        "lines repeated"
    );
    checked_page(file, at);
    let all = TailParams {
        cursor: Some(0),
        limit: usize::MAX,
        max_bytes: u64::MAX,
    };
    let whole = tail_mem(file, all);
    let want = file.iter().filter(|b| **b == b'\n').count();
    assert_eq!(
        whole["lines"].as_array().map(Vec::len),
        Some(want),
        "lines lost"
    );
}

/// One page of `file` per `p`, checked; its cursor.
fn checked_page(file: &[u8], p: TailParams) -> u64 {
    let v = tail_mem(file, p);
    let size = file.len() as u64;
    let start = logtail::window(p, size).start;
    let cursor = v["cursor"].as_u64().expect("cursor");
    let lines: Vec<&str> = v["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(size - start <= p.max_bytes, "read past maxBytes");
    assert!(lines.len() <= p.limit, "more than limit lines");
    assert!(
        start <= cursor && cursor <= size,
        "cursor {cursor} outside {start}..={size}"
    );
    let end = file.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&file[..end]);
    let complete: Vec<&str> = text.lines().collect();
    let run = lines.is_empty() || complete.windows(lines.len()).any(|w| w == lines.as_slice());
    assert!(run, "page {lines:?} is not a run of complete lines");
    cursor
}

/// `logtail::tail` over bytes instead of a file (the same window, start rule and page).
fn tail_mem(file: &[u8], p: TailParams) -> Value {
    let size = file.len() as u64;
    let w = logtail::window(p, size);
    let before = (w.start as usize).checked_sub(1).map(|i| file[i]);
    let at_line_start = logtail::starts_line(p, w, before);
    let buf = &file[w.start as usize..];
    logtail::page("fuzz.log".into(), w, size, buf, at_line_start, p)
}
