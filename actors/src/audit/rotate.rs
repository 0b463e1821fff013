//! Audit log rotation, decided without I/O: when a batch would push `audit.jsonl` past
//! `audit.maxBytes`, the writer shifts `audit.jsonl.N` → `.N+1` (dropping what would pass
//! `audit.keep`), renames `audit.jsonl` → `audit.jsonl.1` and starts a fresh file whose first
//! line is an `audit.rotated` event. That line carries `offset`: the position of the new
//! file's first byte in the whole log (all files ever written, oldest first), so readers can
//! hand out one cursor that stays valid across rotations.

use std::path::{Path, PathBuf};

/// Default `audit.maxBytes`: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Smallest `audit.maxBytes` accepted: 4 KiB.
pub const MIN_MAX_BYTES: u64 = 4 * 1024;
/// Default `audit.keep`: rotated files kept besides the current one.
pub const DEFAULT_KEEP: usize = 10;

/// When to rotate and how many rotated files to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate before a batch would make the current file larger than this.
    pub max_bytes: u64,
    /// Rotated files kept (`audit.jsonl.1` … `audit.jsonl.<keep>`); at least 1.
    pub keep: usize,
}

/// One file-system step of a rotation. Index 0 is the current file, `n` is `<file>.n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Delete `<file>.n` (it would pass `keep`).
    Remove(usize),
    /// Rename index `from` to index `to`.
    Rename(usize, usize),
}

// === impl Rotation ===

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            keep: DEFAULT_KEEP,
        }
    }
}

impl Rotation {
    /// Whether to rotate before writing `batch` bytes to a file of `len` bytes. An empty file
    /// is never rotated: a batch larger than `max_bytes` goes into a file of its own.
    pub fn due(&self, len: u64, batch: u64) -> bool {
        len > 0 && len.saturating_add(batch) > self.max_bytes
    }

    /// The steps that rotate, given that `<file>.1` … `<file>.rotated` exist: remove what
    /// would pass `keep`, shift the rest up by one, oldest first, then the current file to
    /// `.1`. Applied in order, no step overwrites a file that still matters.
    pub fn plan(&self, rotated: usize) -> Vec<Step> {
        let keep = self.keep.max(1);
        let mut steps: Vec<Step> = (keep..=rotated).rev().map(Step::Remove).collect();
        for n in (1..=rotated.min(keep - 1)).rev() {
            steps.push(Step::Rename(n, n + 1));
        }
        steps.push(Step::Rename(0, 1));
        steps
    }
}

/// The renames that finish a rotation a crash cut short, given the indexes that exist (0:
/// the current file). [`Rotation::plan`] renames from the oldest file down, so a rotation
/// cut short leaves one missing index with files above it, which readers (they list `.1`,
/// `.2`, … up to the first gap) would not see: the files below the gap move up by one, the
/// current file to `.1`. Empty when the numbering has no gap.
pub fn finish_plan(present: &[usize]) -> Vec<Step> {
    let max = present.iter().copied().max().unwrap_or(0);
    let Some(gap) = (1..max).find(|n| !present.contains(n)) else {
        return Vec::new();
    };
    (0..gap)
        .rev()
        .filter(|n| present.contains(n))
        .map(|n| Step::Rename(n, n + 1))
        .collect()
}

