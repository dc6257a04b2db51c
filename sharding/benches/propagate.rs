//! Propagation on the GPT-3 175B training graph (forward, loss and gradients) with only the
//! weight and input annotations of Megatron-LM's layout (batch on `dp`, heads and the MLP
//! hidden dim on `tp`). Target: under 2 s.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use shardc_ir::zoo::{gpt, GptConfig, GptShardings};
use shardc_ir::{autodiff::grad, Mesh};

fn training_graph(mesh: &Mesh) -> shardc_ir::Graph {
    let mut cfg = GptConfig::gpt3_175b(64);
    cfg.shardings = GptShardings::Megatron(mesh.clone());
    let fwd = gpt(&cfg).expect("the GPT-3 configuration is valid");
    let loss = fwd.outputs[0];
    grad(&fwd, loss).expect("the GPT-3 graph is differentiable")
}

fn bench(c: &mut Criterion) {
    let mesh: Mesh = "dp=8,tp=8".parse().expect("valid mesh");
    let t = Instant::now();
    let g = training_graph(&mesh);
    eprintln!(
        "GPT-3 175B training graph: {} nodes, {} annotations (built in {:.2?})",
        g.len(),
        g.annotations.len(),
        t.elapsed()
    );
    // The bench machine may be shared: report this thread's CPU time next to the wall time.
    let cpu = || {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
    };
    for _ in 0..3 {
        let (c0, t0) = (cpu(), Instant::now());
        let sg =
            shardc_sharding::propagate(&g, &mesh, &g.annotations).expect("propagation succeeds");
        let (wall, c1) = (t0.elapsed(), cpu());
        let cpu_s = c0.zip(c1).map(|(a, b)| (b - a) as f64 * 1e-9);
        eprintln!(
            "propagate: wall {wall:.2?}, cpu {}, {} e-nodes",
            cpu_s.map_or("n/a".into(), |s| format!("{s:.3}s")),
            sg.enode_count()
        );
    }
    let mut group = c.benchmark_group("propagate");
    group.sample_size(10);
    group.bench_function("gpt3_175b_training", |b| {
        // The result is kept by a caller; freeing it is not part of propagation.
        b.iter_with_large_drop(|| {
            shardc_sharding::propagate(&g, &mesh, &g.annotations).expect("propagation succeeds")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
