//! `logs.tail` / `audit.tail` cursor semantics over a file (PROTOCOL §4): without a cursor,
//! the last `limit` lines within `maxBytes` of the end; with a cursor, what was appended
//! since, up to `maxBytes` (older bytes skipped, `truncated`); a cursor past the end
//! (rotation) resets. Only complete lines are returned; `cursor` points after the last one.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde_json::{json, Value};

/// Parsed and validated parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailParams {
    /// Byte offset returned by a previous call.
    pub cursor: Option<u64>,
    /// Max lines (1..=5000, default 200).
    pub limit: usize,
    /// Max bytes read (1..=1_000_000, default 250_000).
    pub max_bytes: u64,
}

// === impl TailParams ===

impl TailParams {
    /// Validates `params`; the error says which field is wrong.
    pub fn parse(params: Option<&Value>) -> Result<Self, String> {
        let empty = json!({});
        let p = params.unwrap_or(&empty);
        if !p.is_object() && !p.is_null() {
            return Err("params must be an object".into());
        }
        let int = |key: &str, min: u64, max: u64| -> Result<Option<u64>, String> {
            match p.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(n) if n >= min && n <= max => Ok(Some(n)),
                    _ => Err(format!("{key} must be an integer between {min} and {max}")),
                },
            }
        };
        Ok(Self {
            cursor: int("cursor", 0, u64::MAX)?,
            limit: int("limit", 1, 5000)?.unwrap_or(200) as usize,
            max_bytes: int("maxBytes", 1, 1_000_000)?.unwrap_or(250_000),
        })
    }
}

/// Reads the tail of `path` per `p`. A missing file is empty, not an error.
pub fn tail(path: &Path, p: TailParams) -> std::io::Result<Value> {
    let file_name = path.display().to_string();
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(json!({"file": file_name, "cursor": 0, "size": 0, "lines": []}));
        }
        Err(e) => return Err(e),
    };
    let size = f.metadata()?.len();
    let w = window(p, size);
    // One byte more in front: whether the window starts a line is read, not assumed.
    let from = w.start.saturating_sub(1);
    f.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::with_capacity((size - from) as usize);
    f.take(size - from).read_to_end(&mut buf)?;
    let (before, buf) = match w.start {
        0 => (None, &buf[..]),
        _ => (buf.first().copied(), buf.get(1..).unwrap_or_default()),
    };
    let at_line_start = starts_line(p, w, before);
    Ok(page(file_name, w, size, buf, at_line_start, p))
}

/// Whether the window `w` starts a line, given the byte before it (`None` at the start of
/// the file). A read without a cursor always drops its first line (it is marked
/// `truncated`). A cursor is not trusted to be a line boundary: the one handed out after a
/// window with no newline at all points into a line, and a client may send any number, so
/// only a preceding `\n` makes the first bytes a line (found by fuzzing: trusting the
/// cursor returned the rest of a line as if it were a whole one).
pub fn starts_line(p: TailParams, w: Window, before: Option<u8>) -> bool {
    w.start == 0 || (p.cursor.is_some() && before == Some(b'\n'))
}

/// Where a read starts, per the cursor rules above, in data that ends at `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First byte to read.
    pub start: u64,
    /// Bytes were left out to stay within `maxBytes`.
    pub truncated: bool,
    /// The cursor was past the end (the file was replaced): read the end again.
    pub reset: bool,
    /// Bytes after the cursor that were skipped to stay within `maxBytes`.
    pub skipped: u64,
}

/// The window to read for `p` in data of `size` bytes.
pub fn window(p: TailParams, size: u64) -> Window {
    let (mut truncated, mut reset, mut skipped) = (false, false, 0);
    let start = match p.cursor {
        Some(c) if c <= size => {
            if size - c > p.max_bytes {
                truncated = true;
                skipped = size - p.max_bytes - c;
                size - p.max_bytes
            } else {
                c
            }
        }
        Some(_) => {
            reset = true;
            size.saturating_sub(p.max_bytes)
        }
        None => size.saturating_sub(p.max_bytes),
    };
    Window {
        start,
        truncated,
        reset,
        skipped,
    }
}

