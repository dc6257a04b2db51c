//! `shardc grad FILE -o FILE`: the training step of a graph with a scalar loss.

use std::path::PathBuf;

use clap::Args;
use shardc::ir::train::{apply_optimizer, recompute};
use shardc::ir::{grad, to_json, GraphStats, Optimizer, RecomputeMode};

use super::{read_graph, write_output, CliError};

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
