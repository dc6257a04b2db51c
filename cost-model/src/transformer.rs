//! The analytic transformer path: a GPT's per-layer ops, collectives and saved activations from
//! its shape numbers (Narayanan et al. SC21; Korthikanti et al. 2022), priced with the same
//! building blocks as the graph path ([`op_time`], [`collective_time`], [`model_state`],
//! [`held_microbatches`], [`estimate`]).

use serde::{Deserialize, Serialize};
use shardc_ir::{DType, Mesh, Op, ReduceFn, TensorType, ValueId};

use crate::cluster::Cluster;
use crate::collective::collective_time;
use crate::comm::CommUse;
use crate::compute::{gradient_accumulation, op_time, op_time_shaped, MatmulDims, OpClass, OpWork};
use crate::error::{CostError, Result};
use crate::estimate::{estimate, CollectiveLine, Estimate, Overlap, StepWork};
use crate::hardware::Precision;
use crate::memory::{
    held_microbatches, model_state, MemoryBreakdown, Recompute, Schedule, Zero,
    ADAM_MIXED_PRECISION,
};

/// A GPT's shape: `l` layers, hidden `h`, `a` heads, sequence `s`, vocabulary `V`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GptShape {
    pub layers: u64,
    pub hidden: u64,
    pub heads: u64,
    pub seq: u64,
    pub vocab: u64,
}

impl GptShape {
    /// GPT-3 175B (REFERENCES.md): l=96, h=12288, a=96, s=2048, V=51200 (padded).
    pub const GPT3_175B: GptShape = GptShape {
        layers: 96,
        hidden: 12288,
        heads: 96,
        seq: 2048,
        vocab: 51200,
    };

    /// `P = 12·l·h²·(1 + 13/(12h) + (V+s)/(12·l·h))` (Narayanan et al. SC21).
    pub fn parameters(&self) -> f64 {
        let (l, h, v, s) = self.lhvs();
        12.0 * l * h * h * (1.0 + 13.0 / (12.0 * h) + (v + s) / (12.0 * l * h))
    }

    /// FLOPs of one iteration on `batch` sequences without recomputation:
    /// `72·B·s·l·h²·(1 + s/(6h) + V/(12·l·h))` (what MFU counts).
    pub fn model_flops(&self, batch: u64) -> f64 {
        let (l, h, v, s) = self.lhvs();
        72.0 * batch as f64 * s * l * h * h * (1.0 + s / (6.0 * h) + v / (12.0 * l * h))
    }

    /// FLOPs that run: with full recomputation `96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h))`; with
    /// selective recomputation the model FLOPs plus the attention core's forward (`4·B·s²·h` per
    /// layer).
    pub fn hardware_flops(&self, batch: u64, recompute: Recompute) -> f64 {
        let (l, h, v, s) = self.lhvs();
        let b = batch as f64;
        match recompute {
            Recompute::None => self.model_flops(batch),
            Recompute::Selective => self.model_flops(batch) + 4.0 * b * s * s * h * l,
            Recompute::Full => {
                96.0 * b * s * l * h * h * (1.0 + s / (6.0 * h) + v / (16.0 * l * h))
            }
        }
    }

    fn lhvs(&self) -> (f64, f64, f64, f64) {
        (
            self.layers as f64,
            self.hidden as f64,
            self.vocab as f64,
            self.seq as f64,
        )
    }
}

/// One activation a layer keeps for its backward pass.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SavedTensor {
    pub name: &'static str,
    pub bytes: f64,
}

/// The tensors one layer saves for backward on one device (16-bit activations, 1-byte dropout
/// masks), per Korthikanti et al. §4: micro-batch `b`, tensor parallelism `t`, sequence
/// parallelism `sp`. Tensors inside the tensor-parallel region are split by `t`; the rest
/// (layer-norm inputs, dropout masks, the inputs of QKV and FC1) only under sequence parallelism.
pub fn saved_tensors(g: &GptShape, b: u64, t: u64, sp: bool, rc: Recompute) -> Vec<SavedTensor> {
    let (s, h, a, t) = (g.seq as f64, g.hidden as f64, g.heads as f64, t as f64);
    let sbh = s * b as f64 * h;
    let scores = a * s * s * b as f64;
    let outside = if sp { t } else { 1.0 };
    let out = |name, bytes| SavedTensor { name, bytes };
    if rc == Recompute::Full {
        return vec![out("layer input", 2.0 * sbh / outside)];
    }
    let mut v = vec![
        out("layer norm 1 input", 2.0 * sbh / outside),
        out("QKV input", 2.0 * sbh / outside),
        out("Q and K", 4.0 * sbh / t),
        out("V", 2.0 * sbh / t),
        out("attention projection input", 2.0 * sbh / t),
        out("attention dropout mask", sbh / outside),
        out("layer norm 2 input", 2.0 * sbh / outside),
        out("FC1 input", 2.0 * sbh / outside),
        out("GeLU input", 8.0 * sbh / t),
        out("FC2 input (GeLU output)", 8.0 * sbh / t),
        out("MLP dropout mask", sbh / outside),
    ];
    if rc == Recompute::None {
        v.push(out("softmax output", 2.0 * scores / t));
        v.push(out("softmax dropout mask", scores / t));
        v.push(out("softmax dropout output", 2.0 * scores / t));
    }
    v
}

