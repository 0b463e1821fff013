//! The report of `openclaw doctor`: one [`Check`] per line (status, what was found, the fix,
//! evidence lines), as text or JSON, and the exit code. Pure.

use serde_json::{json, Value};

/// Outcome of one check. Ordered: the worst of several is their `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Fine, or does not apply (the detail says `skipped: …`).
    Ok,
    /// Works, but something should be fixed.
    Warn,
    /// Broken: `doctor` exits 1.
    Fail,
}

impl Status {
    /// `OK`, `WARN`, `FAIL` (text output).
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }

    /// `ok`, `warn`, `fail` (JSON output).
    pub fn key(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One line of the report (plus its fix, plus optional evidence lines such as `ssh -v`).
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// `listening`, `gateway`, `token file`, …
    pub name: &'static str,
    /// Verdict.
    pub status: Status,
    /// What was found, one line.
    pub detail: String,
    /// What to do, one line (`None` when OK).
    pub fix: Option<String>,
    /// Evidence printed under the check (firewall rules, `ssh -v` lines).
    pub lines: Vec<String>,
}

impl Check {
    /// An OK check.
    pub fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
            lines: Vec::new(),
        }
    }

    /// A check that does not apply here: OK with `skipped: <why>`.
    pub fn skip(name: &'static str, why: impl AsRef<str>) -> Check {
        Check::ok(name, format!("skipped: {}", why.as_ref()))
    }

    /// A warning with its fix.
    pub fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Warn,
            fix: Some(fix.into()),
            ..Check::ok(name, detail)
        }
    }

    /// A failure with its fix.
    pub fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Fail,
            fix: Some(fix.into()),
            ..Check::ok(name, detail)
        }
    }

    /// Adds evidence lines.
    pub fn with_lines(mut self, lines: Vec<String>) -> Check {
        self.lines = lines;
        self
    }

    /// `{"name", "status", "detail", "fix"}` (+ `"lines"` when there are any).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "status": self.status.key(),
            "detail": self.detail,
            "fix": self.fix,
        });
        if !self.lines.is_empty() {
            v["lines"] = json!(self.lines);
        }
        v
    }
}

/// The text report: `STATUS  name: detail`, then `      fix: …` unless OK, then the
/// evidence lines, indented the same.
pub fn render_text(checks: &[Check]) -> String {
    let mut s = String::new();
    for c in checks {
        s.push_str(&format!(
            "{:<4}  {}: {}\n",
            c.status.label(),
            c.name,
            one_line(&c.detail)
        ));
        if let (Some(fix), false) = (&c.fix, c.status == Status::Ok) {
            s.push_str(&format!("      fix: {}\n", one_line(fix)));
        }
        for l in &c.lines {
            s.push_str(&format!("      {}\n", one_line(l)));
        }
    }
    s
}

/// `{"ok": no FAIL, "checks": [...]}`.
pub fn report_json(checks: &[Check]) -> Value {
    json!({
        "ok": exit_code(checks) == 0,
        "checks": checks.iter().map(Check::to_json).collect::<Vec<_>>(),
    })
}

/// 0 when nothing failed (warnings included), else 1.
pub fn exit_code(checks: &[Check]) -> i32 {
    i32::from(checks.iter().any(|c| c.status == Status::Fail))
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}
