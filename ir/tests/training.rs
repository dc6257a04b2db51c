//! Training-step graphs of the model zoo: FLOP counts against the published formulas,
//! recomputation, optimizer state.

use shardc_ir::zoo::{gpt, GptConfig};
use shardc_ir::DType;
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

fn tiny_step(opts: &TrainOptions) -> shardc_ir::Graph {
    training_step(&gpt(&GptConfig::tiny()).unwrap(), opts).unwrap()
}

fn with_recompute(mode: RecomputeMode) -> shardc_ir::Graph {
    tiny_step(&TrainOptions {
        recompute: Some(mode),
        ..TrainOptions::default()
    })
}

#[test]
fn full_recomputation_reruns_each_layers_forward_once_and_the_backward_reads_only_copies() {
    let plain = tiny_step(&TrainOptions::default());
    let t = with_recompute(RecomputeMode::Full);
    verify(&t).unwrap();
    // The recomputed FLOPs are the FLOPs of the layers' forward nodes.
    let layer_flops: u128 = plain
        .ids()
        .filter(|&v| {
            let n = plain.node(v);
            n.phase == Phase::Forward && n.layer().is_some() && !n.op.is_source()
        })
        .map(|v| plain.factors(v).flops())
        .sum();
    let s = GraphStats::of(&t);
    assert_eq!(s.recompute_flops, layer_flops);
    assert_eq!(s.flops, GraphStats::of(&plain).flops + layer_flops);
    // No backward node of a layer reads a stored (non-recomputed) computed value of that layer.
    for n in &t.nodes {
        if !matches!(n.phase, Phase::BackwardInput | Phase::BackwardWeight) {
            continue;
        }
        for &o in &n.operands {
            let on = t.node(o);
            let stored = on.phase == Phase::Forward && !on.recompute && !on.op.is_source();
            assert!(
                !(stored && on.layer().is_some() && on.layer() == n.layer()),
                "`{}` reads stored `{}`",
                n.name,
                on.name
            );
        }
    }
    // The embedding and the logits are not recomputed.
    assert!(t
        .nodes
        .iter()
        .filter(|n| n.recompute)
        .all(|n| n.layer().is_some()));
}

#[test]
fn selective_recomputation_reruns_only_the_attention_core() {
    let t = with_recompute(RecomputeMode::Selective);
    verify(&t).unwrap();
    let names: Vec<&str> = t
        .nodes
        .iter()
        .filter(|n| n.recompute)
        .map(|n| n.name.as_str())
        .collect();
    for l in 0..2 {
        for part in ["scores.matmul", "weights", "context.matmul"] {
            let want = format!("layers.{l}.attn.{part}.recompute");
            assert!(
                names.contains(&want.as_str()),
                "missing {want} in {names:?}"
            );
        }
    }
    assert!(names.iter().all(|n| n.contains(".attn.")), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.contains("qkv") || n.contains(".out")),
        "{names:?}"
    );
}

#[test]
fn recomputation_of_one_named_layer_touches_only_that_layer() {
    let g = gpt(&GptConfig::tiny()).unwrap();
    let t = shardc_ir::grad(&g, g.training.loss.unwrap()).unwrap();
    let r = shardc_ir::train::recompute(&t, RecomputeMode::Full, Some(&["layers.1".to_string()]))
        .unwrap();
    assert!(r.nodes.iter().any(|n| n.recompute));
    assert!(r
        .nodes
        .iter()
        .filter(|n| n.recompute)
        .all(|n| n.layer() == Some("layers.1")));
    let e = shardc_ir::train::recompute(&t, RecomputeMode::Full, Some(&["layers.7".to_string()]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("layers.7"), "{e}");
    let e = shardc_ir::train::recompute(&g, RecomputeMode::Full, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("autodiff"), "{e}");
}

#[test]
fn adam_adds_zero_initialised_moments_and_a_step_counter_and_updates_every_parameter() {
    let t = tiny_step(&TrainOptions::default());
    verify(&t).unwrap();
    let params = t.training.gradients.len();
    // m and v per parameter, the step counter, and the parameters themselves.
    assert_eq!(t.training.updates.len(), 3 * params + 1);
    for &(state, new) in &t.training.updates {
        let n = t.node(state);
        assert!(
            matches!(n.role, Role::Parameter | Role::OptimizerState),
            "{}",
            n.name
        );
        if n.role == Role::OptimizerState {
            assert_eq!(
                n.op,
                Op::Input {
                    init: Some(Init::Fill { value: 0.0 })
                }
            );
        }
        assert_eq!(t.node(new).phase, Phase::Update);
        assert!(t.outputs.contains(&new));
    }
    assert!(t.find("optimizer.step").is_some());
    assert!(t.find("layers.0.mlp.fc1.weight.adam_m").is_some());
}

#[test]
fn sgd_without_momentum_needs_no_state() {
    let t = tiny_step(&TrainOptions {
        optimizer: Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.0,
        },
        ..TrainOptions::default()
    });
    assert!(t.nodes.iter().all(|n| n.role != Role::OptimizerState));
    assert_eq!(t.training.updates.len(), t.training.gradients.len());
}

#[test]
fn mixed_precision_computes_in_bf16_and_updates_f32_master_weights() {
    let t = tiny_step(&TrainOptions {
        mixed_precision: true,
        ..TrainOptions::default()
    });
    verify(&t).unwrap();
    for &(p, _) in &t.training.gradients {
        assert_eq!(t.ty(p).dtype, DType::BF16);
        let master = t.find(&format!("{}.master", t.node(p).name)).unwrap();
        assert_eq!(t.ty(master).dtype, DType::F32);
        assert_eq!(t.node(master).role, Role::OptimizerState);
        let new_master = t.training.updates.iter().find(|u| u.0 == master).unwrap().1;
        assert_eq!(t.ty(new_master).dtype, DType::F32);
        let new_param = t.training.updates.iter().find(|u| u.0 == p).unwrap().1;
        assert_eq!(t.ty(new_param).dtype, DType::BF16);
        assert_eq!(t.node(new_param).operands, vec![new_master]);
    }
}

#[test]
fn a_graph_without_a_loss_has_no_training_step() {
    let mut g = gpt(&GptConfig::tiny()).unwrap();
    g.training.loss = None;
    let e = training_step(&g, &TrainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no loss"), "{e}");
}

#[test]
fn an_optimizer_is_added_once() {
    let t = tiny_step(&TrainOptions::default());
    let e = shardc_ir::train::apply_optimizer(&t, &Optimizer::adam(1e-3), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("already"), "{e}");
}
