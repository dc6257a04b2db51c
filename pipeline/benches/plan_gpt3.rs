//! The full automatic pipelined plan (mesh, stages, micro-batches, schedule, shardings) of the
//! GPT-3 175B training step on 1024 A100s: the target is under 10 s (aim: 1 s).

use criterion::{criterion_group, criterion_main, Criterion};
use shardc_cost_model::{Catalog, Cluster};
use shardc_ir::zoo::{gpt, GptConfig};
use shardc_ir::{training_step, DType, RecomputeMode, TrainOptions};
use shardc_pipeline::{plan_pipeline, PipelineOptions};

fn bench(c: &mut Criterion) {
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
    let opts = PipelineOptions::default();
    let p = plan_pipeline(&g, &cluster, &opts).expect("a plan");
    eprintln!(
        "{} nodes; chosen {:?}\n{:?}\n{}",
        g.len(),
        p.chosen,
        p.timings,
        p.plan.report()
    );
    let mut group = c.benchmark_group("plan_pipeline");
    group.sample_size(10);
    group.bench_function("gpt3-175b training on 1024 a100", |b| {
        b.iter(|| plan_pipeline(&g, &cluster, &opts).expect("a plan"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
