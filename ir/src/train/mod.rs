//! Training steps: the forward graph, its backward (autodiff), optional activation
//! recomputation and the optimizer update, as one graph.

mod optimizer;
mod recompute;

pub use optimizer::{apply_optimizer, Optimizer};
pub use recompute::{recompute, RecomputeMode};

use crate::autodiff::grad;
use crate::dtype::DType;
use crate::error::{IrError, Result};
use crate::graph::Graph;
use crate::verify::verify;

/// How to turn a forward graph into a training step.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    pub optimizer: Optimizer,
    /// Recompute every layer's activations in the backward pass (`None`: store them).
    pub recompute: Option<RecomputeMode>,
    /// bf16 compute with f32 master weights: an f32 forward graph is cast to bf16 first.
    pub mixed_precision: bool,
}

impl Default for TrainOptions {
    /// Adam at learning rate 1e-3, no recomputation, full precision.
    fn default() -> Self {
        TrainOptions {
            optimizer: Optimizer::adam(1e-3),
            recompute: None,
            mixed_precision: false,
        }
    }
}

/// The training step of `forward` (whose `training.loss` names the loss): forward, backward with
/// parameter gradients, recomputation if asked, then the optimizer update.
pub fn training_step(forward: &Graph, opts: &TrainOptions) -> Result<Graph> {
    let loss = forward.training.loss.ok_or_else(|| {
        IrError::Graph(format!(
            "graph `{}` names no loss (training.loss): a training step needs a scalar loss",
            forward.name
        ))
    })?;
    let cast;
    let forward = if opts.mixed_precision {
        cast = cast_floats(forward, DType::F32, DType::BF16)?;
        &cast
    } else {
        forward
    };
    let mut g = grad(forward, loss)?;
    if let Some(mode) = opts.recompute {
        g = recompute(&g, mode, None)?;
    }
    apply_optimizer(&g, &opts.optimizer, opts.mixed_precision)
}

/// `g` with every `from` value made `to` (a uniform cast of the compute dtype: parameters,
/// activations, float inputs and constants alike).
pub fn cast_floats(g: &Graph, from: DType, to: DType) -> Result<Graph> {
    let mut out = g.clone();
    for n in &mut out.nodes {
        if n.ty.dtype == from {
            n.ty.dtype = to;
        }
    }
    verify(&out)?;
    Ok(out)
}
