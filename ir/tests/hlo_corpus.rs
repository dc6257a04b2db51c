//! Imports every module of the XLA sharding corpus; reports how many import and which opcodes
//! block the rest. Every module that imports must print back and re-import to the same graph.

mod common;

use std::collections::BTreeMap;

use shardc_ir::hlo::{import, print_with_shardings};
use shardc_ir::sharding::HloSharding;
use shardc_ir::{verify, IrError};

/// What blocked a module: the opcode the error names, or the error kind.
fn blocker(e: &IrError) -> String {
    match e {
        IrError::Node { op, message, .. } => {
            let short: String = message
                .split(": ")
                .nth(1)
                .unwrap_or(message)
                .chars()
                .take(60)
                .collect();
            format!("{op}: {short}")
        }
        e => e.to_string().chars().take(70).collect(),
    }
}

/// Prints back with the module's own shardings (replicated where none), re-imports, and checks
/// the graph and shardings are unchanged.
fn prints_back_the_same(text: &str, test: &str) {
    let imp = import(text).unwrap();
    let s: Vec<Option<HloSharding>> = imp
        .shardings
        .iter()
        .map(|s| Some(s.clone().unwrap_or(HloSharding::Replicated)))
        .collect();
    let printed = print_with_shardings(&imp, &s).unwrap();
    let again = import(&printed)
        .unwrap_or_else(|e| panic!("{test}: reprinted module fails: {e}\n{printed}"));
    assert_eq!(again.graph.nodes, imp.graph.nodes, "{test}");
    assert_eq!(again.graph.outputs, imp.graph.outputs, "{test}");
    // Every node an instruction became carries its sharding after the round trip (reshapes the
    // importer adds for gather indices are no instructions).
    for name in imp.values.keys() {
        if let Some(v) = imp.value(name) {
            let a = &again.shardings[v.index()];
            let b = s[v.index()].as_ref().unwrap();
            assert!(
                a.as_ref().is_some_and(|a| a.equivalent(b)),
                "{test}: {name}: {a:?} vs {b}"
            );
        }
    }
    verify(&again.graph).unwrap();
}

#[test]
fn corpus_modules_import_or_name_what_blocks_them() {
    let mut blockers: BTreeMap<String, usize> = BTreeMap::new();
    let mut lines = Vec::new();
    for file in [
        "sharding_propagation.dev.jsonl",
        "spmd_partitioner.dev.jsonl",
    ] {
        let (mut total, mut ok, mut spmd, mut spmd_ok, mut annotated) = (0, 0, 0, 0, 0);
        for case in common::corpus_cases(file) {
            let hlo = case["hlo"].as_str().expect("every case has hlo text");
            let test = case["test"].as_str().unwrap_or("?");
            let is_spmd = case["pass_args"]
                .as_str()
                .is_some_and(|a| a.contains("is_spmd=*/true"));
            total += 1;
            spmd += usize::from(is_spmd);
            match import(hlo) {
                Ok(imp) => {
                    ok += 1;
                    spmd_ok += usize::from(is_spmd);
                    annotated += usize::from(imp.graph.mesh.is_some());
                    prints_back_the_same(hlo, test);
                }
                Err(e) => {
                    let msg = e.to_string();
                    assert!(!msg.is_empty());
                    *blockers.entry(blocker(&e)).or_default() += 1;
                }
            }
        }
        lines.push(format!(
            "{file}: {ok}/{total} import ({annotated} with a mesh and annotations); is_spmd=true: {spmd_ok}/{spmd}"
        ));
    }
    for l in &lines {
        println!("{l}");
    }
    let mut by_count: Vec<_> = blockers.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    println!("blocked by:");
    for (b, n) in by_count {
        println!("  {n:3}  {b}");
    }
}
