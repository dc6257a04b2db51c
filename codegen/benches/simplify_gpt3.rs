//! Compiling the GPT-3 175B training step (Adam) with Megatron annotations on `dp=128, tp=8`
//! (1024 devices) at 12, 24, 48 and 96 layers: propagation, partitioning and the collective
//! simplification (`compile/L`), and the simplification alone (`simplify/L`). Issue 11: the
//! 96-layer compile under 5 s, and both growing linearly with the layers (the simplification
//! was quadratic: egg's extraction sweeps every e-class once per level of the program).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use shardc_codegen::{partition, simplify, DEFAULT_BUCKET_BYTES};
use shardc_ir::zoo::{gpt, GptConfig, GptShardings};
use shardc_ir::{training_step, Graph, Mesh, ShardingAssignment, TrainOptions};
use shardc_sharding::propagate;

/// The training step at `layers` layers and the assignment propagation gives it.
fn setup(layers: u64, mesh: &Mesh) -> (Graph, ShardingAssignment) {
    let cfg = GptConfig {
        layers,
        shardings: GptShardings::Megatron(mesh.clone()),
        ..GptConfig::gpt3_175b(1536)
    };
    let fwd = gpt(&cfg).expect("GPT-3 builds");
    let step = training_step(&fwd, &TrainOptions::default()).expect("GPT-3 trains");
    let a = propagate(&step, mesh, &step.annotations)
        .expect("Megatron annotations propagate")
        .assignment;
    (step, a)
}

fn bench(c: &mut Criterion) {
    let mesh: Mesh = "dp=128,tp=8".parse().expect("valid mesh");
    let mut compile = c.benchmark_group("compile");
    compile.sample_size(10);
    let mut programs = Vec::new();
    for layers in [12u64, 24, 48, 96] {
        let (step, a) = setup(layers, &mesh);
        let p = partition(&step, &a).expect("partitions");
        eprintln!(
            "{layers} layers: {} nodes, partitioned program {} nodes",
            step.len(),
            p.graph.len()
        );
        compile.bench_with_input(BenchmarkId::from_parameter(layers), &step, |b, step| {
            b.iter(|| {
                let a = propagate(step, &mesh, &step.annotations).expect("propagates");
                let p = partition(step, &a.assignment).expect("partitions");
                simplify(&p, DEFAULT_BUCKET_BYTES).expect("simplifies")
            })
        });
        programs.push((layers, p));
    }
    compile.finish();
    let mut group = c.benchmark_group("simplify");
    group.sample_size(10);
    for (layers, p) in &programs {
        group.bench_with_input(BenchmarkId::from_parameter(layers), p, |b, p| {
            b.iter(|| simplify(p, DEFAULT_BUCKET_BYTES).expect("simplifies"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
