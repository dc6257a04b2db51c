//! `docs/plan-format.md` cannot rot: every ```json block in it is a plan that loads, applies
//! to the graph it names (the zoo's default MLP), writes back to the same bytes, and runs.

use std::path::Path;

use shardc::ir::zoo::{mlp, MlpConfig};
use shardc::runtime::{execute, max_relative_error, random_inputs};
use shardc::Plan;

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
fn every_plan_example_in_the_format_doc_loads_applies_and_runs() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/plan-format.md");
    let text = std::fs::read_to_string(path).expect("docs/plan-format.md exists");
    let blocks = json_blocks(&text);
    assert!(!blocks.is_empty(), "the doc has no ```json example");
    let g = mlp(&MlpConfig::default()).unwrap();
    for b in blocks {
        let plan = Plan::from_json("doc example", &b).unwrap();
        // Compared as JSON values: serde_json's default float parsing may differ from the
        // written digits in the last place, the same way on both sides.
        let written: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
        let given: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(written, given, "the example is not what shardc writes");
        let program = shardc::compile(&g, &plan).unwrap();
        let inputs = random_inputs(&g, 3);
        let got = shardc::run(&program, &inputs).unwrap();
        for (a, r) in got.iter().zip(&execute(&g, &inputs).unwrap()) {
            assert!(max_relative_error(a, r).unwrap() <= 1e-5);
        }
    }
}