/// One op of a layer's forward pass on one device; `core` marks the attention core (what
/// selective recomputation reruns).
struct LayerOp {
    work: OpWork,
    dims: Option<MatmulDims>,
    core: bool,
}

fn bf16(class: OpClass, flops: f64, bytes: f64) -> OpWork {
    OpWork {
        class,
        precision: Precision::Bf16,
        flops,
        bytes,
    }
}

/// The forward kernels of one layer on one device, as the graph path prices the zoo's GPT layer
/// (its fusion rules, [`crate::fusion`]): six matmuls and the fused elementwise regions between
/// them (the previous layer's bias-add and residual with layer norm 1; the QKV bias add with the
/// head split; scale-mask-softmax; the context transpose and normalisation; bias-add, residual
/// and layer norm 2; bias-GeLU). The zoo's GPT has no dropout, so neither does this. Matmul FLOPs sum to
/// `24·b·s·h²·(1 + s/(6h))/t`.
fn layer_ops(g: &GptShape, b: u64, t: u64, sp: bool) -> Vec<LayerOp> {
    let (s, h, a, t) = (g.seq as f64, g.hidden as f64, g.heads as f64, t as f64);
    let bf = b as f64;
    let e = bf * s * h;
    let sc = a * s * s * bf / t;
    let x = if sp { t } else { 1.0 };
    let tokens = bf * s;
    let mm = |flops: f64, bytes: f64, d: [f64; 4], core| LayerOp {
        work: bf16(OpClass::Matmul, flops, bytes),
        dims: Some(MatmulDims {
            batch: d[0],
            m: d[1],
            n: d[2],
            k: d[3],
        }),
        core,
    };
    // Fused regions run on the vector units at the fp32 rate.
    let ew = |flops: f64, bytes: f64, core| LayerOp {
        work: OpWork {
            class: OpClass::Elementwise,
            precision: Precision::Fp32,
            flops,
            bytes,
        },
        dims: None,
        core,
    };
    vec![
        // bias-add + residual of the previous layer with layer norm 1: reads the matmul output
        // and the residual, writes the layer input and the normalized value.
        ew(10.0 * e / x, 8.0 * e / x, false),
        mm(
            6.0 * e * h / t,
            2.0 * (e + 3.0 * h * h / t + 3.0 * e / t),
            [1.0, tokens, 3.0 * h / t, h],
            false,
        ),
        // QKV bias add and head split: reads 3e/t, writes q, k, v.
        ew(3.0 * e / t, 12.0 * e / t, false),
        mm(
            2.0 * e * s / t,
            2.0 * (2.0 * e / t + sc),
            [bf * a / t, s, s, h / a],
            true,
        ),
        ew(5.0 * sc, 4.0 * sc, true), // scale-mask-softmax
        mm(
            2.0 * e * s / t,
            2.0 * (sc + 2.0 * e / t),
            [bf * a / t, s, h / a, s],
            true,
        ),
        ew(0.0, 4.0 * e / t, false), // context transpose to [b, s, h/t]
        mm(
            2.0 * e * h / t,
            2.0 * (e / t + h * h / t + e),
            [1.0, tokens, h, h / t],
            false,
        ),
        ew(10.0 * e / x, 8.0 * e / x, false), // bias-add + residual + layer norm 2
        mm(
            8.0 * e * h / t,
            2.0 * (e + 4.0 * h * h / t + 4.0 * e / t),
            [1.0, tokens, 4.0 * h / t, h],
            false,
        ),
        ew(32.0 * e / t, 16.0 * e / t, false), // bias-GeLU
        mm(
            8.0 * e * h / t,
            2.0 * (4.0 * e / t + 4.0 * h * h / t + e),
            [1.0, tokens, h, 4.0 * h / t],
            false,
        ),
    ]
}

