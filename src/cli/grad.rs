//! `shardc grad FILE -o FILE`: the training step of a graph with a scalar loss.

use std::path::PathBuf;

use clap::Args;
use shardc::ir::train::{apply_optimizer, recompute};
use shardc::ir::{
    grad, to_json, training_step, Graph, GraphStats, Optimizer, RecomputeMode, TrainOptions,
};

use super::{read_graph, spinner, write_output, CliError};

/// Adds the backward pass (and optionally recomputation and an optimizer) to a graph.
#[derive(Args, Debug)]
pub struct GradArgs {
    /// The forward graph (shardc JSON).
    pub file: PathBuf,
    /// Where to write the training graph.
    #[arg(short, long)]
    pub output: PathBuf,
    /// The loss value's name (default: the graph's `training.loss`).
    #[arg(long)]
    pub loss: Option<String>,
    /// Append this optimizer's update: sgd, adam or adamw.
    #[arg(long)]
    pub optimizer: Option<Optimizer>,
    /// Learning rate of the optimizer.
    #[arg(long, requires = "optimizer")]
    pub lr: Option<f64>,
    /// Recompute every layer's activations in the backward: full or selective.
    #[arg(long)]
    pub recompute: Option<RecomputeMode>,
    /// bf16 compute with f32 master weights (needs --optimizer; f32 graphs are cast to bf16).
    #[arg(long, requires = "optimizer")]
    pub mixed_precision: bool,
}

pub fn run(args: GradArgs) -> Result<(), CliError> {
    let mut forward = read_graph(&args.file)?;
    let loss = match &args.loss {
        Some(name) => forward.find(name).ok_or_else(|| {
            CliError::Input(format!(
                "{}: --loss names `{name}`, which the graph does not have",
                args.file.display()
            ))
        })?,
        None => forward.training.loss.ok_or_else(|| {
            CliError::Input(format!(
                "{}: the graph names no loss (training.loss); pass --loss NAME",
                args.file.display()
            ))
        })?,
    };
    if args.mixed_precision {
        forward = shardc::ir::train::cast_floats(
            &forward,
            shardc::ir::DType::F32,
            shardc::ir::DType::BF16,
        )?;
    }
    let mut g = grad(&forward, loss)?;
    if let Some(mode) = args.recompute {
        g = recompute(&g, mode, None)?;
    }
    if let Some(mut opt) = args.optimizer {
        if let Some(lr) = args.lr {
            set_lr(&mut opt, lr);
        }
        g = apply_optimizer(&g, &opt, args.mixed_precision)?;
    }
    write_output(Some(&args.output), &to_json(&g))?;
    let s = GraphStats::of(&g);
    println!(
        "{}: {} nodes ({} forward, {} backward_input, {} backward_weight, {} update), {} gradients",
        args.output.display(),
        s.nodes,
        s.phases[0],
        s.phases[1],
        s.phases[2],
        s.phases[3],
        g.training.gradients.len()
    );
    Ok(())
}

fn set_lr(opt: &mut Optimizer, new: f64) {
    match opt {
        Optimizer::Sgd { lr, .. } | Optimizer::Adam { lr, .. } | Optimizer::AdamW { lr, .. } => {
            *lr = new
        }
    }
}

/// `--train` and its options, for commands that build a forward graph (`zoo gpt`).
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Build the training step: forward, backward and the optimizer update.
    #[arg(long)]
    pub train: bool,
    /// The optimizer of the training step: sgd, adam or adamw.
    #[arg(long, requires = "train", default_value = "adam")]
    pub optimizer: Optimizer,
    /// Learning rate of the optimizer (default 1e-3).
    #[arg(long, requires = "train")]
    pub lr: Option<f64>,
    /// Recompute every layer's activations in the backward: full or selective.
    #[arg(long, requires = "train")]
    pub recompute: Option<RecomputeMode>,
    /// bf16 compute with f32 master weights.
    #[arg(long, requires = "train")]
    pub mixed_precision: bool,
}

impl TrainArgs {
    /// The training step of `forward` when `--train` was given, else `forward` itself.
    pub fn apply(&self, forward: Graph) -> Result<Graph, CliError> {
        if !self.train {
            return Ok(forward);
        }
        let mut optimizer = self.optimizer.clone();
        if let Some(lr) = self.lr {
            set_lr(&mut optimizer, lr);
        }
        let opts = TrainOptions {
            optimizer,
            recompute: self.recompute,
            mixed_precision: self.mixed_precision,
        };
        let spin = spinner("building the training step");
        let g = training_step(&forward, &opts)?;
        spin.finish_and_clear();
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardc::ir::zoo::{gpt, GptConfig};

    fn args(dir: &std::path::Path, loss: Option<&str>) -> GradArgs {
        GradArgs {
            file: dir.join("fwd.json"),
            output: dir.join("train.json"),
            loss: loss.map(str::to_string),
            optimizer: Some(Optimizer::adam(1e-3)),
            lr: Some(0.01),
            recompute: Some(RecomputeMode::Full),
            mixed_precision: false,
        }
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("shardc-grad-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let g = gpt(&GptConfig::tiny()).unwrap();
        std::fs::write(d.join("fwd.json"), to_json(&g)).unwrap();
        d
    }

    #[test]
    fn grad_writes_a_training_graph_with_gradients_and_updates() {
        let d = temp_dir("ok");
        run(args(&d, None)).unwrap();
        let t = read_graph(&d.join("train.json")).unwrap();
        assert!(!t.training.gradients.is_empty());
        assert!(!t.training.updates.is_empty());
        assert!(t.nodes.iter().any(|n| n.recompute));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn grad_with_an_unknown_loss_name_says_so() {
        let d = temp_dir("bad");
        let e = run(args(&d, Some("no.such.value")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no.such.value"), "{e}");
        let e = run(args(&d, Some("tokens"))).unwrap_err().to_string();
        assert!(e.contains("`tokens`") && e.contains("scalar"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
