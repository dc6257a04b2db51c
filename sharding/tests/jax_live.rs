//! A live comparison with XLA: HLO that jax lowered (tests/data/jax, made by tools/gen_jax_hlo.py
//! with GSPMD, not Shardy) is propagated by shardc from the user's annotations alone, and every
//! instruction's sharding is compared by meaning with XLA's after-propagation dump of the same
//! module. Instructions XLA renamed (constraint custom-calls become `copy`) are matched by name
//! where both modules have them.

use shardc_ir::hlo::import;
use shardc_ir::sharding::HloSharding;
use shardc_ir::Sharding;
use shardc_sharding::propagate;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/jax");

/// `(instructions compared, instructions equal, the differing ones)` for one module.
fn compare(name: &str) -> (usize, usize, Vec<String>) {
    let read = |suffix: &str| {
        let path = format!("{DATA}/{name}{suffix}");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let before = import(&read(".hlo")).unwrap();
    let after = import(&read(".after_propagation.hlo")).unwrap();
    let mesh = before
        .graph
        .mesh
        .clone()
        .expect("the jax modules carry shardings");
    let sharded = propagate(&before.graph, &mesh, &before.graph.annotations).unwrap();
    let (mut compared, mut equal, mut diffs) = (0, 0, Vec::new());
    println!(
        "{name}: {} nodes, {} annotated by the user",
        before.graph.len(),
        before.graph.annotations.len()
    );
    let manual = shardc_ir::manual::manual_values(&before.graph);
    for v in before.graph.ids() {
        let node = before.graph.node(v);
        let Some(w) = after.value(&node.name) else {
            continue;
        };
        let Some(expected) = after.shardings[w.index()].as_ref() else {
            continue;
        };
        // XLA's shardings have no pending sums: its partitioner reduces them where they arise.
        let ours = Sharding {
            partial: Vec::new(),
            ..sharded.sharding(v).clone()
        };
        // A manual region's per-device values are XLA's `{manual}`.
        let ours = if manual[v.index()] {
            HloSharding::Manual
        } else {
            HloSharding::from_sharding(&ours, &mesh).unwrap()
        };
        compared += 1;
        if ours.equivalent(expected) {
            equal += 1;
        } else {
            diffs.push(format!(
                "{name}: {}: shardc {ours}, XLA {expected}",
                node.name
            ));
        }
    }
    (compared, equal, diffs)
}

#[test]
fn propagation_matches_xla_on_jax_modules() {
    let (mut compared, mut equal, mut diffs) = (0, 0, Vec::new());
    for name in [
        "megatron_mlp",
        "transformer_block",
        "mlp_grad_dp",
        "mlp_dp",
        "shard_map_matmul",
    ] {
        let (c, e, d) = compare(name);
        println!("{name}: {e} of {c} instructions match XLA");
        assert!(c > 0, "{name}: no instruction could be compared");
        compared += c;
        equal += e;
        diffs.extend(d);
    }
    let share = equal as f64 / compared as f64;
    println!(
        "jax modules: {equal} of {compared} instructions match XLA ({:.1}%)",
        100.0 * share
    );
    for d in &diffs {
        println!("  {d}");
    }
    assert!(
        share >= 0.9,
        "only {:.1}% match XLA (bar 90%)",
        100.0 * share
    );
}
