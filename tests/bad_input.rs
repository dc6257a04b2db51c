//! The bad-input corpus (`tests/data/bad`): each file, fed to the CLI, must give exit code 2 and
//! an `error: ...` message that names where the problem is and what was expected, never a panic.
//! `EXPECTED.tsv` lists each file with the fragments its message must contain.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::shardc;

fn corpus() -> Vec<(String, Vec<String>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad");
    let table = std::fs::read_to_string(dir.join("EXPECTED.tsv")).expect("EXPECTED.tsv exists");
    table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split('\t').map(str::to_string);
            let file = parts.next().expect("a file name");
            (dir.join(file).display().to_string(), parts.collect())
        })
        .collect()
}

#[test]
fn the_corpus_lists_every_file_and_has_at_least_thirty_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("the corpus directory exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| p.display().to_string())
        .collect();
    let listed: BTreeSet<String> = corpus().into_iter().map(|(f, _)| f).collect();
    assert_eq!(on_disk, listed);
    assert!(listed.len() >= 30, "only {} bad inputs", listed.len());
    for (file, fragments) in corpus() {
        assert!(!fragments.is_empty(), "{file} expects no message fragment");
    }
}

#[test]
fn every_bad_input_exits_2_with_a_message_naming_where_and_what() {
    let mut failures = Vec::new();
    for (file, fragments) in corpus() {
        for cmd in ["check", "show", "run"] {
            let out = shardc(&[cmd, &file]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let mut problems = Vec::new();
            if out.status.code() != Some(2) {
                problems.push(format!("exit code {:?}, expected 2", out.status.code()));
            }
            if stderr.contains("panicked") {
                problems.push("panicked".to_string());
            }
            if !stderr.starts_with("error: ") || !stderr.contains(&file) {
                problems.push("message does not start with `error: <file>`".to_string());
            }
            for f in &fragments {
                if !stderr.contains(f.as_str()) {
                    problems.push(format!("missing `{f}`"));
                }
            }
            if !out.stdout.is_empty() {
                problems.push("printed to stdout".to_string());
            }
            if !problems.is_empty() {
                failures.push(format!("{cmd} {file}: {}\n  {stderr}", problems.join("; ")));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
