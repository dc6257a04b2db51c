//! Programs as jax users write them (tests/data/jax, made by tools/gen_jax_hlo.py: a GPT
//! training step with Adam, GPT layers in `lax.scan`, dropout from `jax.random`, a top-2 MoE,
//! a Llama block's gradients, conv + batch norm + max pool, and elementwise math with a
//! `fori_loop`): each imports, propagates from the user's shardings alone to what XLA's
//! after-propagation dump says on at least 90% of the instructions both modules name, and runs
//! partitioned on 8 thread devices equal to the reference executor; the same again from the
//! StableHLO text jax prints (`lowered.as_text()`, Shardy shardings). `random_bits` checks that
//! the reference executor draws the bits jax drew. `shard_map_matmul` is a manual region
//! (`shard_map` with a `psum`).

mod common;

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use common::run::check;
use shardc_ir::hlo::{import, HloImport};
use shardc_ir::sharding::{factor_mesh_axes, HloSharding};
use shardc_ir::stablehlo;
use shardc_ir::{Op, Sharding};
use shardc_runtime::execute;
use shardc_sharding::propagate;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/jax");

fn read(name: &str) -> String {
    let path = format!("{DATA}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// XLA's after-propagation sharding of each node of `imp` (the HLO import), where XLA's
/// dump names the node's instruction.
fn xla_shardings(name: &str, imp: &HloImport) -> Vec<Option<HloSharding>> {
    let after = import(&read(&format!("{name}.after_propagation.hlo")))
        .unwrap_or_else(|e| panic!("{name}.after_propagation.hlo: {e}"));
    imp.graph
        .ids()
        .map(|v| {
            let w = after.value(&imp.graph.node(v).name)?;
            after.shardings[w.index()].clone()
        })
        .collect()
}

/// `(instructions compared, equal)` of shardc's propagation on `imp` against `expected`
/// (per node of `imp`), printing each difference.
fn propagation_against(
    name: &str,
    imp: &HloImport,
    expected: &[Option<HloSharding>],
) -> (usize, usize) {
    let mesh = imp
        .graph
        .mesh
        .clone()
        .expect("the programs carry shardings");
    let sharded = propagate(&imp.graph, &mesh, &imp.graph.annotations).unwrap();
    // A manual region's per-device values are XLA's `{manual}`.
    let manual = shardc_ir::manual::manual_values(&imp.graph);
    let (mut compared, mut equal) = (0, 0);
    for v in imp.graph.ids() {
        let Some(expected) = expected[v.index()].as_ref() else {
            continue;
        };
        // XLA's shardings have no pending sums: its partitioner reduces them where they arise.
        let ours = Sharding {
            partial: Vec::new(),
            ..sharded.sharding(v).clone()
        };
        let ours = if manual[v.index()] {
            HloSharding::Manual
        } else {
            HloSharding::from_sharding(&ours, &mesh).unwrap()
        };
        compared += 1;
        if ours.equivalent(expected) {
            equal += 1;
        } else {
            println!(
                "  {name}: {}: shardc {ours}, XLA {expected}",
                imp.graph.node(v).name
            );
        }
    }
    (compared, equal)
}

/// A node's structure: its op, type and operands' structure, parameters by number. Two
/// imports of one program (HLO and StableHLO text) give equal keys to the nodes that compute
/// the same thing, whatever their names.
fn structural_keys(imp: &HloImport) -> Vec<u64> {
    let entry = imp.module.entry().unwrap();
    let mut param = vec![None; imp.graph.len()];
    for i in entry
        .instructions
        .iter()
        .filter(|i| i.opcode == "parameter")
    {
        param[imp.value(&i.name).unwrap().index()] = Some(i.args.trim().to_string());
    }
    // XLA's translation spells some broadcasts as reshapes and broadcasts of other shapes: a
    // chain of them is keyed by its source and its result type alone.
    let mut keys: Vec<u64> = Vec::with_capacity(imp.graph.len());
    let mut source: Vec<u64> = Vec::with_capacity(imp.graph.len());
    for v in imp.graph.ids() {
        let node = imp.graph.node(v);
        let mut h = DefaultHasher::new();
        let shape_only = matches!(node.op, Op::Reshape | Op::Broadcast { .. });
        match (&param[v.index()], shape_only) {
            (Some(p), _) => ("parameter", p).hash(&mut h),
            (None, true) => ("shape", source[node.operands[0].index()]).hash(&mut h),
            (None, false) => {
                // Mesh axes by position: the HLO form names them x0, x1; Shardy the user's.
                let mut op = format!("{:?}", node.op);
                for (k, a) in imp
                    .graph
                    .mesh
                    .iter()
                    .flat_map(|m| m.axes.iter().enumerate())
                {
                    op = op.replace(&format!("\"{}\"", a.name), &format!("\"#{k}\""));
                }
                op.hash(&mut h)
            }
        }
        node.ty.to_string().hash(&mut h);
        if !shape_only {
            for o in &node.operands {
                keys[o.index()].hash(&mut h);
            }
        }
        let k = h.finish();
        source.push(if shape_only {
            source[node.operands[0].index()]
        } else {
            k
        });
        keys.push(k);
    }
    keys
}

/// Carries `expected` (per node of `from`) over to the nodes of `to` with the same structure
/// (the k-th of several equal nodes to the k-th).
fn carry_over(
    from: &HloImport,
    to: &HloImport,
    expected: &[Option<HloSharding>],
) -> Vec<Option<HloSharding>> {
    let (kf, kt) = (structural_keys(from), structural_keys(to));
    let mut by_key: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, k) in kt.iter().enumerate() {
        by_key.entry(*k).or_default().push(i);
    }
    let mut out = vec![None; to.graph.len()];
    let mut taken: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, k) in kf.iter().enumerate() {
        let n = taken.entry(*k).or_default();
        if let Some(&j) = by_key.get(k).and_then(|js| js.get(*n)) {
            out[j] = expected[i].clone();
        }
        *n += 1;
    }
    out
}

