//! A mixture-of-experts feed-forward layer with top-1 routing (Switch Transformer, Fedus et al.
//! 2021, arXiv 2101.03961).

use super::builder::Builder;
use super::require_positive;
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::Graph;
use crate::op::{BinaryFn, CompareDir, Init, Op, ReduceFn, UnaryFn};
use crate::types::TensorType;

/// Weight of the load-balancing loss (Switch Transformer's α = 10⁻²).
const AUX_LOSS_WEIGHT: f64 = 1e-2;

/// The shape of a mixture-of-experts layer.
#[derive(Clone, Debug, PartialEq)]
pub struct MoeConfig {
    /// Tokens per step (batch × sequence, flattened).
    pub tokens: u64,
    /// Model width (`H`).
    pub hidden: u64,
    /// Each expert's inner width (`F`).
    pub ffn: u64,
    /// Number of experts (`E`).
    pub experts: u64,
    /// Dtype of parameters, inputs and activations.
    pub dtype: DType,
}

impl Default for MoeConfig {
    /// 16 tokens, H=8, F=16, 4 experts, f32.
    fn default() -> Self {
        MoeConfig {
            tokens: 16,
            hidden: 8,
            ffn: 16,
            experts: 4,
            dtype: DType::F32,
        }
    }
}

/// Builds one MoE layer with a residual and a loss.
///
/// The router (`router.weight`, `[H, E]`) gives gate probabilities by softmax; top-1 selection is
/// `gates == max(gates)` as a one-hot mask (`route.mask`, `[T, E]`: we have no argmax op; exact
/// ties select several experts). Tokens are dispatched **densely** to an expert-major tensor
/// `dispatch` (`[E, T, H]`, the token where routed to that expert, zeros elsewhere): the
/// computation is E times the sparse one, but every op is static-shaped and the expert dim is
/// a plain tensor dim that expert parallelism shards (capacity-limited sparse dispatch would
/// need a sort or scatter with dynamic counts). Expert weights `experts.w1` (`[E, H, F]`) and
/// `experts.w2` (`[E, F, H]`) are applied with `dot_general` batched over E; the outputs are
/// combined weighted by each token's gate (`combine`, contracting E). The loss is the mean squared
/// error against `target` (`mse.value`) plus Switch's load-balancing loss `E · Σ_e frac_e · prob_e`
/// (`balance.value`), summed in `loss.value`.
pub fn moe(cfg: &MoeConfig) -> Result<Graph> {
    require_positive(
        "moe",
        &[
            ("tokens", cfg.tokens),
            ("hidden", cfg.hidden),
            ("ffn", cfg.ffn),
            ("experts", cfg.experts),
        ],
    )?;
    if !cfg.dtype.is_float() {
        return Err(super::config_err(
            "moe",
            "dtype",
            format!("must be a floating-point type, got {}", cfg.dtype),
        ));
    }
    let (t, h, f, e) = (cfg.tokens, cfg.hidden, cfg.ffn, cfg.experts);
    let mut b = Builder::new("moe", cfg.dtype);
    let x = b.input(
        "x",
        TensorType::new(cfg.dtype, vec![t, h]),
        Init::Normal { std: 1.0 },
    )?;
    let target = b.input(
        "target",
        TensorType::new(cfg.dtype, vec![t, h]),
        Init::Normal { std: 1.0 },
    )?;
    let gates = b.scoped("router", |b| {
        let w = b.weight("weight", &[h, e])?;
        let logits = b.linear("logits", x, w)?;
        b.softmax("gates", logits)
    })?;
    let (mask, gate) = b.scoped("route", |b| {
        let top = b.reduce("top", ReduceFn::Max, gates, &[1])?;
        let top = b.broadcast("top.bcast", top, &[0], &[t, e])?;
        let is_top = b.push(
            "is_top",
            Op::Compare {
                dir: CompareDir::Ge,
            },
            vec![gates, top],
            None,
        )?;
        let ty = TensorType::new(cfg.dtype, vec![t, e]);
        let mask = b.push("mask", Op::Convert, vec![is_top], Some(ty))?;
        let gate = b.binary("gate", BinaryFn::Mul, gates, mask)?;
        Ok((mask, gate))
    })?;
    let combined = b.scoped("experts", |b| {
        // dispatch[e, t, h] = mask[t, e] * x[t, h]
        let m = b.transpose("mask.expert_major", mask, &[1, 0])?;
        let m = b.broadcast("mask.bcast", m, &[0, 1], &[e, t, h])?;
        let xb = b.broadcast("x.bcast", x, &[1, 2], &[e, t, h])?;
        let dispatch = b.binary("dispatch", BinaryFn::Mul, m, xb)?;
        let w1 = b.weight("w1", &[e, h, f])?;
        let w2 = b.weight("w2", &[e, f, h])?;
        let h1 = b.dot("fc1", dispatch, w1, (&[0], &[0]), (&[2], &[1]))?;
        let a = b.unary("gelu", UnaryFn::Gelu, h1)?;
        let out = b.dot("fc2", a, w2, (&[0], &[0]), (&[2], &[1]))?;
        // combine[t, h] = sum_e gate[t, e] * out[e, t, h]
        b.dot("combine", gate, out, (&[0], &[1]), (&[1], &[0]))
    })?;
    let y = b.binary("residual", BinaryFn::Add, x, combined)?;
    let mse = b.mean_squared_error("mse", y, target)?;
    let aux = b.scoped("balance", |b| {
        // frac_e: share of tokens routed to e; prob_e: mean gate probability of e.
        let routed = b.reduce("routed", ReduceFn::Sum, mask, &[0])?;
        let frac = b.scale("frac", routed, 1.0 / t as f64)?;
        let psum = b.reduce("prob_sum", ReduceFn::Sum, gates, &[0])?;
        let prob = b.scale("prob", psum, 1.0 / t as f64)?;
        let fp = b.binary("frac_prob", BinaryFn::Mul, frac, prob)?;
        let s = b.reduce("sum", ReduceFn::Sum, fp, &[0])?;
        b.scale("value", s, e as f64 * AUX_LOSS_WEIGHT)
    })?;
    let loss = b.scoped("loss", |b| b.binary("value", BinaryFn::Add, mse, aux))?;
    Ok(b.finish_with_loss(loss))
}
