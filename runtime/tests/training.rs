//! Training steps run by the reference executor: a small GPT learns a fixed batch.

use shardc_ir::zoo::{gpt, GptConfig, GptShardings};
use shardc_ir::{training_step, DType, Graph, Optimizer, RecomputeMode, TrainOptions, ValueId};
use shardc_runtime::{execute, random_inputs, Tensor};

/// Runs `steps` training steps, feeding each step's updated parameters and optimizer state into
/// the next; returns the loss before every step.
fn train(g: &Graph, steps: usize, seed: u64) -> Vec<f64> {
    train_from(g, steps, random_inputs(g, seed))
}

fn train_from(g: &Graph, steps: usize, mut inputs: Vec<Tensor>) -> Vec<f64> {
    let inputs_of: Vec<ValueId> = g.inputs().collect();
    let out_index = |v: ValueId| g.outputs.iter().position(|&o| o == v).unwrap();
    let loss = out_index(g.training.loss.unwrap());
    let feedback: Vec<(usize, usize)> = g
        .training
        .updates
        .iter()
        .map(|&(state, new)| {
            (
                inputs_of.iter().position(|&i| i == state).unwrap(),
                out_index(new),
            )
        })
        .collect();
    let mut losses = Vec::new();
    for _ in 0..steps {
        let outs = execute(g, &inputs).unwrap();
        losses.push(outs[loss].scalar_f64().unwrap());
        for &(slot, out) in &feedback {
            inputs[slot] = outs[out].clone();
        }
    }
    losses
}

fn small_gpt() -> GptConfig {
    GptConfig {
        layers: 2,
        hidden: 32,
        heads: 2,
        seq: 8,
        vocab: 16,
        batch: 4,
        dtype: DType::F32,
        shardings: GptShardings::None,
    }
}

#[test]
fn a_small_gpt_trained_50_steps_with_adam_halves_its_loss() {
    let opts = TrainOptions {
        optimizer: Optimizer::adam(1e-2),
        ..TrainOptions::default()
    };
    let g = training_step(&gpt(&small_gpt()).unwrap(), &opts).unwrap();
    let losses = train(&g, 50, 7);
    let (first, last) = (losses[0], *losses.last().unwrap());
    eprintln!("loss {first:.4} -> {last:.4}");
    assert!(
        last <= first / 2.0,
        "loss went from {first} to {last}: {losses:?}"
    );
}

/// Output `v` of one run of `g` on `inputs`.
fn value(g: &Graph, outs: &[Tensor], v: ValueId) -> Vec<f64> {
    outs[g.outputs.iter().position(|&o| o == v).unwrap()].to_f64_vec()
}

#[test]
fn recomputation_changes_no_gradient() {
    let fwd = gpt(&small_gpt()).unwrap();
    let plain = training_step(&fwd, &TrainOptions::default()).unwrap();
    let inputs = random_inputs(&plain, 3);
    let base = execute(&plain, &inputs).unwrap();
    for mode in [RecomputeMode::Full, RecomputeMode::Selective] {
        let opts = TrainOptions {
            recompute: Some(mode),
            ..TrainOptions::default()
        };
        let r = training_step(&fwd, &opts).unwrap();
        assert!(r.nodes.iter().any(|n| n.recompute));
        // Same inputs in the same order: recomputation adds no input.
        let outs = execute(&r, &inputs).unwrap();
        for (&(p, gp), &(rp, rg)) in plain.training.gradients.iter().zip(&r.training.gradients) {
            assert_eq!(plain.node(p).name, r.node(rp).name);
            assert_eq!(
                value(&plain, &base, gp),
                value(&r, &outs, rg),
                "{}",
                r.node(rp).name
            );
        }
    }
}

/// One step's new parameter values against the optimizer's formula, applied by hand to the
/// gradient the step computed.
fn check_first_step(opt: Optimizer, expected: impl Fn(f64, f64) -> f64) {
    let fwd = gpt(&small_gpt()).unwrap();
    let opts = TrainOptions {
        optimizer: opt,
        ..TrainOptions::default()
    };
    let g = training_step(&fwd, &opts).unwrap();
    let inputs = random_inputs(&g, 5);
    let outs = execute(&g, &inputs).unwrap();
    let ids: Vec<ValueId> = g.inputs().collect();
    for &(p, gp) in &g.training.gradients {
        let before = inputs[ids.iter().position(|&i| i == p).unwrap()].to_f64_vec();
        let grad = value(&g, &outs, gp);
        let new = g.training.updates.iter().find(|u| u.0 == p).unwrap().1;
        let after = value(&g, &outs, new);
        for ((&w, &dw), &w2) in before.iter().zip(&grad).zip(&after) {
            let want = expected(w, dw);
            assert!(
                (w2 - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "{}: {w2} vs {want}",
                g.node(p).name
            );
        }
    }
}

#[test]
fn the_first_sgd_step_with_momentum_moves_against_the_gradient() {
    // Zero momentum buffer: b = g, p' = p - lr g.
    check_first_step(
        Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.9,
        },
        |w, g| w - 0.1 * g,
    );
}

