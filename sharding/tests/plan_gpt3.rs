//! Planning the GPT-3 175B training step for 1024 A100s without pipelining (issue 11's
//! benchmark, as `benches/plan_gpt3.rs` measures it), once, printing the phase timings and the
//! plan: `cargo test -p shardc-sharding --test plan_gpt3 -- --ignored --nocapture`. Ignored: the
//! graph alone is ~55k nodes, too slow to build in CI's test profile.

use shardc_cost_model::{Catalog, Cluster};
use shardc_ir::zoo::{gpt, GptConfig};
use shardc_ir::{training_step, DType, RecomputeMode, TrainOptions};
use shardc_sharding::auto::{plan_with, PlanOptions, Solver};

#[test]
#[ignore = "a 55k-node graph: run by hand (see the module doc)"]
fn plans_gpt3_175b_on_1024_a100_without_pipelining() {
    let clock = std::time::Instant::now();
    let layers = std::env::var("GPT3_LAYERS").map_or(96, |s| s.parse().unwrap());
    let fwd = gpt(&GptConfig {
        dtype: DType::F32,
        layers,
        ..GptConfig::gpt3_175b(1536)
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
    let cluster = Cluster::parse("a100-80gb:128x8", &Catalog::builtin()).unwrap();
    let clock = std::time::Instant::now();
    let opts = PlanOptions {
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
