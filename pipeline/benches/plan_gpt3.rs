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
    let cpu = cpu_seconds();
    let p = plan_pipeline(&g, &cluster, &opts).expect("a plan");
    let cpu = cpu_seconds().zip(cpu).map(|(b, a)| b - a);
    eprintln!(
        "{} nodes; chosen {:?}\n{:?}\nCPU seconds of that plan: {cpu:?}\n{}",
        g.len(),
        p.chosen,
        p.timings,
        p.report()
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

/// This process's user + system CPU seconds (Linux `/proc/self/stat`, 100 ticks a second),
/// which on a loaded machine says what the wall time would be on an idle one.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(") ")?.1;
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
