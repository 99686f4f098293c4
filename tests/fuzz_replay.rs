//! Replays every committed fuzz input on stable: each corpus file (`fuzz/corpus/<target>/`) and
//! each crash found so far (`fuzz/regressions/<target>/`) runs through the same target body the
//! cargo-fuzz binary runs (`fuzz/targets/`), with its invariants.

#[allow(dead_code)]
#[path = "../fuzz/targets/mod.rs"]
mod targets;

use std::path::Path;

fn replay(kind: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind);
    let mut count = 0;
    for (name, target) in targets::ALL {
        let Ok(dir) = std::fs::read_dir(root.join(name)) else {
            continue;
        };
        let mut files: Vec<_> = dir.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for file in files.into_iter().filter(|f| f.is_file()) {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {} fails", file.display());
            count += 1;
        }
    }
    count
}

#[test]
fn every_corpus_input_holds_its_invariants() {
    let n = replay("corpus");
    assert!(
        n >= targets::ALL.len(),
        "only {n} corpus files: is fuzz/corpus committed?"
    );
}

#[test]
fn every_crash_found_stays_fixed() {
    replay("regressions");
}

#[test]
fn every_target_has_a_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, _) in targets::ALL {
        let files = std::fs::read_dir(root.join(name)).map_or(0, |d| d.count());
        assert!(files > 0, "fuzz/corpus/{name} is empty");
    }
}
