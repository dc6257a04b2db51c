//! A GPT-style decoder (GPT-2/GPT-3 architecture, as Megatron-LM lays it out).

use std::collections::BTreeSet;

use super::builder::Builder;
use super::{mul, require_positive};
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::{Graph, ValueId};
use crate::mesh::Mesh;
use crate::op::{BinaryFn, CompareDir, Init, Op, ReduceFn, UnaryFn};
use crate::sharding::{Annotation, Sharding};
use crate::types::TensorType;

/// Which sharding annotations the GPT builder adds.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum GptShardings {
    /// None: the planner decides everything.
    #[default]
    None,
    /// Megatron-LM's tensor parallelism (Shoeybi et al. 2019, arXiv 1909.08053) with data
    /// parallelism over this mesh: tokens and labels split on batch over axis `dp`; the qkv
    /// weight's and bias's output columns (heads) and the MLP's first weight and bias columns on
    /// `tp`; the attention output projection's and the MLP's second weight's rows on `tp`; the
    /// token embedding's rows (the vocabulary) on `tp`, so that the tied output layer is
    /// column-parallel over the vocabulary and the cross-entropy's reductions over it are
    /// partial sums over `tp` (Megatron's `VocabParallelEmbedding` and parallel cross-entropy,
    /// §3 of Shoeybi et al.; the lookup itself gathers the table, see the sharding crate's
    /// gather rule). The rest is left to propagation. The mesh needs an axis `dp`, `tp` or both.
    Megatron(Mesh),
    /// [`GptShardings::Megatron`] plus sequence parallelism (Korthikanti et al. 2022, arXiv
    /// 2205.05198, §4.2.2): the residual stream between the attention and MLP blocks (the
    /// embedding's output and each layer's two residual sums) is split on the sequence over
    /// `tp`, so layer norms run on `s/t` tokens, and propagation turns each block's input into
    /// an all-gather and its output's pending sum into a reduce-scatter. Needs an axis `tp`.
    MegatronSequenceParallel(Mesh),
}

/// The shape of a GPT-style decoder.
#[derive(Clone, Debug, PartialEq)]
pub struct GptConfig {
    /// Transformer layers (`l`).
    pub layers: u64,
    /// Hidden size (`h`).
    pub hidden: u64,
    /// Attention heads (`a`); must divide `hidden`.
    pub heads: u64,
    /// Sequence length (`s`).
    pub seq: u64,
    /// Vocabulary size (`V`).
    pub vocab: u64,
    /// Sequences per step (`B`).
    pub batch: u64,
    /// Dtype of parameters and activations (token ids and labels are i32).
    pub dtype: DType,
    /// Sharding annotations to add (none by default).
    pub shardings: GptShardings,
}

impl GptConfig {
    /// GPT-3 175B (Brown et al. 2020; l=96, h=12288, a=96, s=2048, V=51200 padded as in
    /// Narayanan et al. SC21) at this batch size, bf16.
    pub fn gpt3_175b(batch: u64) -> Self {
        GptConfig {
            layers: 96,
            hidden: 12288,
            heads: 96,
            seq: 2048,
            vocab: 51200,
            batch,
            dtype: DType::BF16,
            shardings: GptShardings::None,
        }
    }

    /// A tiny configuration for tests and examples (2 layers, h=16, 2 heads, s=8, V=32, B=2, f32).
    pub fn tiny() -> Self {
        GptConfig {
            layers: 2,
            hidden: 16,
            heads: 2,
            seq: 8,
            vocab: 32,
            batch: 2,
            dtype: DType::F32,
            shardings: GptShardings::None,
        }
    }

