//! Replays every committed fuzz corpus (`fuzz/corpus/<target>/*`) through the same entry
//! points the cargo-fuzz targets call (`openclaw_actors::fuzzing`), so stable CI checks the
//! invariants on every seed and every minimized crash without a fuzzer.

use std::path::PathBuf;

use openclaw_actors::fuzzing::TARGETS;

/// `fuzz/corpus`, or the directory in `OPENCLAW_FUZZ_CORPUS` (to replay another copy, e.g.
/// a snapshot taken while a fuzzer is still writing to the real one).
fn corpus_root() -> PathBuf {
    std::env::var_os("OPENCLAW_FUZZ_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus"))
}

#[test]
fn every_corpus_replays() {
    assert!(!TARGETS.is_empty());
    for (name, run) in TARGETS {
        let dir = corpus_root().join(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()));
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.expect("corpus entry").path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "corpus {} is empty", dir.display());
        for f in &files {
            let data = std::fs::read(f).expect("corpus file");
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{name}: {} fails", f.display());
        }
    }
}

#[test]
fn no_stray_corpus_dirs() {
    // A corpus directory without an entry in TARGETS would never be replayed.
    for e in std::fs::read_dir(corpus_root()).expect("fuzz/corpus") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/corpus/{name} has no entry in fuzzing::TARGETS"
        );
    }
}
