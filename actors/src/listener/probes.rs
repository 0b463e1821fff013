//! The health probes (REMOTE-ACCESS-REFERENCE §4), decided without I/O: `/healthz` and
//! `/health` (live), `/readyz` and `/ready` (503 while starting, draining or when the audit
//! log cannot be written), `/startupz` and `/startup`. Only `GET` and `HEAD` (405 with
//! `Allow: GET, HEAD` otherwise); sub-paths are not probes. Local or bearer callers get the
//! details (`failing`, `uptimeMs`, version); others just the verdict.

use serde_json::{json, Value};

/// What the probes need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeState {
    /// Every actor has started.
    pub started: bool,
    /// Shutdown has begun.
    pub draining: bool,
    /// The last audit write failed.
    pub audit_failing: bool,
    /// Milliseconds since start.
    pub uptime_ms: u64,
}

/// A probe's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeAnswer {
    /// Status code and JSON body.
    Json(u16, Value),
    /// 405 `Allow: GET, HEAD`.
    MethodNotAllowed,
}

#[derive(Clone, Copy)]
enum Kind {
    Live,
    Ready,
    Startup,
}

fn kind(path: &str) -> Option<Kind> {
    match path {
        "/healthz" | "/health" => Some(Kind::Live),
        "/readyz" | "/ready" => Some(Kind::Ready),
        "/startupz" | "/startup" => Some(Kind::Startup),
        _ => None,
    }
}

/// Whether `path` is a probe (answered before any admission check).
pub fn is_probe(path: &str) -> bool {
    kind(path).is_some()
}

/// The answer to `method path`, or `None` when it is not a probe.
pub fn answer(method: &str, path: &str, s: ProbeState, detailed: bool) -> Option<ProbeAnswer> {
    let k = kind(path)?;
    if !matches!(method, "GET" | "HEAD") {
        return Some(ProbeAnswer::MethodNotAllowed);
    }
    Some(match k {
        Kind::Live => ProbeAnswer::Json(200, json!({"ok": true, "status": "live"})),
        Kind::Ready => {
            let mut failing = Vec::new();
            if !s.started {
                failing.push("starting");
            }
            if s.draining {
                failing.push("draining");
            }
            if s.audit_failing {
                failing.push("audit-log-unwritable");
            }
            let ready = failing.is_empty();
            let code = if ready { 200 } else { 503 };
            if detailed {
                ProbeAnswer::Json(
                    code,
                    json!({"ready": ready, "failing": failing, "uptimeMs": s.uptime_ms}),
                )
            } else {
                ProbeAnswer::Json(code, json!({"ready": ready}))
            }
        }
        Kind::Startup => {
            let (code, status) = match (s.started, s.draining) {
                (_, true) => (503, "draining"),
                (false, _) => (503, "starting"),
                _ => (200, "started"),
            };
            let mut v = json!({"ok": code == 200, "status": status});
            if detailed {
                v["version"] = json!(crate::shared::VERSION);
                v["uptimeMs"] = json!(s.uptime_ms);
            }
            ProbeAnswer::Json(code, v)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: ProbeState = ProbeState {
        started: true,
        draining: false,
        audit_failing: false,
        uptime_ms: 5,
    };

    #[test]
    fn table() {
        let starting = ProbeState {
            started: false,
            ..UP
        };
        let draining = ProbeState {
            draining: true,
            ..UP
        };
        let audit = ProbeState {
            audit_failing: true,
            ..UP
        };
        let j = |c, v: Value| Some(ProbeAnswer::Json(c, v));
        let cases = [
            (
                "GET",
                "/healthz",
                UP,
                false,
                j(200, json!({"ok": true, "status": "live"})),
            ),
            (
                "HEAD",
                "/health",
                starting,
                false,
                j(200, json!({"ok": true, "status": "live"})),
            ),
            (
                "GET",
                "/readyz",
                UP,
                true,
                j(200, json!({"ready": true, "failing": [], "uptimeMs": 5})),
            ),
            ("GET", "/ready", UP, false, j(200, json!({"ready": true}))),
            (
                "GET",
                "/readyz",
                starting,
                true,
                j(
                    503,
                    json!({"ready": false, "failing": ["starting"], "uptimeMs": 5}),
                ),
            ),
            (
                "GET",
                "/readyz",
                draining,
                false,
                j(503, json!({"ready": false})),
            ),
            (
                "GET",
                "/readyz",
                audit,
                true,
                j(
                    503,
                    json!({"ready": false, "failing": ["audit-log-unwritable"], "uptimeMs": 5}),
                ),
            ),
            (
                "GET",
                "/startupz",
                UP,
                false,
                j(200, json!({"ok": true, "status": "started"})),
            ),
            (
                "GET",
                "/startup",
                starting,
                false,
                j(503, json!({"ok": false, "status": "starting"})),
            ),
            (
                "GET",
                "/startupz",
                draining,
                false,
                j(503, json!({"ok": false, "status": "draining"})),
            ),
            (
                "POST",
                "/healthz",
                UP,
                true,
                Some(ProbeAnswer::MethodNotAllowed),
            ),
            (
                "DELETE",
                "/readyz",
                UP,
                true,
                Some(ProbeAnswer::MethodNotAllowed),
            ),
            ("GET", "/healthz/x", UP, true, None),
            ("GET", "/metrics", UP, true, None),
        ];
        for (m, p, s, d, want) in cases {
            assert_eq!(answer(m, p, s, d), want, "{m} {p} {s:?} detailed={d}");
        }
        let v = answer("GET", "/startupz", UP, true);
        let Some(ProbeAnswer::Json(200, v)) = v else {
            panic!()
        };
        assert_eq!(v["version"], crate::shared::VERSION);
    }
}
