//! XLA's SPMD partitioner tests (the development split of the corpus): every case the HLO
//! importer reads is propagated from its shardings (every value's is given, so propagation only
//! fills values the importer adds), partitioned, checked for the root's per-device shape against
//! `expected_shapes`, and run on the mesh's thread devices against the reference executor.
//! Prints the share passed; fails below 80% of the readable cases.

mod common;

use std::path::PathBuf;

use common::run::{errors, TOLERANCE};
use shardc_codegen::{local_type, partition, simplify, DEFAULT_BUCKET_BYTES};
use shardc_ir::hlo::import;

/// `../shared/xla-corpus` from the repository root, or the nearest ancestor holding it.
fn corpus_file() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|d| d.join("shared/xla-corpus/spmd_partitioner.dev.jsonl"))
        .find(|p| p.is_file())
        .expect("the XLA corpus is missing (../shared/xla-corpus from the repo root)")
}

/// The largest value (elements) a case may have to be run on the thread devices.
const MAX_RUN_ELEMENTS: u64 = 1 << 20;

/// XLA's `s32[2000, 1000]{1,0}` as shardc prints it, `i32[2000,1000]` (layouts are not types;
/// XLA's s32/s64/pred are i32/i64/bool).
fn normalize(s: &str) -> String {
    let t: String = s
        .split('{')
        .next()
        .unwrap_or(s)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    t.parse::<shardc_ir::TensorType>()
        .map_or(t, |ty| ty.to_string())
}

/// Runs one case; `Err` says why it failed.
fn run_case(hlo: &str, expected: &[String], num_devices: u64) -> Result<(), String> {
    let imp = import(hlo).map_err(|e| format!("import: {e}"))?;
    let g = imp.graph;
    let mesh = g.mesh.clone().ok_or("no mesh")?;
    if mesh.num_devices() != num_devices {
        return Err(format!(
            "the shardings span {} of {num_devices} devices",
            mesh.num_devices()
        ));
    }
    let a = shardc_sharding::propagate(&g, &mesh, &g.annotations)
        .map_err(|e| format!("propagate: {e}"))?
        .assignment;
    let p = partition(&g, &a).map_err(|e| format!("partition: {e}"))?;
    if let (Some(&root), false) = (g.outputs.last(), expected.is_empty()) {
        let local = local_type(g.ty(root), &a.shardings[root.index()], &mesh).to_string();
        if !expected.contains(&local) {
            return Err(format!(
                "root is {local} per device, expected one of {expected:?}"
            ));
        }
    }
    let q = simplify(&p, DEFAULT_BUCKET_BYTES).map_err(|e| format!("simplify: {e}"))?;
    // The reference executor holds whole values: cases built to test huge shapes only are
    // checked for shapes, not run.
    let largest = g
        .nodes
        .iter()
        .map(|n| n.ty.shape.elements())
        .max()
        .unwrap_or(0);
    if largest > MAX_RUN_ELEMENTS {
        return Ok(());
    }
    for prog in [&p, &q] {
        let result = std::panic::catch_unwind(|| errors(&g, prog, 7));
        let errs = result.map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "run panicked".into())
        })?;
        for (name, err) in errs {
            if err > TOLERANCE {
                return Err(format!("output `{name}` differs by {err:e}"));
            }
        }
    }
    Ok(())
}

#[test]
fn partitioner_runs_the_xla_spmd_corpus() {
    let text = std::fs::read_to_string(corpus_file()).unwrap();
    let (mut readable, mut passed, mut unreadable) = (0, 0, 0);
    let mut failures = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let hlo = case["hlo"].as_str().unwrap();
        let test = case["test"].as_str().unwrap_or("?");
        let n = case["num_devices"].as_u64().unwrap_or(1);
        let expected: Vec<String> = case["expected_shapes"]
            .as_array()
            .map(|v| v.iter().filter_map(|s| s.as_str()).map(normalize).collect())
            .unwrap_or_default();
        match import(hlo) {
            Ok(imp) if imp.graph.mesh.is_some() => {}
            _ => {
                unreadable += 1;
                continue;
            }
        }
        readable += 1;
        let start = std::time::Instant::now();
        let outcome = run_case(hlo, &expected, n);
        if start.elapsed().as_secs() > 2 {
            println!("  slow case {test}: {:?}", start.elapsed());
        }
        match outcome {
            Ok(()) => passed += 1,
            Err(why) => failures.push(format!("{test}: {}", why.lines().next().unwrap_or(""))),
        }
    }
    println!("spmd corpus: {passed}/{readable} readable cases pass ({unreadable} not readable: no import or no mesh)");
    for f in &failures {
        println!("  FAIL {f}");
    }
    assert!(
        passed * 5 >= readable * 4,
        "only {passed} of {readable} readable cases pass (need 80%)"
    );
}