    fn validate(&self) -> Result<()> {
        require_positive(
            "gpt",
            &[
                ("layers", self.layers),
                ("hidden", self.hidden),
                ("heads", self.heads),
                ("seq", self.seq),
                ("vocab", self.vocab),
                ("batch", self.batch),
            ],
        )?;
        if self.hidden % self.heads != 0 {
            return Err(super::config_err(
                "gpt",
                "heads",
                format!("({}) must divide hidden ({})", self.heads, self.hidden),
            ));
        }
        if !self.dtype.is_float() {
            return Err(super::config_err(
                "gpt",
                "dtype",
                format!("must be a floating-point type, got {}", self.dtype),
            ));
        }
        // Token ids are i32: the vocabulary must fit.
        if self.vocab > i32::MAX as u64 {
            return Err(super::config_err("gpt", "vocab", "must fit in i32"));
        }
        mul("gpt", "hidden", self.hidden, 4)?;
        match &self.shardings {
            GptShardings::None => {}
            GptShardings::Megatron(mesh) => {
                mesh.validate()?;
                if mesh.axis_size("dp").is_none() && mesh.axis_size("tp").is_none() {
                    return Err(super::config_err(
                        "gpt",
                        "mesh",
                        format!("for megatron shardings needs an axis `dp` or `tp`, got {mesh}"),
                    ));
                }
            }
            GptShardings::MegatronSequenceParallel(mesh) => {
                mesh.validate()?;
                if mesh.axis_size("tp").is_none() {
                    return Err(super::config_err(
                        "gpt",
                        "mesh",
                        format!(
                            "for megatron sequence-parallel shardings needs an axis `tp`, got {mesh}"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Builds a GPT-style decoder; see [`gpt_with_progress`].
pub fn gpt(cfg: &GptConfig) -> Result<Graph> {
    gpt_with_progress(cfg, &mut |_, _| {})
}

/// Builds a GPT-style decoder without dropout; see [`gpt_with_dropout`].
pub fn gpt_with_progress(cfg: &GptConfig, progress: &mut dyn FnMut(u64, u64)) -> Result<Graph> {
    gpt_with_dropout(cfg, 0.0, progress)
}

/// Builds a GPT-style decoder training graph (forward pass and loss), calling
/// `progress(layers_done, layers)` after each layer.
///
/// Token embedding (gather from `embed.tokens`, `[V, h]`) plus a learned position embedding;
/// per layer, pre-layer-norm multi-head causal self-attention and a GELU MLP (`4h`), each with a
/// residual; a final layer norm; logits through the *tied* token embedding (its transpose, as
/// GPT-2 does; this is what Narayanan et al.'s parameter formula counts); mean cross-entropy over
/// `B·s` positions. Values of layer `i` are named `layers.{i}.ln1.*`,
/// `layers.{i}.attn.{qkv,scores,weights,context,out}`, `layers.{i}.mlp.{fc1,gelu,fc2}`.
///
/// The qkv projection's `3h` columns are read head-major, `[B, s, a, 3, h/a]`, so that splitting
/// those columns over a tensor-parallel axis splits whole heads (Megatron-LM's layout).
///
/// With `dropout > 0`, dropout at that rate where GPT-2 and Megatron-LM put it (their default
/// is 0.1): on the embedding's output (`embed.dropout`), on the attention weights
/// (`layers.{i}.attn.weights.dropout`) and on each block's output before its residual
/// (`layers.{i}.attn_dropout`, `layers.{i}.mlp_dropout`). The IR has no random-number op, so
/// each keep mask is a bool input `<name>.keep` (true with probability `1 − dropout`).
pub fn gpt_with_dropout(
    cfg: &GptConfig,
    dropout: f64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Graph> {
    cfg.validate()?;
    if !(0.0..1.0).contains(&dropout) {
        return Err(super::config_err(
            "gpt",
            "dropout",
            format!("must be in [0, 1), got {dropout}"),
        ));
    }
    let mut b = Builder::new("gpt", cfg.dtype);
    let (bs, s, h, v) = (cfg.batch, cfg.seq, cfg.hidden, cfg.vocab);
    let index = TensorType::new(DType::I32, vec![bs, s]);
    let tokens = b.input("tokens", index.clone(), Init::Index { high: v })?;
    let labels = b.input("labels", index, Init::Index { high: v })?;
    let mask = causal_mask(&mut b, s)?;
    let (wte, mut x) = b.scoped("embed", |b| {
        let wte = b.weight("tokens", &[v, h])?;
        let wpe = b.weight("positions", &[s, h])?;
        let tok = b.push(
            "token_lookup",
            Op::Gather { axis: 0 },
            vec![wte, tokens],
            None,
        )?;
        let x = b.binary_bcast("out", BinaryFn::Add, tok, wpe, &[1, 2])?;
        let x = drop_out(b, "dropout", x, dropout)?;
        Ok((wte, x))
    })?;
    for i in 0..cfg.layers {
        x = b.scoped(format!("layers.{i}"), |b| layer(b, cfg, x, mask, dropout))?;
        progress(i + 1, cfg.layers);
    }
    let x = b.layer_norm("final_ln", x)?;
    // Tied output embedding: logits[b, s, v] = sum_h x[b, s, h] * wte[v, h].
    let logits = b.dot("logits", x, wte, (&[], &[]), (&[2], &[1]))?;
    let loss = b.cross_entropy(logits, labels)?;
    let mut g = b.finish_with_loss(loss);
    match &cfg.shardings {
        GptShardings::None => {}
        GptShardings::Megatron(mesh) => annotate_megatron(&mut g, cfg, mesh, false),
        GptShardings::MegatronSequenceParallel(mesh) => annotate_megatron(&mut g, cfg, mesh, true),
    }
    Ok(g)
}

/// `allowed[q, k] = q >= k`, built once and shared by every layer.
fn causal_mask(b: &mut Builder, s: u64) -> Result<ValueId> {
    b.scoped("causal_mask", |b| {
        let ty = TensorType::new(DType::I32, vec![s, s]);
        let q = b.push("query_pos", Op::Iota { dim: 0 }, vec![], Some(ty.clone()))?;
        let k = b.push("key_pos", Op::Iota { dim: 1 }, vec![], Some(ty))?;
        b.push(
            "allowed",
            Op::Compare {
                dir: CompareDir::Ge,
            },
            vec![q, k],
            None,
        )
    })
}

/// The score a masked position gets before softmax: large and negative, but finite in the dtype
/// (exp underflows to exactly 0 after the max is subtracted).
fn mask_fill(dtype: DType) -> f64 {
    match dtype {
        // f16's largest finite value is 65504.
        DType::F16 => -6.0e4,
        _ => -1.0e9,
    }
}

/// `x` with each element kept with probability `1 − p` and scaled by `1/(1 − p)`, or zeroed,
/// by a bool input `{local}.keep`; `x` itself when `p = 0`.
fn drop_out(b: &mut Builder, local: &str, x: ValueId, p: f64) -> Result<ValueId> {
    if p == 0.0 {
        return Ok(x);
    }
    let dims = b.dims(x);
    // floor(U[1 − p, 2 − p)) is 1 with probability 1 − p.
    let keep = b.input(
        &format!("{local}.keep"),
        TensorType::new(DType::Bool, dims.clone()),
        Init::Uniform {
            low: 1.0 - p,
            high: 2.0 - p,
        },
    )?;
    let scaled = b.scale(&format!("{local}.scaled"), x, 1.0 / (1.0 - p))?;
    let zero = b.constant(&format!("{local}.zero"), 0.0, &dims)?;
    b.push(local, Op::Select, vec![keep, scaled, zero], None)
}

fn layer(
    b: &mut Builder,
    cfg: &GptConfig,
    x: ValueId,
    mask: ValueId,
    dropout: f64,
) -> Result<ValueId> {
    let ln1 = b.layer_norm("ln1", x)?;
    let attn = b.scoped("attn", |b| attention(b, cfg, ln1, mask, dropout))?;
    let attn = drop_out(b, "attn_dropout", attn, dropout)?;
    let x1 = b.binary("attn_residual", BinaryFn::Add, x, attn)?;
    let ln2 = b.layer_norm("ln2", x1)?;
    let mlp = b.scoped("mlp", |b| {
        let h = cfg.hidden;
        let w1 = b.weight("fc1.weight", &[h, 4 * h])?;
        let b1 = b.bias("fc1.bias", &[4 * h])?;
        let f1 = b.linear("fc1.matmul", ln2, w1)?;
        let f1 = b.add_bias("fc1", f1, b1)?;
        let g = b.unary("gelu", UnaryFn::Gelu, f1)?;
        let w2 = b.weight("fc2.weight", &[4 * h, h])?;
        let b2 = b.bias("fc2.bias", &[h])?;
        let f2 = b.linear("fc2.matmul", g, w2)?;
        b.add_bias("fc2", f2, b2)
    })?;
    let mlp = drop_out(b, "mlp_dropout", mlp, dropout)?;
    b.binary("mlp_residual", BinaryFn::Add, x1, mlp)
}

fn attention(
    b: &mut Builder,
    cfg: &GptConfig,
    x: ValueId,
    mask: ValueId,
    dropout: f64,
) -> Result<ValueId> {
    let (bs, s, h, a) = (cfg.batch, cfg.seq, cfg.hidden, cfg.heads);
    let d = h / a;
    let w = b.weight("qkv.weight", &[h, 3 * h])?;
    let bias = b.bias("qkv.bias", &[3 * h])?;
    let qkv = b.linear("qkv.matmul", x, w)?;
    let qkv = b.add_bias("qkv", qkv, bias)?;
    let heads = b.reshape("qkv.heads", qkv, &[bs, s, a, 3, d])?;
    let mut split = |name: &str, i: u64| -> Result<ValueId> {
        let part = b.push(
            &format!("{name}.slice"),
            Op::Slice {
                start: vec![0, 0, 0, i, 0],
                limit: vec![bs, s, a, i + 1, d],
                stride: vec![1; 5],
            },
            vec![heads],
            None,
        )?;
        b.reshape(name, part, &[bs, s, a, d])
    };
    let q = split("q", 0)?;
    let k = split("k", 1)?;
    let v = split("v", 2)?;
    // scores[b, a, q, k] = sum_d q[b, q, a, d] * k[b, k, a, d]
    let raw = b.dot("scores.matmul", q, k, (&[0, 2], &[0, 2]), (&[3], &[3]))?;
    let scores = b.scale("scores", raw, 1.0 / (d as f64).sqrt())?;
    let sq = [bs, a, s, s];
    let allowed = b.broadcast("masked.allowed", mask, &[2, 3], &sq)?;
    let fill = b.constant("masked.fill", mask_fill(cfg.dtype), &sq)?;
    let masked = b.push("masked", Op::Select, vec![allowed, scores, fill], None)?;
    let (weights, total) = softmax_numerator(b, cfg.dtype, masked)?;
    // context[b, a, q, d] = sum_k weights[b, a, q, k] * v[b, k, a, d] / total[b, a, q]: the
    // softmax normalised after the product with v (as FlashAttention does, Dao et al. 2022),
    // so the backward reads the unnormalised weights once and the normalised context (the
    // output projection's input, kept anyway): one s×s value per head kept, as Megatron's fused
    // scale-mask-softmax keeps its output only (Korthikanti et al. 2022, Table 2).
    // Dropout of the normalised weights is dropout of the unnormalised ones, normalised after.
    let weights = drop_out(b, "weights.dropout", weights, dropout)?;
    let ctx = b.dot(
        "context.matmul",
        weights,
        v,
        (&[0, 1], &[0, 2]),
        (&[3], &[1]),
    )?;
    let ctx = b.transpose("context.transpose", ctx, &[0, 2, 1, 3])?;
    let total = b.transpose("weights.total.transpose", total, &[0, 2, 1])?;
    let ctx = b.binary_bcast("context.normalized", BinaryFn::Div, ctx, total, &[0, 1, 2])?;
    let ctx = b.reshape("context", ctx, &[bs, s, h])?;
    let wo = b.weight("out.weight", &[h, h])?;
    let bo = b.bias("out.bias", &[h])?;
    let out = b.linear("out.matmul", ctx, wo)?;
    b.add_bias("out", out, bo)
}

/// `exp(x − shift)` over the last dim and its sum, `shift` the row maximum truncated to an
/// integer: softmax is invariant to the shift, and a value that passes through an integer type
/// carries no gradient (`jax.nn.softmax` takes its maximum under `stop_gradient` for the same
/// reason), so the backward never reads `x`. The truncated maximum is within 1 of the true one,
/// so `exp` stays at most `e`.
fn softmax_numerator(b: &mut Builder, dtype: DType, x: ValueId) -> Result<(ValueId, ValueId)> {
    let dims = b.dims(x);
    let last = dims.len() - 1;
    let keep: Vec<usize> = (0..last).collect();
    let max = b.reduce("weights.max", ReduceFn::Max, x, &[last])?;
    let int = TensorType::new(DType::I32, dims[..last].to_vec());
    let shift = b.push("weights.max.int", Op::Convert, vec![max], Some(int.clone()))?;
    let shift = b.push(
        "weights.shift",
        Op::Convert,
        vec![shift],
        Some(int.with_dtype(dtype)),
    )?;
    let shifted = b.binary_bcast("weights.shifted", BinaryFn::Sub, x, shift, &keep)?;
    let e = b.unary("weights", UnaryFn::Exp, shifted)?;
    let total = b.reduce("weights.total", ReduceFn::Sum, e, &[last])?;
    Ok((e, total))
}

fn annotate_megatron(g: &mut Graph, cfg: &GptConfig, mesh: &Mesh, sequence_parallel: bool) {
    let mut add = |value: String, dims: &[&[&str]]| {
        g.annotations.push(Annotation {
            value,
            sharding: Sharding::from_dims(dims),
            priority: 0,
        })
    };
    if mesh.axis_size("dp").is_some() {
        add("tokens".into(), &[&["dp"], &[]]);
        add("labels".into(), &[&["dp"], &[]]);
    }
    if mesh.axis_size("tp").is_some() {
        add("embed.tokens".into(), &[&["tp"], &[]]);
        if sequence_parallel {
            let batch: &[&str] = if mesh.axis_size("dp").is_some() {
                &["dp"]
            } else {
                &[]
            };
            let seq: &[&[&str]] = &[batch, &["tp"], &[]];
            add("embed.out".into(), seq);
            for i in 0..cfg.layers {
                let p = format!("layers.{i}");
                for value in ["attn_residual", "mlp_residual", "ln1.out", "ln2.out"] {
                    add(format!("{p}.{value}"), seq);
                }
                // `g`: the column-parallel matmuls' results split on their columns, so their
                // sequence-split input is all-gathered just before them.
                for value in ["attn.qkv.matmul", "mlp.fc1.matmul"] {
                    add(format!("{p}.{value}"), &[batch, &[], &["tp"]]);
                }
            }
            add("final_ln.out".into(), seq);
            // The tied output layer is column-parallel over the vocabulary as without SP.
            add("logits".into(), &[batch, &[], &["tp"]]);
        }
        for i in 0..cfg.layers {
            let p = format!("layers.{i}");
            add(format!("{p}.attn.qkv.weight"), &[&[], &["tp"]]);
            add(format!("{p}.attn.qkv.bias"), &[&["tp"]]);
            add(format!("{p}.attn.out.weight"), &[&["tp"], &[]]);
            add(format!("{p}.mlp.fc1.weight"), &[&[], &["tp"]]);
            add(format!("{p}.mlp.fc1.bias"), &[&["tp"]]);
            add(format!("{p}.mlp.fc2.weight"), &[&["tp"], &[]]);
        }
    }
    if sequence_parallel && mesh.axis_size("tp").is_some() {
        // `ḡ`: the row-parallel matmuls' results are pending sums over `tp`, reduced straight
        // into the sequence split their consumers (bias, dropout, residual) run in: a
        // reduce-scatter, with the weights never gathered.
        let batch: &[&str] = if mesh.axis_size("dp").is_some() {
            &["dp"]
        } else {
            &[]
        };
        for i in 0..cfg.layers {
            for value in ["attn.out.matmul", "mlp.fc2.matmul"] {
                g.annotations.push(Annotation {
                    value: format!("layers.{i}.{value}"),
                    sharding: pending_over_tp(batch),
                    priority: 0,
                });
            }
        }
    }
    g.mesh = Some(mesh.clone());
}

/// `[batch, -, -]`, a pending sum over `tp`: a row-parallel matmul's result before its
/// reduce-scatter (or a column-parallel input gradient's).
fn pending_over_tp(batch: &[&str]) -> Sharding {
    Sharding {
        partial: vec!["tp".to_string()],
        ..Sharding::from_dims(&[batch, &[], &[]])
    }
}

/// Adds to a training step built from a GPT graph with Megatron annotations (the zoo's
/// [`GptShardings`], after [`crate::training_step`]) what Megatron's schedule fixes in the
/// backward and the recomputation, where a JAX user's `with_sharding_constraint`s would carry
/// over by transposition and rematerialization:
/// - every recomputed copy (`<name>.recompute`) of an annotated value gets its annotation;
/// - under sequence parallelism (Korthikanti et al. 2022 §4.2.2, Figure 5), per layer, the
///   gradients take the layouts of the values they are gradients of (as a JAX constraint's
///   transpose constrains the cotangent): the column-parallel matmuls' input gradients
///   (`attn.qkv.matmul.grad_lhs`, `mlp.fc1.matmul.grad_lhs`, and the logits') are split on the
///   sequence like the layer norms' outputs, so each is computed as a pending sum over `tp` and
///   reduce-scattered (the backward of `g`); the row-parallel matmuls' input gradients
///   (`attn.out.matmul.grad_lhs`, `mlp.fc2.matmul.grad_lhs`) and the gradients between them stay
///   split on heads or the MLP's columns, so the residual stream's gradient (split on the
///   sequence) is all-gathered before them (the backward of `ḡ`); the embedding's output
///   gradient is gathered before its scatter into the vocabulary-split table.
///
/// Values the graph does not have are skipped; annotations already there are kept. Idempotent.
pub fn annotate_megatron_training(g: &mut Graph) {
    let names: BTreeSet<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
    let mut annotated: BTreeSet<String> = g.annotations.iter().map(|a| a.value.clone()).collect();
    let mut add: Vec<Annotation> = Vec::new();
    let mut push = |a: Annotation, add: &mut Vec<Annotation>| {
        if names.contains(a.value.as_str()) && annotated.insert(a.value.clone()) {
            add.push(a);
        }
    };
    for a in &g.annotations {
        let copy = Annotation {
            value: format!("{}.recompute", a.value),
            ..a.clone()
        };
        push(copy, &mut add);
    }
    // Sequence parallelism shows in the row-parallel matmuls' pending annotations.
    let layers: Vec<(String, Vec<String>)> = g
        .annotations
        .iter()
        .filter(|a| a.value.ends_with(".attn.out.matmul") && !a.sharding.partial.is_empty())
        .map(|a| {
            let prefix = a.value.trim_end_matches(".attn.out.matmul").to_string();
            (prefix, a.sharding.dims[0].axes.clone())
        })
        .collect();
    for (p, batch) in &layers {
        let batch: Vec<&str> = batch.iter().map(String::as_str).collect();
        let split_last = Sharding::from_dims(&[&batch, &[], &["tp"]]);
        let split_seq = Sharding::from_dims(&[&batch, &["tp"], &[]]);
        let mut wants: Vec<(String, Sharding)> = Vec::new();
        for v in ["attn.qkv.matmul.grad_lhs", "mlp.fc1.matmul.grad_lhs"] {
            wants.push((format!("{p}.{v}"), split_seq.clone()));
        }
        for v in [
            "attn.out.matmul.grad_lhs",
            "mlp.fc2.matmul.grad_lhs",
            "mlp.gelu.grad",
            "attn.qkv.heads.grad.1",
        ] {
            wants.push((format!("{p}.{v}"), split_last.clone()));
        }
        for v in ["attn_residual.grad", "mlp_residual.grad"] {
            wants.push((format!("{p}.{v}"), split_seq.clone()));
        }
        if p == &layers[0].0 {
            wants.push(("logits.grad_lhs".into(), split_seq.clone()));
            // The embedding's output gradient is gathered (the backward of the reduce-scatter
            // after Megatron's masked lookup), so each rank adds its vocabulary rows locally
            // rather than reduce-scattering a table-sized sum.
            wants.push((
                "embed.out.grad".into(),
                Sharding::from_dims(&[&batch, &[], &[]]),
            ));
        }
        for (value, sharding) in wants {
            let a = Annotation {
                value,
                sharding,
                priority: 0,
            };
            push(a, &mut add);
        }
    }
    g.annotations.extend(add);
}
