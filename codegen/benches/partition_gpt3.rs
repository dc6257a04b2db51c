//! Partitioning the GPT-3 175B training step (forward, loss and every gradient) for a
//! 1024-device mesh `dp=16, tp=8, pp=8` (Narayanan et al. SC21's 145.6B run used t=8, p=8).
//! Target: under 5 s (issue 5).
//!
//! The assignment is Megatron-LM's: batch over `dp`, attention heads and the MLP's inner dim over
//! `tp`; the pipeline axis `pp` replicates within a stage's program (stage slicing is the
//! pipeline crate's; each stage's program is partitioned the same way).

use criterion::{criterion_group, criterion_main, Criterion};
use shardc_codegen::partition;
use shardc_ir::zoo::{gpt, GptConfig};
use shardc_ir::{grad, Graph, Mesh, Sharding, ShardingAssignment};

/// Megatron shardings by value name and shape (a stand-in for propagation's output that needs
/// no planning time): every value with the batch as its first dim is split over `dp`; weights,
/// biases and activations of the qkv/fc1 columns and out/fc2 rows over `tp`.
fn megatron(g: &Graph, mesh: &Mesh, batch: u64) -> ShardingAssignment {
    let shardings = g
        .nodes
        .iter()
        .map(|n| {
            let mut s = Sharding::replicated(n.ty.rank());
            let dims = n.ty.dims();
            if dims.first() == Some(&batch) && dims.len() >= 2 {
                s.dims[0].axes = vec!["dp".into()];
            }
            let name = n.name.as_str();
            let col = name.contains("qkv.weight") || name.contains("fc1.weight");
            let row = name.contains("out.weight") || name.contains("fc2.weight");
            if (col || name.ends_with("qkv.bias") || name.ends_with("fc1.bias")) && !dims.is_empty()
            {
                let last = dims.len() - 1;
                s.dims[last].axes = vec!["tp".into()];
            } else if row && dims.len() == 2 {
                s.dims[0].axes = vec!["tp".into()];
            }
            s
        })
        .collect();
    ShardingAssignment {
        mesh: mesh.clone(),
        shardings,
    }
}

fn bench(c: &mut Criterion) {
    let batch = 1536;
    let fwd = gpt(&GptConfig::gpt3_175b(batch)).expect("GPT-3 175B builds");
    let loss = fwd.training.loss.expect("gpt has a loss");
    let step = grad(&fwd, loss).expect("GPT-3 175B differentiates");
    let mesh: Mesh = "dp=16,tp=8,pp=8".parse().expect("valid mesh");
    let a = megatron(&step, &mesh, batch);
    eprintln!(
        "GPT-3 175B training step: {} nodes, mesh {mesh}",
        step.len()
    );
    let mut group = c.benchmark_group("partition");
    group.sample_size(10);
    group.bench_function("gpt3_175b_training_step_1024_devices", |b| {
        b.iter(|| partition(&step, &a).expect("partitions"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
