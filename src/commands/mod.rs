//! Client commands: each resolves its target, runs on a small current-thread runtime, and
//! returns the process exit code (0 ok, 1 unreachable or failed, 2 auth rejected or bad input).

pub mod admin;
pub mod devices;
pub mod doctor;
pub mod logs;
pub mod nodes;
pub mod ping;
pub mod query;
pub mod token;
pub mod trace;
pub mod tunnel;

use std::time::Duration;

use crate::client::{ClientError, Conn};
use crate::target::{Target, TargetArgs};

/// Runs an async command body on a current-thread runtime.
pub fn block_on<F: std::future::Future<Output = i32>>(f: F) -> i32 {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("openclaw: cannot start the runtime: {e}");
            1
        }
    }
}

/// Prints a client error on one line and returns its exit code.
pub fn fail(cmd: &str, e: &ClientError) -> i32 {
    eprintln!("openclaw {cmd}: {}", e.message());
    e.exit_code()
}

/// Resolves the target or prints why not (exit 2).
pub fn target(cmd: &str, args: &TargetArgs, global: &crate::cli::Global) -> Result<Target, i32> {
    crate::target::resolve(args, global).map_err(|e| {
        eprintln!("openclaw {cmd}: {e}");
        2
    })
}

/// Connects with `scopes`, honouring `--timeout`.
pub async fn connect(t: &Target, args: &TargetArgs, scopes: &[&str]) -> Result<Conn, ClientError> {
    Conn::open(t, scopes, Duration::from_millis(args.timeout.max(1))).await
}

/// Connects with `scopes`, makes one call, closes: `(hello-ok payload, result)`.
pub async fn call_once(
    t: &Target,
    args: &TargetArgs,
    scopes: &[&str],
    method: &str,
    params: serde_json::Value,
) -> Result<(serde_json::Value, serde_json::Value), ClientError> {
    let mut c = connect(t, args, scopes).await?;
    let res = c.call(method, params).await;
    let hello = std::mem::take(&mut c.hello);
    c.close().await;
    res.map(|v| (hello, v))
}

/// A number, or `-` when absent (pids, durations in tables).
pub fn num_or_dash(v: &serde_json::Value) -> String {
    v.as_u64()
        .map(|n| n.to_string())
        .unwrap_or_else(|| "-".into())
}

/// Pretty JSON for `--json`.
pub fn print_json(v: &serde_json::Value) {
    crate::out!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// `1h02m`, `3m12s`, `45s`.
pub fn human_duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        assert_eq!(super::human_duration(5_000), "5s");
        assert_eq!(super::human_duration(192_000), "3m12s");
        assert_eq!(super::human_duration(3_720_000), "1h02m");
        assert_eq!(super::human_duration(90_000_000), "1d01h");
    }
}
