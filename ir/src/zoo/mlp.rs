//! A multi-layer perceptron.

use super::builder::Builder;
use super::{config_err, require_positive};
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::Graph;
use crate::op::{Init, UnaryFn};
use crate::types::TensorType;

/// The shape of a multi-layer perceptron.
#[derive(Clone, Debug, PartialEq)]
pub struct MlpConfig {
    /// Rows per step.
    pub batch: u64,
    /// Feature sizes: the input's, then each layer's output (so `sizes.len() - 1` layers).
    pub sizes: Vec<u64>,
    /// Applied after every layer but the last.
    pub activation: UnaryFn,
    /// Adds a `target` input and a mean-squared-error loss.
    pub loss: bool,
    /// Dtype of parameters, inputs and activations.
    pub dtype: DType,
}

impl Default for MlpConfig {
    /// Batch 8, sizes 16 → 32 → 8, ReLU, with a loss, f32.
    fn default() -> Self {
        MlpConfig {
            batch: 8,
            sizes: vec![16, 32, 8],
            activation: UnaryFn::Relu,
            loss: true,
            dtype: DType::F32,
        }
    }
}

/// Builds an MLP: input `x` (`[batch, sizes[0]]`), per layer `i` a weight
/// `layers.{i}.weight`, bias `layers.{i}.bias`, product `layers.{i}.matmul`, biased
/// `layers.{i}.fc` and activation `layers.{i}.act`; the output is the last layer's `fc`, or the
/// loss `loss.value` when `loss` is set.
pub fn mlp(cfg: &MlpConfig) -> Result<Graph> {
    if cfg.sizes.len() < 2 {
        return Err(config_err(
            "mlp",
            "sizes",
            format!(
                "needs at least two entries (input and one layer), got {}",
                cfg.sizes.len()
            ),
        ));
    }
    require_positive("mlp", &[("batch", cfg.batch)])?;
    for (i, &s) in cfg.sizes.iter().enumerate() {
        if s == 0 {
            return Err(config_err("mlp", "sizes", format!("entry {i} is 0")));
        }
    }
    if !cfg.dtype.is_float() {
        return Err(config_err(
            "mlp",
            "dtype",
            format!("must be a floating-point type, got {}", cfg.dtype),
        ));
    }
    let mut b = Builder::new("mlp", cfg.dtype);
    let mut x = b.input(
        "x",
        TensorType::new(cfg.dtype, vec![cfg.batch, cfg.sizes[0]]),
        Init::Normal { std: 1.0 },
    )?;
    let layers = cfg.sizes.len() - 1;
    for (i, pair) in cfg.sizes.windows(2).enumerate() {
        x = b.scoped(format!("layers.{i}"), |b| {
            let w = b.weight("weight", &[pair[0], pair[1]])?;
            let bias = b.bias("bias", &[pair[1]])?;
            let y = b.linear("matmul", x, w)?;
            let y = b.add_bias("fc", y, bias)?;
            if i + 1 < layers {
                b.unary("act", cfg.activation, y)
            } else {
                Ok(y)
            }
        })?;
    }
    if !cfg.loss {
        let mut g = b.g;
        g.outputs.push(x);
        return Ok(g);
    }
    let dims = b.dims(x);
    let target = b.input(
        "target",
        TensorType::new(cfg.dtype, dims),
        Init::Normal { std: 1.0 },
    )?;
    let loss = b.mean_squared_error("loss", x, target)?;
    Ok(b.finish_with_loss(loss))
}
