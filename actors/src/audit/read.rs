//! Reading the audit log across rotated files: `audit.jsonl.N` … `audit.jsonl.1`,
//! `audit.jsonl`, oldest first, seen as one stream. Each file's place in that stream (its
//! `base`) is the `offset` of the `audit.rotated` line it starts with (see [`super::rotate`]);
//! a file without one follows the file before it (the oldest starts at 0). The `audit.tail`
//! cursor is a position in the stream, so it stays valid across rotations: a page that
//! spans one loses and repeats nothing. Without any rotation the stream is the file itself
//! and the cursor its byte offset, as for `logs.tail`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::rotate::numbered;
use crate::session::logtail::{page, window, TailParams};

/// One file of the audit log.
#[derive(Debug)]
pub struct Segment {
    /// The file.
    pub path: PathBuf,
    /// Where its first byte sits in the whole log.
    pub base: u64,
    /// Its size when opened.
    pub size: u64,
    file: File,
}

/// Attempts at a consistent listing while the writer may rotate.
const LIST_ATTEMPTS: usize = 5;

/// The files of the log at `path`, oldest first, each opened (a rotation while reading
/// does not move an open file's bytes). Missing files are left out.
pub fn segments(path: &Path) -> std::io::Result<Vec<Segment>> {
    let mut segs = list(path)?;
    for _ in 1..LIST_ATTEMPTS {
        if contiguous(&segs) {
            break;
        }
        // A rotation ran between two opens: list again.
        segs = list(path)?;
    }
    Ok(segs)
}

/// The tail of the whole log per `p` (the `logs.tail` cursor rules on the stream); `file`
/// names the current file. A cursor older than the oldest kept file skips to its start.
pub fn tail(path: &Path, p: TailParams) -> std::io::Result<Value> {
    let file_name = path.display().to_string();
    let segs = segments(path)?;
    let (Some(first), Some(last)) = (segs.first(), segs.last()) else {
        return Ok(json!({"file": file_name, "cursor": 0, "size": 0, "lines": []}));
    };
    let (origin, end) = (first.base, last.base + last.size);
    let mut w = window(p, end);
    if w.start < origin {
        if p.cursor.is_some() && !w.reset {
            w.skipped += origin - w.start;
            w.truncated = true;
        }
        w.start = origin;
    }
    // A file's first byte starts a line. Elsewhere a cursor is not trusted to be a line
    // boundary (one handed out inside a line, or any number a client sends): the byte before
    // the window is read, and only a `\n` there makes the first bytes a line (as
    // `logs.tail` does since fuzzing found the same flaw there).
    let file_start = segs.iter().any(|s| s.base == w.start);
    let from = if file_start { w.start } else { w.start - 1 };
    let raw = read_range(&segs, from, end)?;
    let (before, buf) = match from < w.start {
        true => (raw.first().copied(), raw.get(1..).unwrap_or_default()),
        false => (None, &raw[..]),
    };
    let at_line_start = file_start || (p.cursor.is_some() && before == Some(b'\n'));
    Ok(page(file_name, w, end, buf, at_line_start, p))
}

/// Opens `.N` … `.1` and the file itself, with each one's base.
fn list(path: &Path) -> std::io::Result<Vec<Segment>> {
    let mut n = 0;
    while numbered(path, n + 1).exists() {
        n += 1;
    }
    let mut segs: Vec<Segment> = Vec::with_capacity(n + 1);
    for i in (0..=n).rev() {
        let p = numbered(path, i);
        let mut file = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let size = file.metadata()?.len();
        let follows = segs.last().map_or(0, |s| s.base + s.size);
        let base = header_offset(&mut file)?.unwrap_or(follows);
        segs.push(Segment {
            path: p,
            base,
            size,
            file,
        });
    }
    // The same file seen twice (renamed between two opens) is one segment.
    segs.sort_by_key(|s| s.base);
    segs.dedup_by(|b, a| {
        let same = a.base == b.base;
        if same && b.size > a.size {
            std::mem::swap(a, b);
        }
        same
    });
    Ok(segs)
}

/// Whether each file starts where the one before ends.
fn contiguous(segs: &[Segment]) -> bool {
    segs.windows(2).all(|w| w[0].base + w[0].size == w[1].base)
}

/// The `offset` of an `audit.rotated` first line.
fn header_offset(f: &mut File) -> std::io::Result<Option<u64>> {
    let mut head = Vec::with_capacity(512);
    f.by_ref().take(4096).read_to_end(&mut head)?;
    let Some(nl) = head.iter().position(|b| *b == b'\n') else {
        return Ok(None);
    };
    let v: Value = serde_json::from_slice(&head[..nl]).unwrap_or(Value::Null);
    Ok((v["event"] == "audit.rotated")
        .then(|| v["offset"].as_u64())
        .flatten())
}

