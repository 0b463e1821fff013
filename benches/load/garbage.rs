//! `garbage` mode (issue 14, defect 7): one legitimate client's `health` latency alone, then
//! while N authenticated connections send nothing but invalid frames as fast as their
//! sockets take them (pipelined, reading whatever comes back so they never count as slow
//! consumers, and reconnecting at once whenever the gateway closes them).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{open, Target};
use crate::stats::{summarize, Lat};

/// What the flood did.
#[derive(Default)]
struct Flood {
    sent: AtomicU64,
    answered: AtomicU64,
    reconnects: AtomicU64,
    closed_1008: AtomicU64,
}

/// Sequential `health` calls on `c` for `seconds`: latencies and errors.
async fn legit(c: &mut crate::client::Conn, seconds: f64) -> Result<(Lat, u64), String> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let (mut lat, mut errors) = (Vec::new(), 0u64);
    while Instant::now() < deadline {
        let t0 = Instant::now();
        match c.call("health", None).await {
            Ok(r) if r.ok => lat.push(t0.elapsed().as_nanos() as u64),
            _ => errors += 1,
        }
    }
    Ok((summarize(&mut lat), errors))
}

/// One flooding client: connect, send invalid frames until closed, reconnect.
async fn flooder(t: Target, stop: Arc<AtomicBool>, f: Arc<Flood>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok((c, _)) = open(&t).await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let (mut tx, mut rx) = c.into_ws().split();
        let fr = f.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(m)) = rx.next().await {
                match m {
                    Message::Text(_) => {
                        fr.answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Message::Close(Some(cf)) if u16::from(cf.code) == 1008 => {
                        fr.closed_1008.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Message::Close(_) => break,
                    _ => {}
                }
            }
        });
        'send: while !stop.load(Ordering::Relaxed) && !reader.is_finished() {
            for _ in 0..16 {
                if tx.feed(Message::text("not a frame")).await.is_err() {
                    break 'send;
                }
                f.sent.fetch_add(1, Ordering::Relaxed);
            }
            if tx.flush().await.is_err() {
                break;
            }
        }
        reader.abort();
        f.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs the baseline, then the flood; JSON with both latencies and their ratio.
pub async fn run(t: &Target, connections: usize, seconds: f64) -> Result<Value, String> {
    // Opened before the flood: the flood's reconnects fill the pre-auth cap of loopback.
    let (mut c, _) = open(t).await?;
    let (alone, alone_err) = legit(&mut c, seconds).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let flood = Arc::new(Flood::default());
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(flooder(t.clone(), stop.clone(), flood.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (under, under_err) = legit(&mut c, seconds).await?;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Ok(json!({
        "floodConnections": connections,
        "seconds": seconds,
        "alone": alone.json(),
        "aloneErrors": alone_err,
        "underFlood": under.json(),
        "underFloodErrors": under_err,
        "p50Ratio": ratio(under.p50, alone.p50),
        "p99Ratio": ratio(under.p99, alone.p99),
        "garbageSent": n(&flood.sent),
        "garbageAnswered": n(&flood.answered),
        "closed1008": n(&flood.closed_1008),
        "reconnects": n(&flood.reconnects),
    }))
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        (a / b * 100.0).round() / 100.0
    } else {
        0.0
    }
}
