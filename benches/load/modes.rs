//! The three load shapes: `rpc` (sequential request loops), `handshakes` (connect loops) and
//! `idle` (hold many authenticated connections). Each returns a result struct the `report`
//! suite reuses; `json()` gives the rpc-load.mjs-like summary.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{open, Conn, Target};
use crate::stats::{first_errors, r3, summarize, Lat};

/// How long a closing client waits for the server's close frame.
const LINGER: Duration = Duration::from_secs(2);

/// Connections opened in parallel (bounded).
pub struct Opened {
    /// The authenticated connections.
    pub conns: Vec<Conn>,
    /// Handshake latencies.
    pub handshake: Lat,
    /// Failed opens.
    pub errors: Vec<String>,
    /// Wall time to open them all.
    pub open_ms: f64,
    /// Size of the first `hello-ok` frame.
    pub hello_bytes: Option<usize>,
}

/// Opens `n` authenticated connections, at most `parallel` handshakes in flight.
pub async fn open_all(t: &Target, n: usize, parallel: usize) -> Opened {
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..parallel.clamp(1, n.max(1)))
        .map(|_| {
            let (t, next) = (t.clone(), next.clone());
            tokio::spawn(async move {
                let (mut conns, mut hs, mut errs) = (Vec::new(), Vec::new(), Vec::new());
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    match open(&t).await {
                        Ok((c, d)) => {
                            conns.push(c);
                            hs.push(d.as_nanos() as u64);
                        }
                        Err(e) => errs.push(e),
                    }
                }
                (conns, hs, errs)
            })
        })
        .collect();
    let (mut conns, mut hs, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for w in workers {
        let (c, h, e) = w.await.expect("open worker panicked");
        conns.extend(c);
        hs.extend(h);
        errors.extend(e);
    }
    let open_ms = t0.elapsed().as_secs_f64() * 1e3;
    let hello_bytes = conns.first().map(|c| c.hello_bytes);
    Opened {
        conns,
        handshake: summarize(&mut hs),
        errors,
        open_ms,
        hello_bytes,
    }
}

/// What to run in `rpc` mode.
#[derive(Clone)]
pub struct RpcOpts {
    /// Where.
    pub target: Target,
    /// Concurrent connections (one request in flight each).
    pub connections: usize,
    /// Duration of the request loops.
    pub seconds: f64,
    /// Method name.
    pub method: String,
    /// Raw JSON params (none: no `params` key).
    pub params: Option<String>,
    /// Handshakes in flight while opening.
    pub parallel: usize,
}

/// Outcome of an `rpc` run.
pub struct RpcResult {
    /// Connections that completed the handshake.
    pub opened: usize,
    /// Handshake failures.
    pub open_errors: Vec<String>,
    /// Handshake latencies while opening.
    pub handshake: Lat,
    /// Size of the first `hello-ok` frame.
    pub hello_bytes: Option<usize>,
    /// Wall time of the request phase.
    pub elapsed_s: f64,
    /// Responses with ok:true.
    pub ok: u64,
    /// Responses with ok:false.
    pub not_ok: u64,
    /// The first ok:false error shape.
    pub first_not_ok: Option<Value>,
    /// Request latencies.
    pub lat: Lat,
    /// Transport errors / timeouts.
    pub errors: Vec<String>,
    /// Events seen during the loops.
    pub events: u64,
}

#[derive(Default)]
struct LoopOut {
    lat: Vec<u64>,
    ok: u64,
    not_ok: u64,
    first_not_ok: Option<Value>,
    errors: Vec<String>,
    events: u64,
    ended: Option<Instant>,
}

async fn rpc_loop(mut c: Conn, o: Arc<RpcOpts>, deadline: Instant) -> LoopOut {
    let mut out = LoopOut::default();
    while Instant::now() < deadline {
        let s = Instant::now();
        match tokio::time::timeout(o.target.timeout, c.call(&o.method, o.params.as_deref())).await {
            Ok(Ok(r)) => {
                out.lat.push(s.elapsed().as_nanos() as u64);
                if r.ok {
                    out.ok += 1;
                } else {
                    out.not_ok += 1;
                    out.first_not_ok = out.first_not_ok.or(r.error);
                }
            }
            Ok(Err(e)) => {
                out.errors.push(e);
                break; // the socket is gone
            }
            Err(_) => {
                out.errors.push("request timeout".into());
                break; // a late reply would confuse the next call
            }
        }
    }
    out.events = c.events;
    out.ended = Some(Instant::now());
    c.close(LINGER).await;
    out
}

/// Opens the connections, then runs sequential request loops on each for `seconds`.
pub async fn rpc(o: &RpcOpts) -> RpcResult {
    let opened = open_all(&o.target, o.connections, o.parallel).await;
    let shared = Arc::new(o.clone());
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(o.seconds);
    let tasks: Vec<JoinHandle<LoopOut>> = opened
        .conns
        .into_iter()
        .map(|c| tokio::spawn(rpc_loop(c, shared.clone(), deadline)))
        .collect();
    let opened_n = tasks.len();
    let hello_bytes = opened.hello_bytes;
    let mut all = LoopOut::default();
    let mut elapsed_s: f64 = 0.0;
    for t in tasks {
        let r = t.await.expect("rpc loop panicked");
        let end = r
            .ended
            .map(|e| e.duration_since(t0).as_secs_f64())
            .unwrap_or(0.0);
        elapsed_s = elapsed_s.max(end);
        all.lat.extend(r.lat);
        all.ok += r.ok;
        all.not_ok += r.not_ok;
        all.first_not_ok = all.first_not_ok.or(r.first_not_ok);
        all.errors.extend(r.errors);
        all.events += r.events;
    }
    RpcResult {
        opened: opened_n,
        open_errors: opened.errors,
        handshake: opened.handshake,
        hello_bytes,
        elapsed_s: elapsed_s.max(1e-9),
        ok: all.ok,
        not_ok: all.not_ok,
        first_not_ok: all.first_not_ok,
        lat: summarize(&mut all.lat),
        errors: all.errors,
        events: all.events,
    }
}

