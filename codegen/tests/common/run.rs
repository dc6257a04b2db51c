//! Running partitioned programs on the threads runtime against the reference executor.

use shardc_codegen::{gather_outputs, local_type, shard_inputs, SpmdProgram};
use shardc_ir::{Graph, ShardingAssignment};
use shardc_runtime::{execute, max_relative_error, random_inputs, run_spmd, Tensor};

/// The tolerance of the issue: 1e-5 relative in f32.
pub const TOLERANCE: f64 = 1e-5;

/// Runs `program` on its mesh with the global `inputs` (in the order of the original graph's
/// inputs) and returns the gathered global outputs.
pub fn run_program(program: &SpmdProgram, inputs: &[Tensor]) -> Vec<Tensor> {
    let globals: Vec<Vec<f64>> = inputs.iter().map(Tensor::to_f64_vec).collect();
    let per_device = shard_inputs(program, &globals).unwrap();
    let mesh = program.graph.mesh.clone().unwrap();
    let feeds: Vec<Vec<Tensor>> = per_device
        .into_iter()
        .map(|dev| {
            dev.iter()
                .zip(&program.inputs)
                .map(|(data, i)| {
                    Tensor::from_f64(local_type(&i.global, &i.sharding, &mesh), data).unwrap()
                })
                .collect()
        })
        .collect();
    let outs = run_spmd(&program.graph, &mesh, feeds)
        .unwrap_or_else(|e| panic!("run_spmd: {e}\n{}", program.dump()));
    let outs: Vec<Vec<Vec<f64>>> = outs
        .iter()
        .map(|dev| dev.iter().map(Tensor::to_f64_vec).collect())
        .collect();
    gather_outputs(program, &outs)
        .unwrap()
        .into_iter()
        .zip(&program.outputs)
        .map(|(data, o)| Tensor::from_f64(o.global.clone(), &data).unwrap())
        .collect()
}

/// The largest relative error of each output of `program` against the reference executor on
/// `graph`, on random inputs from `seed`: `(output name, error)`.
pub fn errors(graph: &Graph, program: &SpmdProgram, seed: u64) -> Vec<(String, f64)> {
    let inputs = random_inputs(graph, seed);
    let reference = execute(graph, &inputs).unwrap();
    let got = run_program(program, &inputs);
    assert_eq!(got.len(), reference.len());
    program
        .outputs
        .iter()
        .zip(got.iter().zip(&reference))
        .map(|(o, (a, b))| (o.name.clone(), max_relative_error(a, b).unwrap()))
        .collect()
}

/// Partitions `graph` under `a` (then simplifies, when asked) and checks every output against
/// the reference within [`TOLERANCE`]; returns the program for further checks.
pub fn check(graph: &Graph, a: &ShardingAssignment, simplify: bool) -> SpmdProgram {
    let p = shardc_codegen::partition(graph, a).unwrap_or_else(|e| panic!("{}: {e}", graph.name));
    let p = if simplify {
        shardc_codegen::simplify(&p, shardc_codegen::DEFAULT_BUCKET_BYTES).unwrap()
    } else {
        p
    };
    for seed in [1, 2] {
        for (name, err) in errors(graph, &p, seed) {
            assert!(
                err <= TOLERANCE,
                "{}: output `{name}` differs by {err:e} (seed {seed})\n{}",
                graph.name,
                p.dump()
            );
        }
    }
    p
}
