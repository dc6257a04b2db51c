//! The model zoo: builders for the graphs the rest of shardc is tested and demonstrated on.
//!
//! Every builder goes through [`Graph::push`](crate::Graph::push) (so every node is
//! type-checked as it is added), gives values scoped names (`layers.3.attn.qkv`), marks inputs
//! and parameters with their [`Role`](crate::Role) and an [`Init`](crate::Init) hint for the
//! reference executor's random inputs (weights
//! `Normal(0.02)`, layer-norm gains `Fill(1)`, biases `Fill(0)`, token ids and labels
//! `Index { high }`), and sets `training.loss` when the model has a loss. The results pass
//! [`crate::verify`].
//!
//! | model | builder | what it exercises |
//! |---|---|---|
//! | multi-layer perceptron | [`mlp`] | dots, biases, activations, mean squared error |
//! | GPT-style decoder | [`gpt`] | embeddings, layer norm, causal attention, GELU MLP, tied logits, cross-entropy; Megatron-LM annotations |
//! | ResNet-style conv net | [`resnet`] | NCHW convolutions with stride and padding (spatial partitioning) |
//! | mixture of experts | [`moe`] | router, top-1 gating, expert-major weights (expert parallelism) |

mod builder;
mod gpt;
mod mlp;
mod moe;
mod resnet;

pub use gpt::{
    annotate_megatron_training, gpt, gpt_with_dropout, gpt_with_progress, GptConfig, GptShardings,
};
pub use mlp::{mlp, MlpConfig};
pub use moe::{moe, MoeConfig};
pub use resnet::{resnet, ResNetConfig};

#[cfg(test)]
mod tests;

use crate::error::{IrError, Result};

/// A zero-sized dimension or a configuration the model cannot be built with, named by field.
fn config_err(model: &str, field: &str, message: impl std::fmt::Display) -> IrError {
    IrError::Format(format!("{model} config: `{field}` {message}"))
}

/// Checks that every named size of a config is at least 1.
fn require_positive(model: &str, fields: &[(&str, u64)]) -> Result<()> {
    for &(field, v) in fields {
        if v == 0 {
            return Err(config_err(model, field, "must be at least 1"));
        }
    }
    Ok(())
}

/// `a * b`, or an error naming the config fields whose product overflows.
fn mul(model: &str, what: &str, a: u64, b: u64) -> Result<u64> {
    a.checked_mul(b)
        .ok_or_else(|| config_err(model, what, "overflows u64"))
}
