//! Planning the GPT-3 175B training step for 1024 A100s without pipelining (issue 11's
//! benchmark, as `benches/plan_gpt3.rs` measures it), once, printing the phase timings and the
//! plan: `cargo test -p shardc-sharding --test plan_gpt3 -- --ignored --nocapture`. Ignored: the
//! graph alone is ~55k nodes, too slow to build in CI's test profile.

use shardc_cost_model::{Catalog, Cluster};
use shardc_ir::zoo::{gpt, GptConfig};
use shardc_ir::{training_step, DType, RecomputeMode, TrainOptions};
use shardc_sharding::auto::{plan_with, PlanOptions, Solver};

#[test]
#[ignore = "a 58k-node graph: about 7 s in release, minutes in the test profile (BENCHMARKS.md); run by hand (see the module doc)"]
fn plans_gpt3_175b_on_1024_a100_without_pipelining() {
    let clock = std::time::Instant::now();
    // Other shapes by hand: GPT3_LAYERS, GPT3_HIDDEN, GPT3_HEADS, GPT3_SEQ, GPT3_VOCAB,
    // GPT3_BATCH, GPT3_CLUSTER (BERT-large on 64 A100s: 24, 1024, 16, 512, 30528, 512,
    // a100-80gb:8x8).
    let env =
        |name: &str, default: u64| std::env::var(name).map_or(default, |s| s.parse().unwrap());
    let base = GptConfig::gpt3_175b(1536);
    let fwd = gpt(&GptConfig {
        dtype: DType::F32,
        layers: env("GPT3_LAYERS", base.layers),
        hidden: env("GPT3_HIDDEN", base.hidden),
        heads: env("GPT3_HEADS", base.heads),
        seq: env("GPT3_SEQ", base.seq),
        vocab: env("GPT3_VOCAB", base.vocab),
        batch: env("GPT3_BATCH", base.batch),
        ..base
    })
    .unwrap();
    let g = training_step(
        &fwd,
        &TrainOptions {
            recompute: Some(RecomputeMode::Full),
            mixed_precision: true,
            ..TrainOptions::default()
        },
    )
    .unwrap();
    eprintln!("graph: {} nodes in {:.2?}", g.len(), clock.elapsed());
    let spec = std::env::var("GPT3_CLUSTER").unwrap_or_else(|_| "a100-80gb:128x8".into());
    let cluster = Cluster::parse(&spec, &Catalog::builtin()).unwrap();
    let clock = std::time::Instant::now();
    // GPT3_MESH=dp=128,tp=8 fixes the mesh (`--mesh`), GPT3_MB the micro-batch count.
    let mesh = std::env::var("GPT3_MESH").ok().map(|m| {
        m.split(',')
            .map(|a| {
                let (name, size) = a.split_once('=').expect("axis=size");
                (name.to_string(), size.parse().expect("a size"))
            })
            .collect()
    });
    let opts = PlanOptions {
        mesh,
        micro_batches: std::env::var("GPT3_MB").ok().map(|m| m.parse().unwrap()),
        solver: match std::env::var("GPT3_SOLVER").as_deref() {
            Ok("ilp") => Solver::Ilp,
            Ok("elimination") => Solver::Elimination,
            _ => Solver::default(),
        },
        ..PlanOptions::default()
    };
    let (p, t) = plan_with(&g, &cluster, &opts, &mut |_| {}).unwrap();
    eprintln!("planned in {:.2?}: {t:?}\n{}", clock.elapsed(), p.report());
    assert!(p.memory.total() <= 80e9, "the plan fits an A100-80GB");
}
