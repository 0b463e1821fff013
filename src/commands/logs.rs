//! `openclaw logs`: the audit log. Locally it reads `<stateDir>/logs/audit.jsonl` and its
//! rotated files `audit.jsonl.N` … `.1` as one stream (works even when the gateway is
//! down); for a remote target it calls `audit.tail` with the same cursor semantics. `--filter auth|conn|tunnel|…` keeps events of that family.

use std::time::Duration;

use openclaw_actors::audit::read::tail;
use openclaw_actors::session::logtail::TailParams;
use serde_json::{json, Value};

use super::{block_on, connect, fail, target};
use crate::cli::Global;
use crate::client::Conn;
use crate::target::{Target, TargetArgs};

/// Options of `openclaw logs`.
pub struct LogsOpts {
    /// Event family (`auth`, `conn`, …).
    pub filter: Option<String>,
    /// Keep printing.
    pub follow: bool,
    /// Last N events.
    pub limit: usize,
    /// Raw JSON lines.
    pub json: bool,
}

/// Whether an audit event belongs to `family` (`auth` matches `auth.ok`, `auth.fail`;
/// `conn` also matches `session.*`).
pub fn matches(event: &Value, family: Option<&str>) -> bool {
    let Some(f) = family else { return true };
    let name = event["event"].as_str().unwrap_or("");
    let fam = name.split('.').next().unwrap_or("");
    // Limits are also conn/auth events: refusals for too many connections, and lockouts.
    let limit = name == "auth.lockout"
        || (name == "conn.denied"
            && matches!(
                event["reason"].as_str(),
                Some("max_connections" | "preauth_cap")
            ));
    let tailscale_auth = event["reason"]
        .as_str()
        .is_some_and(|r| r.starts_with("tailscale_"))
        || event["method"] == "tailscale";
    fam == f
        || (f == "tailscale" && tailscale_auth)
        || (f == "conn" && fam == "session")
        || (f == "auth" && fam == "device")
        || (f == "ratelimit" && limit)
}

/// One human line: time, event, then the fields.
pub fn render(event: &Value) -> String {
    let ts = event["ts"].as_i64().unwrap_or(0);
    let mut out = format!("{} {}", iso(ts), event["event"].as_str().unwrap_or("?"));
    if let Some(m) = event.as_object() {
        for (k, v) in m {
            if matches!(k.as_str(), "ts" | "seq" | "event") {
                continue;
            }
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push_str(&format!(" {k}={s}"));
        }
    }
    out
}

/// RFC 3339 UTC with milliseconds, without a date crate.
fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = openclaw_actors::shared::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// `openclaw logs`.
pub fn logs(global: &Global, args: &TargetArgs, o: LogsOpts) -> i32 {
    if !(1..=5000).contains(&o.limit) {
        eprintln!(
            "openclaw logs: --limit {} is out of range (1 to 5000)",
            o.limit
        );
        return 2;
    }
    let t = match target("logs", args, global) {
        Ok(t) => t,
        Err(c) => return c,
    };
    block_on(async move {
        let mut conn = None;
        if !t.local {
            match connect(&t, args, &["operator.read"]).await {
                Ok(c) => conn = Some(c),
                Err(e) => return fail("logs", &e),
            }
        }
        let mut cursor = None;
        let mut first = true;
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            // The first read takes a wide window so that --limit counts *matching* events.
            let max_bytes = if first { 1_000_000 } else { 250_000 };
            let params = TailParams {
                cursor,
                limit: 5000,
                max_bytes,
            };
            let page = match read_page(&t, conn.as_mut(), params).await {
                Ok(p) => p,
                Err(code) => return code,
            };
            cursor = page["cursor"].as_u64();
            print_page(&page, &o, first);
            first = false;
            if !o.follow {
                return 0;
            }
            tokio::select! {
                _ = &mut ctrl_c => return 0,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    })
}

async fn read_page(t: &Target, conn: Option<&mut Conn>, p: TailParams) -> Result<Value, i32> {
    match conn {
        Some(c) => {
            let params = json!({"cursor": p.cursor, "limit": p.limit, "maxBytes": p.max_bytes});
            c.call("audit.tail", params)
                .await
                .map_err(|e| fail("logs", &e))
        }
        None => {
            let path = t.state_dir.join("logs").join("audit.jsonl");
            tail(&path, p).map_err(|e| {
                eprintln!("openclaw logs: cannot read {}: {e}", path.display());
                1
            })
        }
    }
}

fn print_page(page: &Value, o: &LogsOpts, first: bool) {
    let events: Vec<(String, Value)> = page["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str())
        .filter_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .map(|v| (l.to_string(), v))
        })
        .filter(|(_, v)| matches(v, o.filter.as_deref()))
        .collect();
    let skip = if first {
        events.len().saturating_sub(o.limit)
    } else {
        0
    };
    for (raw, v) in events.into_iter().skip(skip) {
        if o.json {
            crate::out!("{raw}");
        } else {
            crate::out!("{}", render(&v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_table() {
        let ev = |e: &str| match e.split_once('/') {
            Some((e, reason)) => json!({"event": e, "reason": reason}),
            None => json!({"event": e}),
        };
        let cases = [
            ("ratelimit.hit", Some("ratelimit"), true),
            ("auth.lockout", Some("ratelimit"), true),
            ("auth.lockout", Some("auth"), true),
            ("conn.denied/max_connections", Some("ratelimit"), true),
            ("conn.denied/preauth_cap", Some("ratelimit"), true),
            ("conn.denied/allowlist", Some("ratelimit"), false),
            ("conn.denied/allowlist", Some("conn"), true),
            ("config.reload", Some("config"), true),
            ("auth.fail", Some("auth"), true),
            ("auth.ok", Some("auth"), true),
            ("device.approved", Some("auth"), true),
            ("conn.open", Some("auth"), false),
            ("conn.close", Some("conn"), true),
            ("session.crashed", Some("conn"), true),
            ("tunnel.up", Some("tunnel"), true),
            ("gateway.start", None, true),
            ("tailscale.whois", Some("tailscale"), true),
            (
                "auth.fail/tailscale_user_not_allowed",
                Some("tailscale"),
                true,
            ),
            ("auth.fail/token_mismatch", Some("tailscale"), false),
        ];
        for (e, f, want) in cases {
            assert_eq!(matches(&ev(e), f), want, "{e} {f:?}");
        }
    }

    #[test]
    fn render_and_iso() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_795_566_074_253), "2026-11-25T00:21:14.253Z");
        let line = render(
            &json!({"ts": 0, "seq": 1, "event": "auth.fail", "reason": "token_mismatch", "code": 7}),
        );
        assert_eq!(
            line,
            "1970-01-01T00:00:00.000Z auth.fail code=7 reason=token_mismatch"
        );
    }
}
