//! Builds the GPT-3 175B training step (Adam; `full` as the first argument adds full
//! recomputation) and prints its size, FLOPs and the build time. Measure memory with
//! `/usr/bin/time -v cargo run --release -p shardc-ir --example gpt3_175b_training`.

use std::time::Instant;

use shardc_ir::zoo::{gpt, GptConfig};
use shardc_ir::{training_step, GraphStats, RecomputeMode, TrainOptions};

fn main() -> Result<(), shardc_ir::IrError> {
    let recompute = std::env::args().nth(1).as_deref() == Some("full");
    let start = Instant::now();
    let forward = gpt(&GptConfig::gpt3_175b(1))?;
    let opts = TrainOptions {
        recompute: recompute.then_some(RecomputeMode::Full),
        ..TrainOptions::default()
    };
    let step = training_step(&forward, &opts)?;
    let built = start.elapsed();
    let s = GraphStats::of(&step);
    println!(
        "GPT-3 175B training step (recompute: {recompute}): {} nodes, {} parameters, {:.4e} FLOPs ({:.4e} in matmuls, {:.4e} recomputed), built in {:.2} s",
        s.nodes,
        s.parameters,
        s.flops as f64,
        s.matmul_flops as f64,
        s.recompute_flops as f64,
        built.as_secs_f64()
    );
    Ok(())
}
