//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// The XLA test corpus: `../shared/xla-corpus` from the repository root (where CI keeps it).
/// A git worktree nested deeper finds it in the nearest ancestor holding `shared/xla-corpus`.
/// Panics with the paths tried when it is missing.
pub fn corpus_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let expected = manifest.join("../../shared/xla-corpus");
    if expected.is_dir() {
        return expected;
    }
    for dir in manifest.ancestors().skip(2) {
        let c = dir.join("shared/xla-corpus");
        if c.is_dir() {
            return c;
        }
    }
    panic!(
        "the XLA corpus is missing: expected it at {} (../shared/xla-corpus from the repo root)",
        expected.display()
    )
}

/// The parsed lines of one corpus file.
pub fn corpus_cases(file: &str) -> Vec<serde_json::Value> {
    let path = corpus_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: line {}: {e}", path.display(), i + 1))
        })
        .collect()
}
