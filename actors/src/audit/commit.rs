//! A batch goes into the audit file whole or not at all, decided without I/O.
//!
//! The writer remembers `good`: the length of the current file up to the end of its last
//! batch that was written *and* synced. A write or sync that fails may leave any prefix of
//! the batch behind (a full disk takes what fits, down to half a line). Before the next
//! attempt the writer compares the file's real length with `good` ([`prepare`]) and cuts it
//! back, so the retried batch, numbered from the same `seq`, starts on a line boundary: no
//! torn fragment glued to a record, no `seq` twice. At open, a torn last line left by a crash
//! (no fsync ran for it, so nothing was acknowledged) is cut off the same way
//! ([`complete_len`]).

/// What to do before appending the next attempt of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prepare {
    /// The file ends where the last good batch ended: append.
    Append,
    /// A failed attempt left bytes after the last good batch: truncate the file to this
    /// length (and sync) first.
    CutBack(u64),
    /// The file is shorter than the last good length (cut by someone else): take its length
    /// as the new good one and append.
    Adopt(u64),
}

/// The step before writing, from the last good length and the file's actual length.
pub(super) fn prepare(good: u64, actual: u64) -> Prepare {
    match actual.cmp(&good) {
        std::cmp::Ordering::Equal => Prepare::Append,
        std::cmp::Ordering::Greater => Prepare::CutBack(good),
        std::cmp::Ordering::Less => Prepare::Adopt(actual),
    }
}

/// How many bytes at the start of `tail` are whole lines (through its last newline); the
/// rest is a torn line.
pub(super) fn complete_len(tail: &[u8]) -> usize {
    tail.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_table() {
        for (good, actual, want) in [
            (0, 0, Prepare::Append),
            (100, 100, Prepare::Append),
            (100, 173, Prepare::CutBack(100)), // half a batch left by ENOSPC
            (0, 4096, Prepare::CutBack(0)),    // the first batch of a fresh file
            (100, 40, Prepare::Adopt(40)),
        ] {
            assert_eq!(prepare(good, actual), want, "good {good}, actual {actual}");
        }
    }

    #[test]
    fn complete_len_table() {
        for (tail, want) in [
            (&b""[..], 0),
            (b"{\"seq\":1}\n", 10),
            (b"{\"seq\":1}\n{\"seq\":2,\"ev", 10),
            (b"{\"seq\":1", 0),
            (b"a\nb\n", 4),
        ] {
            assert_eq!(
                complete_len(tail),
                want,
                "{:?}",
                String::from_utf8_lossy(tail)
            );
        }
    }

    /// A file that takes only `room` more bytes, driven by the plan: every attempt of a batch
    /// that tears is cut back, and the file only ever holds whole lines numbered once.
    #[test]
    fn torn_attempts_never_stay_in_the_file() {
        let batch = |seq: u64, n: u64| -> Vec<u8> {
            (seq..seq + n)
                .flat_map(|s| format!("{{\"seq\":{s},\"event\":\"auth.ok\"}}\n").into_bytes())
                .collect()
        };
        for room in [0usize, 1, 17, 30, 31, 95] {
            let mut file: Vec<u8> = batch(1, 2);
            let (mut good, mut seq, mut dirty) = (file.len() as u64, 3u64, false);
            let mut free = room;
            for attempt in 0..4 {
                if dirty {
                    match prepare(good, file.len() as u64) {
                        Prepare::Append => {}
                        Prepare::CutBack(to) => {
                            free += file.len() - to as usize;
                            file.truncate(to as usize);
                        }
                        Prepare::Adopt(len) => good = len,
                    }
                }
                let b = batch(seq, 3);
                let fits = b.len().min(free);
                file.extend_from_slice(&b[..fits]);
                free -= fits;
                if fits == b.len() {
                    (good, seq, dirty) = (file.len() as u64, seq + 3, false);
                } else {
                    dirty = true;
                }
                if attempt == 1 {
                    free += 1000; // space freed
                }
            }
            if dirty {
                if let Prepare::CutBack(to) = prepare(good, file.len() as u64) {
                    file.truncate(to as usize);
                }
            }
            let text = String::from_utf8(file).unwrap();
            assert!(text.ends_with('\n'), "room {room}: {text:?}");
            let seqs: Vec<u64> = text
                .lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                        .as_u64()
                        .unwrap()
                })
                .collect();
            assert_eq!(seqs, (1..seq).collect::<Vec<_>>(), "room {room}");
        }
    }
}
