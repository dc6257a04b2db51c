//! Training-step graphs of the model zoo: FLOP counts against the published formulas,
//! recomputation, optimizer state.

use shardc_ir::zoo::{gpt, GptConfig};
use shardc_ir::{
    training_step, verify, GraphStats, Init, Op, Optimizer, Phase, RecomputeMode, Role,
    TrainOptions,
};

/// 72·B·s·l·h²·(1 + s/6h + V/12lh) and 96·B·s·l·h²·(1 + s/6h + V/16lh) (Narayanan et al. SC21).
fn formula(cfg: &GptConfig, recompute: bool) -> f64 {
    let (b, s, l, h, v) = (
        cfg.batch as f64,
        cfg.seq as f64,
        cfg.layers as f64,
        cfg.hidden as f64,
        cfg.vocab as f64,
    );
    if recompute {
        96.0 * b * s * l * h * h * (1.0 + s / (6.0 * h) + v / (16.0 * l * h))
    } else {
        72.0 * b * s * l * h * h * (1.0 + s / (6.0 * h) + v / (12.0 * l * h))
    }
}

fn rel(a: u128, b: f64) -> f64 {
    (a as f64 - b).abs() / b
}

#[test]
fn gpt3_175b_training_flops_match_the_published_formulas() {
    let cfg = GptConfig::gpt3_175b(1);
    let fwd = gpt(&cfg).unwrap();
    for (recompute, mode) in [(false, None), (true, Some(RecomputeMode::Full))] {
        let opts = TrainOptions {
            recompute: mode,
            ..TrainOptions::default()
        };
        let t = training_step(&fwd, &opts).unwrap();
        let s = GraphStats::of(&t);
        let want = formula(&cfg, recompute);
        eprintln!(
            "recompute {recompute}: matmul {:.4e} all {:.4e} recompute {:.4e} want {want:.4e} nodes {}",
            s.matmul_flops as f64, s.flops as f64, s.recompute_flops as f64, s.nodes
        );
        assert!(
            rel(s.matmul_flops, want) < 0.01,
            "matmul flops {} vs {want}",
            s.matmul_flops
        );
        assert!(rel(s.flops, want) < 0.01, "flops {} vs {want}", s.flops);
    }
}