impl RpcResult {
    /// Completed requests per second (ok or not).
    pub fn req_per_sec(&self) -> f64 {
        self.lat.n as f64 / self.elapsed_s
    }

    /// rpc-load.mjs-like summary.
    pub fn json(&self, o: &RpcOpts) -> Value {
        json!({
            "url": o.target.url, "mode": "rpc", "method": o.method, "connections": o.connections,
            "seconds": o.seconds, "opened": self.opened, "openErrors": self.open_errors.len(),
            "firstOpenErrors": first_errors(&self.open_errors, 5), "handshakeMs": self.handshake.json(),
            "helloBytes": self.hello_bytes, "elapsedS": r3(self.elapsed_s), "requests": self.lat.n, "ok": self.ok, "notOk": self.not_ok,
            "firstNotOk": self.first_not_ok, "reqPerSec": (self.req_per_sec() * 10.0).round() / 10.0,
            "latencyMs": self.lat.json(), "errors": self.errors.len(),
            "firstErrors": first_errors(&self.errors, 5), "eventsReceived": self.events,
        })
    }
}

/// Outcome of a `handshakes` run.
pub struct HsResult {
    /// Concurrent workers.
    pub workers: usize,
    /// Wall time.
    pub elapsed_s: f64,
    /// open -> hello-ok latencies of the successful loops.
    pub lat: Lat,
    /// Failed handshakes.
    pub errors: Vec<String>,
}

async fn hs_worker(t: Target, deadline: Instant) -> (Vec<u64>, Vec<String>) {
    let (mut lat, mut errs) = (Vec::new(), Vec::new());
    while Instant::now() < deadline {
        match open(&t).await {
            Ok((c, d)) => {
                lat.push(d.as_nanos() as u64);
                c.close(LINGER).await;
            }
            Err(e) => {
                errs.push(e);
                if errs.len() > 1000 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    (lat, errs)
}

/// `workers` loops of open -> challenge -> connect -> hello-ok -> close for `seconds`.
pub async fn handshakes(t: &Target, workers: usize, seconds: f64) -> HsResult {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..workers.max(1))
        .map(|_| tokio::spawn(hs_worker(t.clone(), deadline)))
        .collect();
    let (mut lat, mut errors) = (Vec::new(), Vec::new());
    for task in tasks {
        let (l, e) = task.await.expect("handshake worker panicked");
        lat.extend(l);
        errors.extend(e);
    }
    HsResult {
        workers: workers.max(1),
        elapsed_s: t0.elapsed().as_secs_f64(),
        lat: summarize(&mut lat),
        errors,
    }
}

impl HsResult {
    /// Completed handshake loops per second.
    pub fn per_sec(&self) -> f64 {
        self.lat.n as f64 / self.elapsed_s
    }

    /// rpc-load.mjs-like summary.
    pub fn json(&self, url: &str) -> Value {
        json!({
            "url": url, "mode": "handshakes", "workers": self.workers, "elapsedS": r3(self.elapsed_s),
            "handshakes": self.lat.n, "handshakesPerSec": (self.per_sec() * 10.0).round() / 10.0,
            "handshakeMs": self.lat.json(), "errors": self.errors.len(),
            "firstErrors": first_errors(&self.errors, 5),
        })
    }
}

/// A set of held, authenticated, otherwise idle connections.
pub struct IdleSet {
    /// Connections that completed the handshake.
    pub opened: usize,
    /// Failed opens.
    pub errors: Vec<String>,
    /// Handshake latencies.
    pub handshake: Lat,
    /// Wall time to open them all.
    pub open_ms: f64,
    alive: Arc<AtomicUsize>,
    events: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

async fn hold(
    mut c: Conn,
    mut stop: watch::Receiver<bool>,
    alive: Arc<AtomicUsize>,
    events: Arc<AtomicU64>,
) {
    let ours = loop {
        tokio::select! {
            _ = stop.changed() => break true,
            more = c.idle_next() => if !more { break false },
        }
    };
    events.fetch_add(c.events, Ordering::Relaxed);
    alive.fetch_sub(1, Ordering::Relaxed);
    if ours {
        c.close(LINGER).await;
    }
}

/// Opens `n` connections (`parallel` handshakes at a time) and keeps reading each one
/// (answering pings) until [`IdleSet::close`].
pub async fn open_idle(t: &Target, n: usize, parallel: usize) -> IdleSet {
    let o = open_all(t, n, parallel).await;
    let (stop, rx) = watch::channel(false);
    let alive = Arc::new(AtomicUsize::new(o.conns.len()));
    let events = Arc::new(AtomicU64::new(0));
    let opened = o.conns.len();
    let tasks = o
        .conns
        .into_iter()
        .map(|c| tokio::spawn(hold(c, rx.clone(), alive.clone(), events.clone())))
        .collect();
    IdleSet {
        opened,
        errors: o.errors,
        handshake: o.handshake,
        open_ms: o.open_ms,
        alive,
        events,
        stop,
        tasks,
    }
}

impl IdleSet {
    /// Connections still open.
    pub fn alive(&self) -> usize {
        self.alive.load(Ordering::Relaxed)
    }

    /// Closes every connection; returns (alive just before closing, events received).
    pub async fn close(self) -> (usize, u64) {
        let alive = self.alive();
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        (alive, self.events.load(Ordering::Relaxed))
    }
}
