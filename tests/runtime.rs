//! The actor runtime in-process (tests/common/inproc.rs): several gateways in one process,
//! and the time-driven behaviour under paused tokio time — presence coalescing, root
//! restart backoff and intensity, the handshake timeout — plus the one reply path (slow
//! consumers close 1008, the per-session in-flight cap) and `config.get` after a reload.
//!
//! Paused time auto-advances whenever the runtime has nothing to do, including while it
//! waits on the blocking pool or the audit thread, so a timeout could fire early there:
//! tests whose critical path leaves the runtime (disk reads, large writes) use real time.

mod common;

use std::time::Duration;

use common::inproc::InProc;
use common::{patience, Client, Closed, TOKEN};
use openclaw_actors::presence::{PresenceActor, PresenceArgs, PresenceMsg, PRESENCE_COALESCE};
use openclaw_actors::root::{BACKOFF, INTENSITY};
use openclaw_actors::session::{SessionMsg, SessionRef, MAX_IN_FLIGHT};
use openclaw_actors::shared::Counters;
use ractor::Actor;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Counts the `event` broadcasts a stand-in session's mailbox received (and empties it).
fn drain(rx: &mut mpsc::UnboundedReceiver<Box<SessionMsg>>, event: &str) -> usize {
    let mut n = 0;
    while let Ok(m) = rx.try_recv() {
        if let SessionMsg::Event(b) = *m {
            n += usize::from(b.event == event);
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_run_in_one_process_each_with_its_own_tree() {
    let a = InProc::start(None, &[]).await;
    let b = InProc::start(None, &[]).await;
    assert_ne!(a.port(), b.port());
    let (mut ca, hello_a) = Client::authed(&a.url(), TOKEN).await;
    let (mut cb, hello_b) = Client::authed(&b.url(), TOKEN).await;
    assert_ne!(hello_a["server"]["bootId"], hello_b["server"]["bootId"]);
    assert_eq!(ca.call("health", json!({})).await["ok"], true);
    assert_eq!(cb.call("health", json!({})).await["ok"], true);
    // each counts only its own connection
    let st = cb.call("status", json!({})).await;
    assert_eq!(st["payload"]["connections"]["active"], 1, "{st}");
    a.gw.stop("test").await;
    assert_eq!(
        cb.call("health", json!({})).await["ok"],
        true,
        "b outlives a"
    );
    assert_eq!(Counters::get(&b.hub().counters.auth_ok), 1);
    assert!(b.gw.stop("test").await);
}

#[tokio::test(start_paused = true)]
async fn presence_broadcasts_are_coalesced() {
    let gw = InProc::start(Some("{ gateway: { tickIntervalMs: 60000 } }"), &[]).await;
    let (presence, _) = Actor::spawn(None, PresenceActor, PresenceArgs::from_hub(gw.hub()))
        .await
        .unwrap();
    let mut probes = Vec::new();
    for i in 0..10 {
        let (p, rx) = SessionRef::detached();
        presence
            .cast(PresenceMsg::Join {
                conn_id: format!("c{i}"),
                session: p.clone(),
                listed: true,
                scopes: vec!["operator.read".into()],
                node: false,
            })
            .unwrap();
        probes.push((p, rx));
    }
    tokio::time::sleep(PRESENCE_COALESCE / 2).await;
    for (_, rx) in probes.iter_mut() {
        assert_eq!(
            drain(rx, "presence"),
            0,
            "nothing before the coalescing delay"
        );
    }
    tokio::time::sleep(PRESENCE_COALESCE).await;
    for (_, rx) in probes.iter_mut() {
        assert_eq!(drain(rx, "presence"), 1, "ten joins, one broadcast");
    }
    // a join and a leave close together: one more broadcast; unlisted clients: none
    let (p, mut extra) = SessionRef::detached();
    let join = |id: &str, listed| PresenceMsg::Join {
        conn_id: id.into(),
        session: p.clone(),
        listed,
        scopes: vec!["operator.read".into()],
        node: false,
    };
    presence.cast(join("x", true)).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    presence
        .cast(PresenceMsg::Leave {
            conn_id: "c0".into(),
        })
        .unwrap();
    tokio::time::sleep(PRESENCE_COALESCE * 2).await;
    for (_, rx) in probes.iter_mut().skip(1) {
        assert_eq!(drain(rx, "presence"), 1);
    }
    assert_eq!(drain(&mut extra, "presence"), 1);
    presence.cast(join("cli", false)).unwrap();
    tokio::time::sleep(PRESENCE_COALESCE * 2).await;
    assert_eq!(
        drain(&mut probes[1].1, "presence"),
        0,
        "an unlisted join is quiet"
    );
    // ticks at the configured interval, to everyone joined
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(drain(&mut probes[1].1, "tick"), 1);
    presence.stop(None);
    gw.gw.stop("test").await;
}

/// Kills the presence actor and waits for the root to put a new one in its slot; returns
/// how long that took (virtual time).
async fn kill_presence(gw: &InProc) -> Duration {
    let old = gw.gw.peers.presence.get().expect("presence running");
    let t0 = Instant::now();
    old.kill();
    for _ in 0..100_000 {
        if let Some(new) = gw.gw.peers.presence.get() {
            if new.get_id() != old.get_id() {
                return t0.elapsed();
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("presence was not restarted");
}

#[tokio::test(start_paused = true)]
async fn root_restarts_a_crashed_child_with_backoff_then_escalates() {
    let mut gw = InProc::start(Some("{ gateway: { tickIntervalMs: 1000 } }"), &[]).await;
    for attempt in 1..=INTENSITY.max_restarts as u32 {
        let took = kill_presence(&gw).await;
        let (lo, hi) = (BACKOFF.delay(attempt, 0.999), BACKOFF.delay(attempt, 0.0));
        assert!(
            took >= lo && took <= hi + Duration::from_millis(5),
            "restart {attempt} after {took:?}, want {lo:?}..{hi:?}"
        );
    }
    // The restarted child is wired in: a new session joins it and gets its ticks.
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    let tick = c.recv().await;
    assert_eq!(tick["event"], "tick", "{tick}");
    // One more crash inside the window exceeds the intensity: the root gives up.
    gw.gw.peers.presence.get().unwrap().kill();
    let ended = tokio::time::timeout(Duration::from_secs(30), &mut gw.gw.join).await;
    assert!(
        ended.is_ok(),
        "the root stops after more than {} restarts",
        INTENSITY.max_restarts
    );
}

#[tokio::test(start_paused = true)]
async fn restart_intensity_counts_only_crashes_within_its_period() {
    let mut gw = InProc::start(None, &[]).await;
    for _ in 0..INTENSITY.max_restarts {
        kill_presence(&gw).await;
    }
    tokio::time::sleep(INTENSITY.period + Duration::from_secs(1)).await;
    for _ in 0..INTENSITY.max_restarts {
        kill_presence(&gw).await;
    }
    let still = tokio::time::timeout(Duration::from_secs(1), &mut gw.gw.join).await;
    assert!(
        still.is_err(),
        "crashes spread over two periods do not escalate"
    );
    assert!(gw.gw.stop("test").await);
}

#[tokio::test(start_paused = true)]
async fn handshake_timeout_closes_1000_and_is_counted() {
    let gw = InProc::start(None, &[("OPENCLAW_HANDSHAKE_TIMEOUT_MS", "3000")]).await;
    let timeout = gw.hub().settings().handshake_timeout;
    let mut c = Client::connect(&gw.url()).await;
    let ch = c.recv().await;
    assert_eq!(ch["event"], "connect.challenge");
    let t0 = Instant::now();
    assert_eq!(c.closed().await, Closed::Code(1000, String::new()));
    assert!(
        t0.elapsed() >= timeout - Duration::from_millis(10),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(Counters::get(&gw.hub().counters.handshake_timeouts), 1);
    gw.gw.stop("test").await;
}

/// Writes a log file of `lines` lines of ~200 bytes where `logs.tail` reads.
fn big_log(gw: &InProc, lines: usize) {
    let path = &gw.hub().settings().log_file;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let line = format!("{}\n", "x".repeat(199));
    std::fs::write(path, line.repeat(lines)).unwrap();
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_1008_and_memory_stays_bounded() {
    let gw = InProc::start(None, &[]).await;
    big_log(&gw, 5_000); // each logs.tail answer is about 1 MB
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    let before = rss_kib();
    // Pipeline 2,000 requests (2 GB of answers if all were queued) and read nothing.
    let mut peak = before;
    for i in 0..2_000 {
        c.req("logs.tail", json!({"limit": 5000, "maxBytes": 1_000_000}))
            .await;
        if i % 100 == 0 {
            peak = peak.max(rss_kib());
        }
        if Counters::get(&gw.hub().counters.slow_consumers) > 0 {
            break;
        }
    }
    let deadline = std::time::Instant::now() + patience();
    while Counters::get(&gw.hub().counters.slow_consumers) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "never closed as a slow consumer"
        );
        peak = peak.max(rss_kib());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    peak = peak.max(rss_kib());
    // Reading again, the client gets what was on the wire, then the close.
    let mut frames = 0;
    while c.ws_next().await.is_some() {
        frames += 1;
    }
    assert_eq!(
        c.closed_after_stream_end(),
        Closed::Code(1008, "slow consumer".into()),
        "after {frames} frames"
    );
    let grown_mib = peak.saturating_sub(before) / 1024;
    assert!(grown_mib < 400, "memory grew by {grown_mib} MiB");
    // the gateway carries on
    let (mut d, _) = Client::authed(&gw.url(), TOKEN).await;
    assert_eq!(d.call("health", json!({})).await["ok"], true);
    gw.gw.stop("test").await;
}

/// Makes `logs.tail` block: the log path is a FIFO (a hard link to `fifo`), so opening it
/// for reading waits for a writer. Dropping it releases every job: a regular file replaces
/// the log path (jobs that start later do not block), then a writer held open for a moment
/// lets the blocked ones through, and its close gives them EOF.
struct BlockingLog {
    log: std::path::PathBuf,
    fifo: std::path::PathBuf,
}

impl BlockingLog {
    fn new(log: std::path::PathBuf) -> Self {
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        let fifo = log.with_extension("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo {}", fifo.display());
        std::fs::hard_link(&fifo, &log).unwrap();
        Self { log, fifo }
    }
}

impl Drop for BlockingLog {
    fn drop(&mut self) {
        use std::os::unix::fs::OpenOptionsExt;
        let plain = self.log.with_extension("plain");
        std::fs::write(&plain, "").unwrap();
        std::fs::rename(&plain, &self.log).unwrap();
        let writer = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.fifo);
        std::thread::sleep(Duration::from_secs(1));
        drop(writer);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_in_flight_cap_a_request_gets_a_retryable_error_and_the_socket_stays_usable() {
    let gw = InProc::start(None, &[]).await;
    let release = BlockingLog::new(gw.hub().settings().log_file.clone());
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    // Every logs.tail now blocks opening the FIFO, so none finishes until released.
    let extra = 16;
    let mut ids = Vec::new();
    for _ in 0..MAX_IN_FLIGHT + extra {
        ids.push(c.req("logs.tail", json!({})).await);
    }
    // The first MAX_IN_FLIGHT stay in flight; the rest are refused at once, retryably.
    let mut refused = std::collections::BTreeSet::new();
    while refused.len() < extra {
        let r = c.recv().await;
        if r["type"] != "res" {
            continue;
        }
        let id = r["id"].as_str().unwrap().to_string();
        assert!(
            ids[MAX_IN_FLIGHT..].contains(&id),
            "{id} answered while blocked: {r}"
        );
        assert_eq!(r["ok"], false, "{r}");
        assert_eq!(r["error"]["retryable"], true, "{r}");
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("in flight"),
            "{r}"
        );
        refused.insert(id);
    }
    assert_eq!(
        c.call("health", json!({})).await["ok"],
        true,
        "still usable"
    );
    drop(release);
    let mut answered = std::collections::BTreeSet::new();
    while answered.len() < MAX_IN_FLIGHT {
        let r = c.recv().await;
        if r["type"] == "res" {
            answered.insert(r["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(answered, ids[..MAX_IN_FLIGHT].iter().cloned().collect());
    let st = c.call("status", json!({})).await;
    assert_eq!(st["payload"]["requestsOverInFlight"], extra as u64, "{st}");
    assert_eq!(st["payload"]["slowConsumers"], 0);
    gw.gw.stop("test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_get_agrees_with_status_after_a_reload() {
    let gw = InProc::start(None, &[]).await;
    let (mut c, _) = Client::authed(&gw.url(), TOKEN).await;
    let before = c.call("config.get", json!({})).await["payload"].clone();
    let text = r#"{ gateway: { rateLimit: { maxRequests: 500, windowMs: 60000 }, handshakeTimeoutMs: 5000 } }"#;
    std::fs::write(gw.config_path(), text).unwrap();
    let out = gw.gw.reload("request").await;
    assert_eq!(out["ok"], true, "{out}");
    let got = c.call("config.get", json!({})).await["payload"].clone();
    let st = c.call("status", json!({})).await["payload"].clone();
    assert_ne!(got["hash"], before["hash"]);
    assert_eq!(
        got["config"]["gateway"]["rateLimit"]["maxRequests"], 500,
        "{got}"
    );
    assert_eq!(st["security"]["rateLimit"]["maxRequests"], 500, "{st}");
    assert_eq!(got["generation"], st["security"]["reload"]["generation"]);
    let pending = json!(["gateway.handshakeTimeoutMs"]);
    assert_eq!(got["restartRequired"], pending);
    assert_eq!(st["security"]["reload"]["restartRequired"], pending);
    assert_eq!(
        got["effective"]["handshakeTimeoutMs"], before["effective"]["handshakeTimeoutMs"],
        "the timeout in force is unchanged until a restart"
    );
    assert_eq!(Counters::get(&gw.hub().counters.reloads), 1);
    gw.gw.stop("test").await;
}
