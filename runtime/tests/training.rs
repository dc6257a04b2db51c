//! Training steps run by the reference executor: a small GPT learns a fixed batch.

use shardc_ir::zoo::{gpt, GptConfig, GptShardings};
use shardc_ir::{training_step, DType, Graph, Optimizer, TrainOptions, ValueId};
use shardc_runtime::{execute, random_inputs, Tensor};

/// Runs `steps` training steps, feeding each step's updated parameters and optimizer state into
/// the next; returns the loss before every step.
fn train(g: &Graph, steps: usize, seed: u64) -> Vec<f64> {
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
    let mut inputs: Vec<Tensor> = random_inputs(g, seed);
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