/// The answer for `buf`, the bytes from `w.start` to `size`: complete lines only (a partial
/// first line is dropped unless `at_line_start`), at most `limit` of them.
pub fn page(
    file_name: String,
    w: Window,
    size: u64,
    buf: &[u8],
    at_line_start: bool,
    p: TailParams,
) -> Value {
    let Window {
        start,
        mut truncated,
        reset,
        skipped,
    } = w;
    // Starting mid-line (not at a cursor we handed out): drop the partial first line.
    let mut from = 0usize;
    if !at_line_start {
        match buf.iter().position(|b| *b == b'\n') {
            Some(i) => from = i + 1,
            None => from = buf.len(),
        }
        truncated |= p.cursor.is_none();
    }
    let end = buf
        .iter()
        .rposition(|b| *b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0)
        .max(from);
    let text = String::from_utf8_lossy(&buf[from..end]);
    let mut lines: Vec<&str> = text.lines().collect();
    if lines.len() > p.limit {
        lines.drain(..lines.len() - p.limit);
        truncated = true;
    }
    let mut v = json!({
        "file": file_name,
        "cursor": start + end as u64,
        "size": size,
        "lines": lines,
    });
    if truncated {
        v["truncated"] = json!(true);
    }
    if reset {
        v["reset"] = json!(true);
    }
    if skipped > 0 {
        v["skippedBytes"] = json!(skipped);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("oc-tail-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    fn lines(v: &Value) -> Vec<String> {
        v["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn params_table() {
        assert_eq!(
            TailParams::parse(None).unwrap(),
            TailParams {
                cursor: None,
                limit: 200,
                max_bytes: 250_000
            }
        );
        let ok =
            TailParams::parse(Some(&json!({"cursor": 5, "limit": 3, "maxBytes": 10}))).unwrap();
        assert_eq!(
            ok,
            TailParams {
                cursor: Some(5),
                limit: 3,
                max_bytes: 10
            }
        );
        for bad in [
            json!({"limit": 0}),
            json!({"limit": 5001}),
            json!({"maxBytes": 0}),
            json!({"cursor": -1}),
            json!({"limit": "3"}),
            json!([1]),
        ] {
            assert!(TailParams::parse(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn tail_without_cursor_then_follow() {
        let p = file("a", "one\ntwo\nthree\nfour\n");
        let v = tail(
            &p,
            TailParams {
                cursor: None,
                limit: 2,
                max_bytes: 1000,
            },
        )
        .unwrap();
        assert_eq!(lines(&v), vec!["three", "four"]);
        assert_eq!(v["truncated"], json!(true));
        let cursor = v["cursor"].as_u64().unwrap();
        assert_eq!(cursor, 19);
        // append a full line and a partial one
        std::fs::write(&p, "one\ntwo\nthree\nfour\nfive\nsi").unwrap();
        let v = tail(
            &p,
            TailParams {
                cursor: Some(cursor),
                limit: 200,
                max_bytes: 1000,
            },
        )
        .unwrap();
        assert_eq!(lines(&v), vec!["five"]);
        assert_eq!(
            v["cursor"].as_u64().unwrap(),
            24,
            "cursor stops before the partial line"
        );
        assert!(v.get("truncated").is_none());
    }

    #[test]
    fn a_cursor_inside_a_line_never_yields_the_rest_of_it_as_a_line() {
        // A reset window with no newline hands out the end of the data as the cursor, which
        // is inside the line still being written; following it must not return the line's
        // tail as a line (found by fuzzing, corpus logs_cursor/crash-mid-line-cursor).
        let p = file("c", "first\npartial-li");
        let params = |cursor| TailParams {
            cursor,
            limit: 200,
            max_bytes: 5,
        };
        let v = tail(&p, params(Some(999))).unwrap();
        assert_eq!(lines(&v), Vec::<String>::new());
        let cursor = v["cursor"].as_u64().unwrap();
        std::fs::write(&p, "first\npartial-line\nnext\n").unwrap();
        let v = tail(
            &p,
            TailParams {
                max_bytes: 1000,
                ..params(Some(cursor))
            },
        )
        .unwrap();
        assert_eq!(lines(&v), vec!["next"]);
        // Any cursor a client makes up is treated the same way.
        let v = tail(
            &p,
            TailParams {
                max_bytes: 1000,
                ..params(Some(3))
            },
        )
        .unwrap();
        assert_eq!(lines(&v), vec!["partial-line", "next"]);
        let v = tail(
            &p,
            TailParams {
                max_bytes: 1000,
                ..params(Some(6))
            },
        )
        .unwrap();
        assert_eq!(lines(&v), vec!["partial-line", "next"]);
    }

    #[test]
    fn max_bytes_and_reset() {
        let p = file("b", "aaaa\nbbbb\ncccc\n");
        let v = tail(
            &p,
            TailParams {
                cursor: None,
                limit: 200,
                max_bytes: 7,
            },
        )
        .unwrap();
        assert_eq!(lines(&v), vec!["cccc"]);
        let v = tail(
            &p,
            TailParams {
                cursor: Some(0),
                limit: 200,
                max_bytes: 7,
            },
        )
        .unwrap();
        assert_eq!(lines(&v), vec!["cccc"]);
        assert_eq!(v["skippedBytes"], json!(8));
        let v = tail(
            &p,
            TailParams {
                cursor: Some(999),
                limit: 200,
                max_bytes: 1000,
            },
        )
        .unwrap();
        assert_eq!(v["reset"], json!(true));
        assert_eq!(lines(&v), vec!["aaaa", "bbbb", "cccc"]);
        let missing = tail(
            Path::new("/nonexistent/x.log"),
            TailParams::parse(None).unwrap(),
        )
        .unwrap();
        assert_eq!(missing["size"], json!(0));
    }
}