/// The share of instructions that must get XLA's sharding.
const BAR: f64 = 0.9;

fn program(name: &str) {
    program_with_bar(name, BAR);
}

/// Checks one form (`HLO` or `StableHLO`) of a program: the share of its instructions that
/// get XLA's sharding, and a partitioned run on 8 thread devices against the reference.
fn check_form(name: &str, form: &str, imp: &HloImport, expected: &[Option<HloSharding>], bar: f64) {
    // XLA may split a dim over part of a mesh axis; on prime-sized axes shardc can too.
    let mut imp = imp.clone();
    factor_mesh_axes(&mut imp.graph);
    let imp = &imp;
    let (compared, equal) = propagation_against(name, imp, expected);
    let share = equal as f64 / compared.max(1) as f64;
    println!(
        "{name} ({form}): {} nodes; {equal} of {compared} instructions get XLA's sharding ({:.1}%)",
        imp.graph.len(),
        100.0 * share
    );
    assert!(
        compared > 0,
        "{name} ({form}): no instruction could be compared"
    );
    assert!(
        share >= bar,
        "{name} ({form}): {:.1}% match XLA (bar {:.0}%)",
        100.0 * share,
        100.0 * bar
    );
    let mesh = imp.graph.mesh.clone().unwrap();
    assert_eq!(mesh.num_devices(), 8, "{name}: 8 devices");
    let sharded = propagate(&imp.graph, &mesh, &imp.graph.annotations).unwrap();
    check(&imp.graph, &sharded.assignment, false);
}

