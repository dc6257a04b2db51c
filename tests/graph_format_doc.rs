//! `docs/graph-format.md` cannot rot: every ```json block in it is a complete graph file that
//! loads, and the document names every op of the closed op set.

use std::path::Path;

use shardc::ir::{from_json, verify, BinaryFn, Op, UnaryFn};

fn doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/graph-format.md");
    std::fs::read_to_string(path).expect("docs/graph-format.md exists")
}

/// The contents of every fenced block opened with ```json.
fn json_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match &mut current {
            None if line.trim() == "```json" => current = Some(String::new()),
            Some(b) if line.trim() == "```" => {
                blocks.push(std::mem::take(b));
                current = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn every_json_example_in_the_format_doc_loads_and_verifies() {
    let blocks = json_blocks(&doc());
    assert!(!blocks.is_empty(), "the doc has no ```json example");
    for b in blocks {
        let g = from_json(&b).unwrap_or_else(|e| panic!("doc example does not load: {e}\n{b}"));
        verify(&g).expect("loaded graphs verify");
        assert!(!g.outputs.is_empty());
    }
}

#[test]
fn the_format_doc_names_every_op_and_elementwise_function() {
    // serde lists every variant of `Op` when it meets an unknown one: the op set, from the code.
    let err = serde_json::from_str::<Op>(r#"{"op": "?"}"#)
        .expect_err("`?` is not an op")
        .to_string();
    let list = err
        .split("expected one of")
        .nth(1)
        .expect("serde lists the variants");
    let ops: Vec<&str> = list.split('`').skip(1).step_by(2).collect();
    assert!(ops.len() > 25, "{err}");
    let text = doc();
    for op in ops {
        assert!(
            text.contains(&format!("`{op}`")),
            "docs/graph-format.md lacks op `{op}`"
        );
    }
    for f in UnaryFn::ALL.iter().map(|f| f.name()) {
        assert!(text.contains(&format!("`{f}`")), "lacks unary `{f}`");
    }
    for f in BinaryFn::ALL.iter().map(|f| f.name()) {
        assert!(text.contains(&format!("`{f}`")), "lacks binary `{f}`");
    }
}
