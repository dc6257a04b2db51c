//! Planning the GPT-3 175B training step (96 layers, h=12288, s=2048, batch 1536; bf16 with f32
//! master weights, Adam, full recomputation) for 1024 A100-80GB (128 nodes of 8) without
//! pipelining: mesh shape, ZeRO stage, micro-batches and every value's sharding (issue 11's
//! target: under 10 s and 2 GiB on the 2-core build machine; aim 1 s). The first plan's phase
//! timings are printed; criterion then measures whole plans.

use criterion::{criterion_group, criterion_main, Criterion};
use shardc_cost_model::{Catalog, Cluster};
use shardc_ir::zoo::{gpt, GptConfig};
use shardc_ir::{training_step, DType, RecomputeMode, TrainOptions};
use shardc_sharding::auto::{plan_with, PlanOptions};

fn bench(c: &mut Criterion) {
    // f32 forward: the training step casts it to bf16 and keeps f32 master weights.
    let fwd = gpt(&GptConfig {
        dtype: DType::F32,
        ..GptConfig::gpt3_175b(1536)
    })
    .expect("GPT-3 builds");
    let g = training_step(
        &fwd,
        &TrainOptions {
            recompute: Some(RecomputeMode::Full),
            mixed_precision: true,
            ..TrainOptions::default()
        },
    )
    .expect("training step");
    let cluster = Cluster::parse("a100-80gb:128x8", &Catalog::builtin()).expect("cluster");
    let opts = PlanOptions::default();
    let (p, t) = plan_with(&g, &cluster, &opts, &mut |_| {}).expect("a plan");
    eprintln!("{} nodes; {t:?}\n{}", g.len(), p.report());
    let mut group = c.benchmark_group("plan");
    group.sample_size(10);
    group.bench_function("gpt3-175b training on 1024 a100, no pipeline", |b| {
        b.iter(|| plan_with(&g, &cluster, &opts, &mut |_| {}).expect("a plan"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
