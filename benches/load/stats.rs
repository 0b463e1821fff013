//! Latency summaries (same percentile rule as rpc-load.mjs: the ceil(p·n)-th smallest).

use serde_json::{json, Value};

/// Summary of a latency sample, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lat {
    /// Sample count.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    ms(sorted[i.clamp(1, sorted.len()) - 1])
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Summarises latencies given in nanoseconds (sorts them in place).
pub fn summarize(ns: &mut [u64]) -> Lat {
    ns.sort_unstable();
    let n = ns.len();
    let sum: u128 = ns.iter().map(|&x| x as u128).sum();
    Lat {
        n,
        mean: if n == 0 {
            0.0
        } else {
            sum as f64 / n as f64 / 1e6
        },
        p50: pct(ns, 50.0),
        p90: pct(ns, 90.0),
        p99: pct(ns, 99.0),
        max: ns.last().map(|&x| ms(x)).unwrap_or(0.0),
    }
}

/// Rounds to 3 decimals for printing.
pub fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Lat {
    /// JSON form (ms, 3 decimals).
    pub fn json(&self) -> Value {
        json!({
            "n": self.n, "mean": r3(self.mean), "p50": r3(self.p50), "p90": r3(self.p90),
            "p99": r3(self.p99), "max": r3(self.max),
        })
    }
}

/// Distinct first few error messages.
pub fn first_errors(errors: &[String], k: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in errors {
        if out.len() == k {
            break;
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    out
}