#[test]
fn the_first_adamw_step_is_a_sign_step_plus_decoupled_decay() {
    // After bias correction m̂ = g and v̂ = g², so p' = p - lr (g / (|g| + ε) + wd p).
    let (lr, eps, wd) = (0.01, 1e-8, 0.1);
    let opt = Optimizer::AdamW {
        lr,
        beta1: 0.9,
        beta2: 0.999,
        eps,
        weight_decay: wd,
    };
    check_first_step(opt, |w, g| w - lr * (g / (g.abs() + eps) + wd * w));
}

#[test]
fn a_small_gpt_trains_in_mixed_precision() {
    let opts = TrainOptions {
        optimizer: Optimizer::adam(1e-2),
        mixed_precision: true,
        ..TrainOptions::default()
    };
    let g = training_step(&gpt(&small_gpt()).unwrap(), &opts).unwrap();
    // Master weights start as copies of the parameters.
    let ids: Vec<ValueId> = g.inputs().collect();
    let mut inputs = random_inputs(&g, 7);
    for &(p, _) in &g.training.gradients {
        let m = g.find(&format!("{}.master", g.node(p).name)).unwrap();
        let (ip, im) = (
            ids.iter().position(|&i| i == p).unwrap(),
            ids.iter().position(|&i| i == m).unwrap(),
        );
        inputs[im] = Tensor::from_f64(g.ty(m).clone(), &inputs[ip].to_f64_vec()).unwrap();
    }
    let losses = train_from(&g, 30, inputs);
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(
        last <= first / 2.0,
        "loss went from {first} to {last}: {losses:?}"
    );
}

/// Norm-wise relative error between autodiff's gradient and central differences of the loss, on
/// a few elements of every parameter.
fn fd_error(fwd: &Graph) -> f64 {
    let t = shardc_ir::grad(fwd, fwd.training.loss.unwrap()).unwrap();
    let inputs = random_inputs(&t, 11);
    let outs = execute(&t, &inputs).unwrap();
    let ids: Vec<ValueId> = t.inputs().collect();
    let loss_at = |ins: &[Tensor]| {
        let o = shardc_runtime::execute_values(fwd, ins, &[fwd.training.loss.unwrap()]).unwrap();
        o[0].scalar_f64().unwrap()
    };
    let (mut err2, mut norm2) = (0.0, 0.0);
    for &(p, gp) in &t.training.gradients {
        let slot = ids.iter().position(|&i| i == p).unwrap();
        let analytic = value(&t, &outs, gp);
        let base = inputs[slot].to_f64_vec();
        let n = base.len();
        for e in [0, n / 3, n / 2, n - 1] {
            let h = 1e-6;
            let at = |d: f64| {
                let mut ins = inputs.clone();
                let mut v = base.clone();
                v[e] += d;
                ins[slot] = Tensor::from_f64(t.ty(p).clone(), &v).unwrap();
                loss_at(&ins)
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            err2 += (analytic[e] - fd).powi(2);
            norm2 += fd * fd;
        }
    }
    (err2 / norm2).sqrt()
}

#[test]
fn zoo_models_gradients_match_central_differences() {
    use shardc_ir::zoo::{mlp, moe, resnet, MlpConfig, MoeConfig, ResNetConfig};
    let mlp_cfg = MlpConfig {
        dtype: DType::F64,
        activation: shardc_ir::UnaryFn::Gelu,
        ..MlpConfig::default()
    };
    let resnet_cfg = ResNetConfig {
        batch: 2,
        in_channels: 2,
        image: 6,
        width: 2,
        stages: vec![1, 1],
        classes: 3,
        dtype: DType::F64,
    };
    let gpt_cfg = GptConfig {
        dtype: DType::F64,
        ..GptConfig::tiny()
    };
    let models = [
        ("mlp", mlp(&mlp_cfg).unwrap()),
        ("resnet", resnet(&resnet_cfg).unwrap()),
        (
            "moe",
            moe(&MoeConfig {
                dtype: DType::F64,
                ..MoeConfig::default()
            })
            .unwrap(),
        ),
        ("gpt", gpt(&gpt_cfg).unwrap()),
    ];
    for (name, g) in &models {
        let e = fd_error(g);
        assert!(e <= 1e-6, "{name}: relative error {e:.3e}");
    }
}