/// Bytes the backward of a fused elementwise region moves, in units of the forward region's
/// bytes, as the graph path prices the zoo's autodiff (see [`gpt_step`]).
const ELEMENTWISE_BACKWARD: f64 = 3.5;

/// The same for the softmax region: its backward reads the unnormalised weights and their
/// gradient and writes the scores' gradient (6 bytes per element against the forward's 4).
const SOFTMAX_BACKWARD: f64 = 1.5;

/// Bytes per parameter of the mixed-precision Adam update as the graph path prices the zoo's
/// optimizer: the update regions read the bf16 gradient and the fp32 master weight and moments,
/// write them back and write the bf16 weight, with the intermediates its fusion leaves written.
const ADAM_UPDATE_BYTES_PER_PARAMETER: f64 = 44.0;

/// A Megatron-style training run of a GPT.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GptTraining {
    pub shape: GptShape,
    /// Sequences per step, over all replicas.
    pub global_batch: u64,
    pub micro_batch: u64,
    pub dp: u64,
    pub tp: u64,
    pub pp: u64,
    pub sequence_parallel: bool,
    pub recompute: Recompute,
    pub schedule: Schedule,
    pub zero: Zero,
    pub overlap_gradient_reduction: bool,
}

impl GptTraining {
    /// Megatron's process layout as a mesh: tensor parallelism innermost (inside a node), then
    /// data parallelism, pipeline stages outermost.
    pub fn mesh(&self) -> Result<Mesh> {
        Mesh::new(&[("pp", self.pp), ("dp", self.dp), ("tp", self.tp)])
            .map_err(|e| CostError::Mismatch(e.to_string()))
    }

    /// Micro-batches per step on each replica.
    pub fn microbatches(&self) -> Result<u64> {
        let per_step = self.micro_batch * self.dp;
        if per_step == 0 || self.global_batch % per_step != 0 {
            return Err(CostError::Mismatch(format!(
                "global batch {} is not a multiple of micro-batch {} x data-parallel {}",
                self.global_batch, self.micro_batch, self.dp
            )));
        }
        Ok(self.global_batch / per_step)
    }
}

fn reduce_op(axes: &[String]) -> Op {
    Op::AllReduce {
        axes: axes.to_vec(),
        func: ReduceFn::Sum,
    }
}

/// A collective described as the graph path describes it, priced by [`collective_time`].
fn comm(op: Op, dims: Vec<u64>, mesh: &Mesh, cluster: &Cluster) -> Result<(CommUse, f64)> {
    let u = CommUse {
        node: ValueId(0),
        op,
        local_operand: TensorType::new(DType::BF16, dims),
        reason: String::new(),
    };
    let c = collective_time(&u, mesh, cluster)?;
    Ok((u, c.seconds))
}

fn line(
    what: &str,
    u: &CommUse,
    mesh: &Mesh,
    cluster: &Cluster,
    count: u64,
) -> Result<CollectiveLine> {
    let c = collective_time(u, mesh, cluster)?;
    Ok(CollectiveLine {
        what: what.to_string(),
        kind: c.kind,
        algorithm: c.algorithm,
        axes: u.op.collective_axes().join(","),
        bytes: c.bytes,
        seconds: c.seconds,
        count,
    })
}

