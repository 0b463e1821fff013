//! `openclaw ping`: handshake time, then one `health` round trip per interval, and a
//! ping(8)-style summary (also on Ctrl-C). Exit 1 on total loss.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{block_on, connect, fail, target};
use crate::cli::Global;
use crate::target::TargetArgs;

/// Round-trip statistics (pure).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Stats {
    /// Requests sent.
    pub sent: u64,
    /// Replies received.
    pub rtts_ms: Vec<f64>,
}

// === impl Stats ===

impl Stats {
    /// `(min, avg, max, mdev)` in ms, ping(8)'s definitions (mdev = population std dev).
    pub fn summary(&self) -> Option<(f64, f64, f64, f64)> {
        if self.rtts_ms.is_empty() {
            return None;
        }
        let n = self.rtts_ms.len() as f64;
        let min = self.rtts_ms.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = self.rtts_ms.iter().cloned().fold(0.0, f64::max);
        let avg = self.rtts_ms.iter().sum::<f64>() / n;
        let var = self
            .rtts_ms
            .iter()
            .map(|x| (x - avg) * (x - avg))
            .sum::<f64>()
            / n;
        Some((min, avg, max, var.sqrt()))
    }

    /// Lost percentage.
    pub fn loss_pct(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        100.0 * (self.sent - self.rtts_ms.len() as u64) as f64 / self.sent as f64
    }
}

/// `openclaw ping`.
pub fn ping(global: &Global, args: &TargetArgs, count: Option<u64>, interval: f64) -> i32 {
    if !(0.01..=3600.0).contains(&interval) {
        eprintln!("openclaw ping: -i {interval} is out of range (use 0.01 to 3600 seconds)");
        return 2;
    }
    let t = match target("ping", args, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        let mut c = match connect(&t, args, &["operator.read"]).await {
            Ok(c) => c,
            Err(e) => return fail("ping", &e),
        };
        crate::out!(
            "PING {}: handshake {:.2} ms",
            t.url,
            c.handshake.as_secs_f64() * 1000.0
        );
        let mut stats = Stats::default();
        let mut tick = tokio::time::interval(Duration::from_secs_f64(interval));
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            if count.is_some_and(|n| stats.sent >= n) {
                break;
            }
            tokio::select! {
                _ = &mut ctrl_c => break,
                _ = tick.tick() => {
                    stats.sent += 1;
                    let started = Instant::now();
                    match c.call("health", json!({})).await {
                        Ok(_) => {
                            let ms = started.elapsed().as_secs_f64() * 1000.0;
                            stats.rtts_ms.push(ms);
                            crate::out!("seq={} time={ms:.2} ms", stats.sent);
                        }
                        Err(e) => crate::out!("seq={} {}", stats.sent, e.message()),
                    }
                }
            }
        }
        c.close().await;
        print_summary(&t.url, &stats);
        if stats.rtts_ms.is_empty() {
            1
        } else {
            0
        }
    })
}

fn print_summary(url: &str, s: &Stats) {
    crate::out!("--- {url} ping statistics ---");
    crate::out!(
        "{} requests sent, {} received, {:.0}% loss",
        s.sent,
        s.rtts_ms.len(),
        s.loss_pct()
    );
    if let Some((min, avg, max, mdev)) = s.summary() {
        crate::out!("rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_matches_ping8() {
        let s = Stats {
            sent: 4,
            rtts_ms: vec![1.0, 2.0, 3.0],
        };
        let (min, avg, max, mdev) = s.summary().unwrap();
        assert_eq!((min, avg, max), (1.0, 2.0, 3.0));
        assert!((mdev - (2.0f64 / 3.0).sqrt()).abs() < 1e-9);
        assert_eq!(s.loss_pct(), 25.0);
        assert_eq!(Stats::default().summary(), None);
        assert_eq!(Stats::default().loss_pct(), 0.0);
    }
}
