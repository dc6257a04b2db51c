//! The reference executor on the zoo GPT's forward pass (with its loss) at GPT-2-small size:
//! 12 layers, h=768, 12 heads, s=256, V=50304, batch 4 (263 GFLOP of matmuls). Criterion's
//! throughput line is in matmul FLOP/s (`GraphStats::matmul_flops`), the count that
//! `tools/jax_gpt_forward.py` uses for JAX on the same model; BENCHMARKS.md sets them side by side.
//!
//! `SHARDC_BENCH_GPT=layers,hidden,heads,seq,vocab,batch` runs another size (e.g. a quick
//! `2,256,4,128,8192,2` on a busy machine).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use shardc_ir::zoo::{self, GptConfig};
use shardc_ir::GraphStats;
use shardc_runtime::{execute, random_inputs};

fn config() -> GptConfig {
    let dims: Vec<u64> = std::env::var("SHARDC_BENCH_GPT")
        .ok()
        .map(|s| s.split(',').filter_map(|d| d.trim().parse().ok()).collect())
        .unwrap_or_default();
    let [layers, hidden, heads, seq, vocab, batch] = dims[..] else {
        return GptConfig {
            layers: 12,
            hidden: 768,
            heads: 12,
            seq: 256,
            vocab: 50304,
            batch: 4,
            ..GptConfig::tiny()
        };
    };
    GptConfig {
        layers,
        hidden,
        heads,
        seq,
        vocab,
        batch,
        ..GptConfig::tiny()
    }
}

fn gpt_forward(c: &mut Criterion) {
    let cfg = config();
    let g = zoo::gpt(&cfg).expect("a valid GPT config");
    let flops = GraphStats::of(&g).matmul_flops;
    let inputs = random_inputs(&g, 0);
    let mut group = c.benchmark_group("gpt_forward");
    // Each iteration takes seconds: one per sample.
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(1));
    group.throughput(Throughput::Elements(flops as u64));
    let name = format!(
        "l{}_h{}_a{}_s{}_v{}_b{}",
        cfg.layers, cfg.hidden, cfg.heads, cfg.seq, cfg.vocab, cfg.batch
    );
    group.bench_function(name, |b| {
        b.iter(|| black_box(execute(&g, black_box(&inputs)).expect("the forward runs")))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(10));
    targets = gpt_forward
}
criterion_main!(benches);