/// `<file>.n` (`n` = 0: the file itself).
pub fn numbered(path: &Path, n: usize) -> PathBuf {
    if n == 0 {
        return path.to_path_buf();
    }
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Step::{Remove, Rename};

    #[test]
    fn due_table() {
        let r = Rotation {
            max_bytes: 100,
            keep: 3,
        };
        for (len, batch, want) in [
            (0, 500, false), // an empty file takes any batch
            (1, 99, false),
            (1, 100, true),
            (60, 40, false),
            (60, 41, true),
            (100, 0, false),
            (u64::MAX, 1, true),
        ] {
            assert_eq!(r.due(len, batch), want, "{len} + {batch}");
        }
    }

    #[test]
    fn finish_plan_table() {
        // No gap: nothing to finish.
        for present in [&[][..], &[0], &[0, 1], &[0, 1, 2, 3], &[1, 2]] {
            assert_eq!(finish_plan(present), vec![], "{present:?}");
        }
        // Cut after Rename(1, 2): the current file still has to become `.1`.
        assert_eq!(finish_plan(&[0, 2, 3]), vec![Rename(0, 1)]);
        // Cut after Rename(2, 3): `.1` and the current file still have to move.
        assert_eq!(finish_plan(&[0, 1, 3, 4]), vec![Rename(1, 2), Rename(0, 1)]);
        // Order of `present` does not matter; no current file: only the numbered ones move.
        assert_eq!(finish_plan(&[3, 1, 0]), vec![Rename(1, 2), Rename(0, 1)]);
        assert_eq!(finish_plan(&[1, 3]), vec![Rename(1, 2)]);
        // Every plan, cut after any of its renames, is finished into the full rotation.
        let r = Rotation {
            max_bytes: 1,
            keep: 10,
        };
        for rotated in 0..6usize {
            let plan = r.plan(rotated);
            for cut in 0..plan.len() {
                let mut files: Vec<Option<usize>> = (0..=rotated).map(Some).collect();
                files.resize(12, None); // files[i] = which original file is at index i
                let apply = |files: &mut Vec<Option<usize>>, s: &Step| match *s {
                    Step::Remove(n) => files[n] = None,
                    Step::Rename(a, b) => files[b] = files[a].take(),
                };
                let mut whole = files.clone();
                plan.iter().for_each(|s| apply(&mut whole, s));
                plan[..cut].iter().for_each(|s| apply(&mut files, s));
                let present: Vec<usize> =
                    (0..files.len()).filter(|&i| files[i].is_some()).collect();
                finish_plan(&present)
                    .iter()
                    .for_each(|s| apply(&mut files, s));
                // Cut before its first rename, a rotation has not begun: nothing to finish.
                if cut > 0 {
                    assert_eq!(files, whole, "rotated {rotated}, cut after {cut} steps");
                }
            }
        }
    }

    #[test]
    fn plan_table() {
        let plan = |keep, rotated| Rotation { max_bytes: 1, keep }.plan(rotated);
        assert_eq!(plan(1, 0), vec![Rename(0, 1)]);
        assert_eq!(plan(1, 1), vec![Remove(1), Rename(0, 1)]);
        assert_eq!(plan(10, 0), vec![Rename(0, 1)]);
        assert_eq!(plan(10, 2), vec![Rename(2, 3), Rename(1, 2), Rename(0, 1)]);
        assert_eq!(
            plan(3, 3),
            vec![Remove(3), Rename(2, 3), Rename(1, 2), Rename(0, 1)]
        );
        // keep lowered since the last run: everything past it goes
        assert_eq!(
            plan(2, 4),
            vec![Remove(4), Remove(3), Remove(2), Rename(1, 2), Rename(0, 1)]
        );
        // keep 0 behaves as 1 (the config refuses 0)
        assert_eq!(plan(0, 1), vec![Remove(1), Rename(0, 1)]);
    }

    #[test]
    fn plan_never_overwrites() {
        for keep in 1..6 {
            for rotated in 0..8 {
                let mut exists: Vec<bool> = (0..=rotated).map(|_| true).collect();
                exists.resize(16, false);
                for s in (Rotation { max_bytes: 1, keep }).plan(rotated) {
                    match s {
                        Remove(n) => exists[n] = false,
                        Rename(a, b) => {
                            assert!(exists[a] && !exists[b], "{keep} {rotated}: {s:?}");
                            exists[a] = false;
                            exists[b] = true;
                        }
                    }
                }
                let left: Vec<usize> = (0..16).filter(|n| exists[*n]).collect();
                let want: Vec<usize> = (1..=(rotated + 1).min(keep)).collect();
                assert_eq!(left, want, "keep {keep}, rotated {rotated}");
            }
        }
    }

    #[test]
    fn numbered_names() {
        let p = Path::new("/s/logs/audit.jsonl");
        assert_eq!(numbered(p, 0), p);
        assert_eq!(numbered(p, 3), Path::new("/s/logs/audit.jsonl.3"));
    }
}