/// The step of a GPT training run on the busiest device, built analytically.
pub fn gpt_step(cfg: &GptTraining, cluster: &Cluster) -> Result<StepWork> {
    let g = &cfg.shape;
    let m = cfg.microbatches()?;
    let mesh = cfg.mesh()?;
    cluster.check_mesh(&mesh)?;
    let (b, t, p) = (cfg.micro_batch, cfg.tp, cfg.pp);
    if g.heads % t != 0 || g.layers < p {
        return Err(CostError::Mismatch(format!(
            "{} heads must divide over tp={t} and {} layers over pp={p}",
            g.heads, g.layers
        )));
    }
    let per_stage = g.layers.div_ceil(p) as f64;
    let ops = layer_ops(g, b, t, cfg.sequence_parallel);
    let time = |o: &LayerOp| op_time_shaped(&o.work, o.dims.as_ref(), cluster);
    let fwd: f64 = ops.iter().map(time).sum();
    // The backward of a matmul is two matmuls of the same shape up to order (the shape factor
    // is symmetric); of an elementwise region, what the zoo's autodiff makes of it (layer norm,
    // softmax and GeLU backward as elementwise ops and reductions, fused by the graph path's
    // rules) moves about `ELEMENTWISE_BACKWARD` times the forward region's bytes.
    let twice = |w: &OpWork| OpWork {
        flops: 2.0 * w.flops,
        bytes: 2.0 * w.bytes,
        ..*w
    };
    let backward = |o: &LayerOp| match o.work.class {
        OpClass::Matmul => twice(&o.work),
        _ => OpWork {
            flops: 2.0 * o.work.flops,
            bytes: o.work.bytes
                * if o.core {
                    SOFTMAX_BACKWARD
                } else {
                    ELEMENTWISE_BACKWARD
                },
            ..o.work
        },
    };
    let bwd: f64 = ops
        .iter()
        .map(|o| op_time_shaped(&backward(o), o.dims.as_ref(), cluster))
        .sum();
    let rec: f64 = match cfg.recompute {
        Recompute::None => 0.0,
        Recompute::Selective => ops.iter().filter(|o| o.core).map(time).sum(),
        Recompute::Full => fwd,
    };
    // The output layer and loss (last stage) and the embedding (first stage).
    let (s, h, v) = (g.seq as f64, g.hidden as f64, g.vocab as f64);
    let e = b as f64 * s * h;
    let tf = t as f64;
    let logits = bf16(
        OpClass::Matmul,
        2.0 * e * v / tf,
        2.0 * (e + h * v / tf + b as f64 * s * v / tf),
    );
    let loss = OpWork {
        precision: Precision::Fp32,
        ..bf16(
            OpClass::Elementwise,
            5.0 * b as f64 * s * v / tf,
            8.0 * b as f64 * s * v / tf,
        )
    };
    let logits_dims = MatmulDims {
        batch: 1.0,
        m: b as f64 * s,
        n: v / tf,
        k: h,
    };
    let head_f = op_time_shaped(&logits, Some(&logits_dims), cluster) + op_time(&loss, cluster);
    let head_b = op_time_shaped(&twice(&logits), Some(&logits_dims), cluster)
        + op_time(&twice(&loss), cluster);
    let embed = bf16(OpClass::Elementwise, 0.0, 4.0 * e);
    let embed_f = op_time(&embed, cluster);
    let embed_b = op_time(&twice(&embed), cluster);

    // Tensor-parallel collectives of one layer: 2 all-reduces of b·s·h in the forward pass and
    // 2 in the backward (Megatron §3); sequence parallelism turns each into an all-gather and a
    // reduce-scatter (Korthikanti §4.2.2) and adds the backward's re-gather of each
    // column-parallel matmul's input for its weight gradient (2 more all-gathers: Megatron keeps
    // that input split on the sequence); recomputation repeats the forward ones. The output
    // layer adds the all-reduce of its input gradient (with sequence parallelism: the final
    // layer norm's output gathered for the logits and again for their weight gradient, and the
    // input gradient reduce-scattered), and the embedding, with sequence parallelism, the
    // gather of its output gradient (of its two summands, as the graph gathers them before
    // adding); these are the graph path's collectives of the zoo's GPT
    // (`tests/cost.rs` holds the two equal, and counts the graph's per layer).
    let mut lines = Vec::new();
    let mut stage_comm = 0.0;
    let rounds = 2 + match cfg.recompute {
        Recompute::Full => 1,
        _ => 0,
    };
    let layer_calls = 2 * rounds * per_stage as u64;
    if t > 1 {
        let tp = vec!["tp".to_string()];
        let tokens = b * g.seq;
        let gather = Op::AllGather {
            dim: 0,
            axes: tp.clone(),
        };
        let scatter = Op::ReduceScatter {
            dim: 0,
            axes: tp.clone(),
            func: ReduceFn::Sum,
        };
        let reduce = Op::AllReduce {
            axes: tp.clone(),
            func: ReduceFn::Sum,
        };
        // The output layer's and the embedding's are counted without pipelining only (with
        // it, the stages hold them apart and the layers' dominate; the graph path agrees).
        let (head, embedding) = if p == 1 { (1, 1) } else { (0, 0) };
        let per_stage = per_stage as u64;
        let pairs: Vec<(&str, Op, Vec<u64>, u64)> = if cfg.sequence_parallel {
            vec![
                (
                    "sequence-parallel all-gather",
                    gather.clone(),
                    vec![tokens / t, g.hidden],
                    layer_calls + 2 * per_stage,
                ),
                (
                    "sequence-parallel reduce-scatter",
                    scatter.clone(),
                    vec![tokens, g.hidden],
                    layer_calls,
                ),
                (
                    "output layer and embedding all-gathers",
                    gather,
                    vec![tokens / t, g.hidden],
                    2 * head + 2 * embedding,
                ),
                (
                    "output layer input-gradient reduce-scatter",
                    scatter,
                    vec![tokens, g.hidden],
                    head,
                ),
            ]
        } else {
            vec![
                (
                    "tensor-parallel all-reduce",
                    reduce.clone(),
                    vec![tokens, g.hidden],
                    layer_calls,
                ),
                (
                    "output layer input-gradient all-reduce",
                    reduce,
                    vec![tokens, g.hidden],
                    head,
                ),
            ]
        };
        let mut pairs = pairs;
        // Also on the graph path without pipelining, per micro-batch: the vocabulary-parallel
        // cross-entropy's five small all-reduces (its max, its sum of exponentials and their
        // gradients). Not here: the graph path's gather of the vocabulary-split embedding
        // table for the lookup, where Megatron does a masked lookup (an open difference).
        if p == 1 {
            pairs.push(("cross-entropy all-reduces", reduce_op(&tp), vec![tokens], 5));
        }
        for (what, op, dims, calls) in pairs.into_iter().filter(|x| x.3 > 0) {
            let (u, secs) = comm(op, dims, &mesh, cluster)?;
            stage_comm += secs * calls as f64;
            lines.push(line(what, &u, &mesh, cluster, calls * m)?);
        }
        // Once per step with sequence parallelism: the gradients of the parameters applied on
        // the sequence-split stream (layer norms' gains and biases, the row-parallel matmuls'
        // biases; 6 per layer, 2 for the final layer norm) are partial over `tp` and
        // all-reduced (Megatron all-reduces its sequence-parallel layer-norm gradients too).
        if cfg.sequence_parallel {
            let calls = 6 * per_stage + 2 * head;
            let (u, secs) = comm(reduce_op(&tp), vec![g.hidden], &mesh, cluster)?;
            stage_comm += secs * calls as f64 / m as f64;
            lines.push(line(
                "sequence-parallel parameter-gradient all-reduces",
                &u,
                &mesh,
                cluster,
                calls,
            )?);
        }
    }
    // Pipeline: each tensor-parallel rank sends its 1/t slice of the boundary activation and the
    // receiving stage all-gathers it (Narayanan §4.1, scatter/gather), forward and backward.
    let mut p2p = 0.0;
    if p > 1 {
        let slice = vec![(b * g.seq).div_ceil(t), g.hidden];
        let send = Op::CollectivePermute {
            axes: vec!["pp".into()],
            pairs: (0..p - 1).map(|i| (i, i + 1)).collect(),
        };
        let (u, secs) = comm(send, slice.clone(), &mesh, cluster)?;
        p2p += 2.0 * secs;
        lines.push(line(
            "pipeline send (1/t slice)",
            &u,
            &mesh,
            cluster,
            2 * m,
        )?);
        if t > 1 {
            let gather = Op::AllGather {
                dim: 0,
                axes: vec!["tp".into()],
            };
            let (u, secs) = comm(gather, slice, &mesh, cluster)?;
            p2p += 2.0 * secs;
            lines.push(line(
                "pipeline all-gather of the slice",
                &u,
                &mesh,
                cluster,
                2 * m,
            )?);
        }
    }

    // Parameters of the busiest stage on one device: its layers, plus the embedding (first stage;
    // the last keeps a tied copy for the output layer when p > 1).
    let layer_params = 12.0 * h * h + 13.0 * h;
    let embedding = v * h / tf + s * h;
    let stage_params = per_stage * layer_params / tf + embedding;
    let (w, gr, os) = model_state(stage_params, ADAM_MIXED_PRECISION, cfg.zero, cfg.dp);
    let dp = vec!["dp".to_string()];
    let n_params = stage_params.round() as u64;
    let mut gradient_comm = 0.0;
    if cfg.dp > 1 {
        let reductions: Vec<(&str, Op, Vec<u64>)> = if cfg.zero == Zero::None {
            vec![(
                "data-parallel gradient all-reduce",
                Op::AllReduce {
                    axes: dp.clone(),
                    func: ReduceFn::Sum,
                },
                vec![n_params],
            )]
        } else {
            vec![
                (
                    "ZeRO gradient reduce-scatter",
                    Op::ReduceScatter {
                        dim: 0,
                        axes: dp.clone(),
                        func: ReduceFn::Sum,
                    },
                    vec![n_params],
                ),
                (
                    "ZeRO parameter all-gather",
                    Op::AllGather {
                        dim: 0,
                        axes: dp.clone(),
                    },
                    vec![n_params.div_ceil(cfg.dp)],
                ),
            ]
        };
        for (what, op, dims) in reductions {
            let (u, secs) = comm(op, dims, &mesh, cluster)?;
            gradient_comm += secs;
            lines.push(line(what, &u, &mesh, cluster, 1)?);
        }
        if cfg.zero == Zero::Stage3 {
            // Weights are gathered before each forward and backward use.
            let op = Op::AllGather {
                dim: 0,
                axes: dp.clone(),
            };
            let (u, secs) = comm(op, vec![n_params.div_ceil(cfg.dp)], &mesh, cluster)?;
            stage_comm += 2.0 * secs;
            lines.push(line("ZeRO-3 weight all-gather", &u, &mesh, cluster, 2 * m)?);
        }
    }
    // Adam reads and writes every byte of model state (16 per parameter) once, and some of
    // its intermediates (ADAM_UPDATE_BYTES_PER_PARAMETER in all).
    let update = OpWork {
        precision: Precision::Fp32,
        ..bf16(
            OpClass::Elementwise,
            10.0 * os / 12.0,
            ADAM_UPDATE_BYTES_PER_PARAMETER / 16.0 * (w + gr + os),
        )
    };
    let optimizer = op_time(&update, cluster);

    // Memory: the first stage holds the most micro-batches (1F1B) and the embedding; the last
    // holds the logits.
    let held = held_microbatches(cfg.schedule, m, p) as f64;
    let saved = |rc| {
        saved_tensors(g, b, t, cfg.sequence_parallel, rc)
            .iter()
            .map(|x| x.bytes)
            .sum::<f64>()
    };
    let activations = saved(cfg.recompute) * per_stage * held;
    let layer_full = if cfg.recompute == Recompute::None {
        0.0
    } else {
        saved(Recompute::None)
    };
    let logits_bytes = 4.0 * b as f64 * s * v / tf;
    let transient = if p == 1 {
        layer_full.max(logits_bytes)
    } else {
        layer_full
    };
    let memory = MemoryBreakdown {
        weights: w,
        gradients: gr,
        optimizer_state: os,
        activations,
        transient,
        capacity: cluster.device.memory.capacity_bytes as f64,
    };

    let devices = (cfg.dp * t * p) as f64;
    let layers_f = per_stage * fwd;
    let layers_b = per_stage * bwd;
    // The busiest stage: with one stage everything; otherwise the last (layers and output layer).
    let (extra_f, mut extra_b) = if p == 1 {
        (head_f + embed_f, head_b + embed_b)
    } else {
        (head_f, head_b)
    };
    // Each micro-batch's 16-bit parameter gradients are added into the accumulation buffer.
    extra_b += op_time(&gradient_accumulation(2.0 * stage_params, m), cluster);
    Ok(StepWork {
        microbatches: m,
        stages: p,
        schedule: cfg.schedule,
        forward_s: layers_f + extra_f,
        backward_s: layers_b + extra_b,
        recompute_s: per_stage * rec,
        stage_comm_s: stage_comm,
        p2p_s: p2p,
        gradient_comm_s: gradient_comm,
        overlap_gradient_reduction: cfg.overlap_gradient_reduction,
        optimizer_s: optimizer,
        model_flops: g.model_flops(cfg.global_batch) / devices,
        hardware_flops: g.hardware_flops(cfg.global_batch, cfg.recompute) / devices,
        memory,
        collectives: lines,
        overlap: Overlap {
            gradient_reduction: cfg.overlap_gradient_reduction,
            ..Overlap::NONE
        },
        hidden_comm_s: 0.0,
        precision: Some(Precision::Bf16),
        top_ops: Vec::new(),
        warnings: Vec::new(),
        per_stage: Vec::new(),
    })
}

/// Estimates a GPT training step: [`gpt_step`] then [`estimate`].
pub fn estimate_gpt(cfg: &GptTraining, cluster: &Cluster) -> Result<Estimate> {
    Ok(estimate(&gpt_step(cfg, cluster)?))
}