/// Both forms of a program: the HLO text (compared with XLA's dump by instruction name) and
/// the StableHLO text jax prints with Shardy on (compared through the HLO import's nodes of
/// the same structure).
fn program_with_bar(name: &str, bar: f64) {
    let hlo = import(&read(&format!("{name}.hlo"))).unwrap_or_else(|e| panic!("{name}: {e}"));
    let expected = xla_shardings(name, &hlo);
    check_form(name, "HLO", &hlo, &expected, bar);
    let mlir = stablehlo::import(&read(&format!("{name}.mlir")))
        .unwrap_or_else(|e| panic!("{name}.mlir: {e}"));
    let carried = carry_over(&hlo, &mlir, &expected);
    let matched = carried.iter().flatten().count();
    println!(
        "{name}: {matched} of {} StableHLO nodes have a node of the same structure in the HLO import",
        mlir.graph.len()
    );
    check_form(name, "StableHLO", &mlir, &carried, bar);
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

/// With 2 kv heads on a 4-way `tp`, XLA splits the kv heads over a 2-way part of `tp` (tile
/// assignment `<=[2,2,2]`): on the module's own `dp=2, tp=4` mesh an axis-based sharding
/// cannot name that (281 of 328, 85.7%); on its prime-factored axes it can.
#[test]
fn llama_block_gradients() {
    program("llama_grad");
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

/// The outputs jax computed for a program without inputs (`NAME.expected.json`).
fn expected_outputs(name: &str) -> Vec<Vec<f64>> {
    read(&format!("{name}.expected.json"))
        .trim()
        .trim_start_matches("[[")
        .trim_end_matches("]]")
        .split("], [")
        .map(|row| row.split(',').map(|x| x.trim().parse().unwrap()).collect())
        .collect()
}

/// The reference executor's outputs of `imp` equal jax's, exactly.
fn draws_what_jax_drew(name: &str, imp: &HloImport) {
    let out = execute(&imp.graph, &[]).unwrap();
    let expected = expected_outputs(name);
    assert_eq!(out.len(), expected.len(), "{name}: outputs");
    for (k, (o, e)) in out.iter().zip(&expected).enumerate() {
        assert_eq!(&o.to_f64_vec(), e, "{name}: output {k}");
    }
}

/// The reference executor draws jax's bits: threefry2x32 as jax lowers it (u32 arithmetic,
/// shifts, xor, rotations in an unrolled `while`) and the float construction of `uniform`
/// (`bitcast-convert` of mantissa bits), against the values jax computed.
#[test]
fn reference_executor_draws_the_bits_jax_drew() {
    let imp = import(&read("random_bits.hlo")).unwrap();
    draws_what_jax_drew("random_bits", &imp);
}

/// jax's `rbg` PRNG: `rng-bit-generator` (Philox by default on CPU, and the Threefry
/// algorithm) lowered as XLA expands it, from both forms.
#[test]
fn rng_bit_generator_draws_the_bits_xla_drew() {
    let imp = import(&read("rbg_bits.hlo")).unwrap();
    draws_what_jax_drew("rbg_bits", &imp);
    let mlir = stablehlo::import(&read("rbg_bits.mlir")).unwrap();
    draws_what_jax_drew("rbg_bits", &mlir);
}

#[test]
fn rng_bit_generator_partitioned() {
    program("rbg_bits");
}

/// `shard_map` of a matmul with a `psum` over `tp`: a manual region whose body runs as
/// written on every device; the reference executor writes it out per device.
#[test]
fn shard_map_matmul_with_a_psum() {
    program("shard_map_matmul");
}

/// Every collective inside a manual region, as XLA writes them (replica groups as lists and in
/// the iota form, source-target pairs, `partition-id`): the partitioned run on 8 thread
/// devices (the runtime's collectives) equals the reference executor (the region written out
/// per device, its collectives as sums, concatenations and slices).
#[test]
fn collectives_in_a_manual_region_run_as_the_reference_says() {
    let hlo = r#"HloModule m, num_partitions=8

add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}

ENTRY e {
  x = f32[8,16] parameter(0), sharding={devices=[2,4]<=[8]}
  xs = f32[8,16] custom-call(x), custom_call_target="Sharding", sharding={devices=[2,4]<=[8]}
  local = f32[4,4] custom-call(xs), custom_call_target="SPMDFullToShardShape", sharding={manual}
  ag = f32[4,16] all-gather(local), dimensions={1}, replica_groups={{0,1,2,3},{4,5,6,7}}, use_global_device_ids=true, channel_id=1
  sq = f32[4,16] multiply(ag, ag)
  rs = f32[4,4] reduce-scatter(sq), dimensions={1}, replica_groups=[2,4]<=[8], use_global_device_ids=true, channel_id=2, to_apply=add
  a2a = f32[4,4] all-to-all(rs), dimensions={0}, replica_groups={{0,1,2,3},{4,5,6,7}}, channel_id=3
  cp = f32[4,4] collective-permute(a2a), source_target_pairs={{0,1},{1,2},{2,3},{3,0},{4,5},{5,6},{6,7},{7,4}}, channel_id=4
  ar = f32[4,4] all-reduce(cp), replica_groups={{0,4},{1,5},{2,6},{3,7}}, use_global_device_ids=true, channel_id=5, to_apply=add
  pid = u32[] partition-id()
  pf = f32[] convert(pid)
  pb = f32[4,4] broadcast(pf), dimensions={}
  out = f32[4,4] add(ar, pb)
  whole = f32[8,16] custom-call(out), custom_call_target="SPMDShardToFullShape", sharding={devices=[2,4]<=[8]}
  ROOT r = f32[8,16] negate(whole)
}
"#;
    let imp = import(hlo).unwrap();
    let g = &imp.graph;
    let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.name()).collect();
    for k in [
        "all_gather",
        "reduce_scatter",
        "all_to_all",
        "collective_permute",
        "all_reduce",
        "axis_index",
    ] {
        assert!(kinds.contains(&k), "{k} missing: {kinds:?}");
    }
    let mesh = g.mesh.clone().unwrap();
    assert_eq!(mesh.num_devices(), 8);
    let sharded = propagate(g, &mesh, &g.annotations).unwrap();
    check(g, &sharded.assignment, false);
}