/// The stream's bytes from `start` to `end`.
fn read_range(segs: &[Segment], start: u64, end: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(end.saturating_sub(start) as usize);
    for s in segs {
        let (from, to) = (start.max(s.base), end.min(s.base + s.size));
        if from >= to {
            continue;
        }
        let mut f = &s.file;
        f.seek(SeekFrom::Start(from - s.base))?;
        f.take(to - from).read_to_end(&mut buf)?;
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("oc-audit-read-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn lines(v: &Value) -> Vec<String> {
        v["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    }

    fn params(cursor: Option<u64>, limit: usize, max_bytes: u64) -> TailParams {
        TailParams {
            cursor,
            limit,
            max_bytes,
        }
    }

    /// `.2` = a b, `.1` = header(offset of .1) c, current = header d e.
    fn rotated_log(d: &Path) -> PathBuf {
        let p = d.join("audit.jsonl");
        let older = "{\"seq\":1}\n{\"seq\":2}\n";
        let h1 = format!(
            "{{\"seq\":3,\"event\":\"audit.rotated\",\"offset\":{}}}\n",
            older.len()
        );
        let mid = format!("{h1}{{\"seq\":4}}\n");
        let h0 = format!(
            "{{\"seq\":5,\"event\":\"audit.rotated\",\"offset\":{}}}\n",
            older.len() + mid.len()
        );
        std::fs::write(numbered(&p, 2), older).unwrap();
        std::fs::write(numbered(&p, 1), &mid).unwrap();
        std::fs::write(&p, format!("{h0}{{\"seq\":6}}\n{{\"seq\":7}}\n")).unwrap();
        p
    }

    fn seqs(v: &Value) -> Vec<u64> {
        lines(v)
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn reads_all_files_in_order_and_pages_by_cursor() {
        let d = dir("order");
        let p = rotated_log(&d);
        let all = tail(&p, params(None, 5000, 1_000_000)).unwrap();
        assert_eq!(seqs(&all), vec![1, 2, 3, 4, 5, 6, 7]);
        assert!(all.get("truncated").is_none(), "{all}");
        // a cursor at each line start in any file returns exactly the lines after it
        let text: Vec<u8> = [2, 1, 0]
            .iter()
            .flat_map(|n| std::fs::read(numbered(&p, *n)).unwrap())
            .collect();
        let mut at = 0u64;
        for (i, l) in text.split_inclusive(|b| *b == b'\n').enumerate() {
            let v = tail(&p, params(Some(at), 5000, 1_000_000)).unwrap();
            assert_eq!(
                seqs(&v),
                (i as u64 + 1..=7).collect::<Vec<_>>(),
                "cursor {at}"
            );
            assert_eq!(v["cursor"], all["cursor"]);
            at += l.len() as u64;
        }
        assert_eq!(all["cursor"], at);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_cursor_inside_a_line_never_returns_its_rest_as_a_line() {
        let d = std::env::temp_dir().join(format!("oc-audit-mid-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("audit.jsonl");
        std::fs::write(
            &p,
            "{\"seq\":1}\n{\"seq\":2,\"event\":\"x\"}\n{\"seq\":3}\n",
        )
        .unwrap();
        // Every offset inside line 2: its tail never comes back as a line.
        for at in 11..24u64 {
            let v = tail(&p, params(Some(at), 5000, 1_000_000)).unwrap();
            let lines: Vec<&str> = v["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap())
                .collect();
            assert_eq!(lines, ["{\"seq\":3}"], "cursor {at}: {v}");
        }
        // At the line start it is the whole line.
        let v = tail(&p, params(Some(10), 5000, 1_000_000)).unwrap();
        assert_eq!(v["lines"][0], "{\"seq\":2,\"event\":\"x\"}", "{v}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_cursor_survives_a_rotation() {
        let d = dir("survive");
        let p = d.join("audit.jsonl");
        std::fs::write(&p, "{\"seq\":1}\n{\"seq\":2}\n").unwrap();
        let v = tail(&p, params(None, 5000, 1_000_000)).unwrap();
        assert_eq!(seqs(&v), vec![1, 2]);
        let cursor = v["cursor"].as_u64().unwrap();
        // seq 3 lands in the old file, then it rotates and seq 4.. go to a new one
        std::fs::write(&p, "{\"seq\":1}\n{\"seq\":2}\n{\"seq\":3}\n").unwrap();
        let len = std::fs::metadata(&p).unwrap().len();
        std::fs::rename(&p, numbered(&p, 1)).unwrap();
        let head = format!("{{\"seq\":4,\"event\":\"audit.rotated\",\"offset\":{len}}}\n");
        std::fs::write(&p, format!("{head}{{\"seq\":5}}\n")).unwrap();
        let v = tail(&p, params(Some(cursor), 5000, 1_000_000)).unwrap();
        assert_eq!(seqs(&v), vec![3, 4, 5]);
        assert!(
            v.get("reset").is_none() && v.get("truncated").is_none(),
            "{v}"
        );
        let again = tail(&p, params(v["cursor"].as_u64(), 5000, 1_000_000)).unwrap();
        assert_eq!(seqs(&again), Vec::<u64>::new());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn dropped_files_skip_and_a_plain_file_reads_as_before() {
        let d = dir("dropped");
        let p = rotated_log(&d);
        std::fs::remove_file(numbered(&p, 2)).unwrap();
        let v = tail(&p, params(Some(0), 5000, 1_000_000)).unwrap();
        assert_eq!(seqs(&v), vec![3, 4, 5, 6, 7]);
        assert_eq!(v["truncated"], true);
        assert_eq!(v["skippedBytes"], 20);
        let plain = d.join("plain.jsonl");
        std::fs::write(&plain, "{\"seq\":1}\n{\"seq\":2}\n{\"seq\":3").unwrap();
        let v = tail(&plain, params(Some(10), 5000, 1_000_000)).unwrap();
        let same = crate::session::logtail::tail(&plain, params(Some(10), 5000, 1_000_000));
        assert_eq!(v, same.unwrap());
        assert_eq!(seqs(&v), vec![2]);
        let none = tail(&d.join("none.jsonl"), params(None, 1, 1)).unwrap();
        assert_eq!(none["size"], 0);
        let _ = std::fs::remove_dir_all(&d);
    }
}
