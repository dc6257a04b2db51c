//! The StableHLO that jax prints (`lowered.as_text()`; tests/data/jax, made by
//! tools/gen_jax_hlo.py), with Shardy shardings (`NAME.mlir`) and with GSPMD's
//! (`NAME.gspmd.mlir`), imports into the same computation as the HLO text of the same
//! program: the same inputs and outputs, and the user's shardings on the mesh the module
//! names, with its axis names.

use std::path::PathBuf;

use shardc_ir::hlo::HloImport;
use shardc_ir::sharding::HloSharding;
use shardc_ir::{verify, Role, ValueId};

/// Every program of tools/gen_jax_hlo.py's PROGRAMS.
const PROGRAMS: [&str; 9] = [
    "gpt_adam",
    "gpt_scan",
    "mlp_dropout",
    "moe_top2",
    "llama_grad",
    "conv_bn_pool",
    "shard_map_matmul",
    "random_bits",
    "softplus_cumsum",
];

fn read(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/jax")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The ENTRY parameters' nodes, by parameter number.
fn parameters(imp: &HloImport) -> Vec<ValueId> {
    let entry = imp.module.entry().unwrap();
    let mut ps: Vec<(usize, ValueId)> = entry
        .instructions
        .iter()
        .filter(|i| i.opcode == "parameter")
        .map(|i| (i.args.trim().parse().unwrap(), imp.value(&i.name).unwrap()))
        .collect();
    ps.sort();
    ps.into_iter().map(|(_, v)| v).collect()
}

/// Parameter shardings by parameter number, as HLO sharding text on the graph's mesh.
fn parameter_shardings(imp: &HloImport) -> Vec<Option<HloSharding>> {
    parameters(imp)
        .into_iter()
        .map(|v| imp.shardings[v.index()].clone())
        .collect()
}

#[test]
fn every_program_imports_from_stablehlo_as_from_hlo() {
    let mut failures = Vec::new();
    for (p, form) in PROGRAMS
        .iter()
        .flat_map(|p| [(*p, "mlir"), (*p, "gspmd.mlir")])
    {
        let mlir = match shardc_ir::stablehlo::import(&read(&format!("{p}.{form}"))) {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{p}.{form}: {e}"));
                continue;
            }
        };
        verify(&mlir.graph).unwrap();
        let hlo = shardc_ir::hlo::import(&read(&format!("{p}.hlo"))).unwrap();
        let types = |i: &HloImport, vs: &[shardc_ir::ValueId]| -> Vec<String> {
            vs.iter().map(|&v| i.graph.ty(v).to_string()).collect()
        };
        assert_eq!(
            types(&mlir, &mlir.graph.outputs),
            types(&hlo, &hlo.graph.outputs),
            "{p}: outputs"
        );
        assert_eq!(
            types(&mlir, &parameters(&mlir)),
            types(&hlo, &parameters(&hlo)),
            "{p}: inputs"
        );
        assert!(
            mlir.graph
                .ids()
                .filter(|&v| mlir.graph.node(v).role == Role::Input)
                .count()
                == parameters(&mlir).len()
        );
        // Shardy keeps the user's axis names; GSPMD's shardings imply a mesh as HLO's do.
        let mesh = if form == "mlir" {
            "dp=2,tp=4"
        } else {
            "x0=2,x1=4"
        };
        if p != "random_bits" {
            assert_eq!(
                mlir.graph.mesh.as_ref().unwrap().to_string(),
                mesh,
                "{p}.{form}"
            );
        }
        let (a, b) = (parameter_shardings(&mlir), parameter_shardings(&hlo));
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            match (x, y) {
                (Some(x), Some(y)) => assert!(x.equivalent(y), "{p}: parameter {i}: {x} vs {y}"),
                (None, None) => {}
                _ => panic!("{p}: parameter {i}: {x:?} vs {y:?}"),
            }
        }
        println!(
            "{p}.{form}: {} nodes from StableHLO, {} from HLO; {} annotations",
            mlir.graph.len(),
            hlo.graph.len(),
            mlir.graph.annotations.len()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `sdy.manual_computation` (shard_map) becomes the manual region the HLO form gives, on the
/// user's axis names: the same boundary splits and the `psum` over `tp`.
#[test]
fn shard_map_reads_as_a_manual_region_with_the_users_axes() {
    use shardc_ir::Op;
    let imp = shardc_ir::stablehlo::import(&read("shard_map_matmul.mlir")).unwrap();
    let g = &imp.graph;
    let ops: Vec<&Op> = g.nodes.iter().map(|n| &n.op).collect();
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    assert!(ops.contains(&&Op::FullToShard {
        dims: vec![s(&["dp"]), s(&["tp"])]
    }));
    assert!(ops.contains(&&Op::FullToShard {
        dims: vec![s(&["tp"]), vec![]]
    }));
    assert!(ops.contains(&&Op::ShardToFull {
        dims: vec![s(&["dp"]), vec![]]
    }));
    assert!(ops.contains(&&Op::AllReduce {
        axes: s(&["tp"]),
        func: shardc_ir::ReduceFn::Sum
    }));
    // A region manual over some axes only is refused, naming the line.
    let partial = read("shard_map_matmul.mlir")
        .replace("manual_axes={\"dp\", \"tp\"}", "manual_axes={\"tp\"}");
    let e = shardc_ir::stablehlo::import(&partial)
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 4") && e.contains("not every axis"), "{e}");
}
