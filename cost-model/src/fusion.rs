//! Fusion regions: which ops of a graph a compiler runs as one kernel, so that the graph path
//! prices memory traffic the way fused kernels move it.
//!
//! The rules (documented in the crate docs too):
//!
//! - **Views and generators cost nothing.** `reshape` and `broadcast` are index arithmetic in
//!   whatever reads them, and `constant`, `iota` and `axis_index` are computed where they are
//!   used (XLA duplicates such cheap producers into each consumer fusion). A read of one is a read
//!   of what it views; a generator is read from nowhere.
//! - **Loop and input fusion.** Elementwise ops (unary, binary, compare, select, convert, copy),
//!   data movement that a loop fusion indexes (transpose, slice, concatenate, pad, reverse) and
//!   reductions fuse with their producers and consumers of the same kinds: XLA's loop fusion (an
//!   elementwise consumer into its producer) and input fusion (a reduction with the elementwise
//!   ops that feed it, XLA's `GpuInstructionFusion`), and the normalisation kernels that fuse a
//!   row reduction with the elementwise ops on both sides of it (Megatron-LM's fused
//!   scale-mask-softmax, Apex's fused layer norm, XLA GPU's softmax rewriter). So a bias add and
//!   a GeLU become one kernel (Megatron's fused bias-GeLU), a scale, mask and softmax one
//!   (scale-mask-softmax), a bias add, dropout and residual add one (bias-dropout-add).
//! - **Kernels stay kernels.** Matmuls and convolutions (library calls), gathers, scatters,
//!   sorts, dynamic slices and collectives are not fused: each reads its operands and writes its
//!   result. (cuBLAS epilogues that fuse a bias are not modelled: the bias add joins the
//!   elementwise region after the matmul, which costs the same one read of the matmul's output.)
//! - **No cycles, one phase.** Two ops fuse only if every path between them stays inside the
//!   region: an op's *depth* is the most kernels on any path from the graph's inputs to it, and
//!   only ops of equal depth fuse (a region then has one depth, and a path that leaves it through
//!   a kernel comes back deeper). Ops fuse only within one phase (forward, backward, update),
//!   one recomputation flag and one pipeline stage: those run at different times.
//!
//! - **Attention dropout runs alone.** A dropout (a `select` on a mask that is a graph input: the
//!   IR has no random-number op) inside an attention core (reached from a batched `dot_general`
//!   and reaching one through fusible ops only: the forward's softmax-to-`probs·v` and the
//!   backward's `dctx·vᵀ`-to-`dq`/`dk`) is a kernel of its own, fused with nothing. That is how
//!   Megatron-LM ran it when Narayanan et al. SC21 measured it (`megatron/model/transformer.py`:
//!   `FusedScaleMaskSoftmax`, then `self.attention_dropout(attention_probs)`, PyTorch's dropout,
//!   under the RNG tracker's fork), forward and backward: the softmax writes its output, the
//!   dropout reads it and writes its own, and the backward runs the two apart too. The residual
//!   dropouts stay fused (Megatron's `bias_dropout_add_fused_train`).
//!
//! A region reads each value from outside it once and writes the values that something outside
//! it in the same phase reads (or that are graph outputs); a fused value that only a later phase
//! reads (the backward reading a forward intermediate) is not written but recomputed there from
//! what it derives from, as Megatron's fused kernels do (layer norm's backward recomputes the
//! normalized input from the input). Its FLOPs are its ops' FLOPs.

use shardc_ir::{Graph, Op, ValueId};

/// No region / no value.
pub(crate) const NONE: u32 = u32::MAX;

/// How an op takes part in fusion.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fusion {
    /// A view of its operand (reshape, broadcast): reading it reads the operand.
    View,
    /// Computed where it is read, from nothing in memory (constant, iota, axis_index).
    Generator,
    /// Fuses with neighbours of the same kind.
    Fusible,
    /// Runs alone, reading its operands and writing its result (also inputs, collectives).
    Kernel,
}

impl Fusion {
    /// The fusion kind of an op.
    pub(crate) fn of(op: &Op) -> Self {
        match op {
            Op::Reshape | Op::Broadcast { .. } => Fusion::View,
            Op::Constant { .. } | Op::Iota { .. } | Op::AxisIndex { .. } => Fusion::Generator,
            Op::Unary { .. }
            | Op::Binary { .. }
            | Op::Compare { .. }
            | Op::Select
            | Op::Convert
            | Op::Copy
            | Op::Reduce { .. }
            | Op::Transpose { .. }
            | Op::Slice { .. }
            | Op::Concatenate { .. }
            | Op::Pad { .. }
            | Op::Reverse { .. } => Fusion::Fusible,
            _ => Fusion::Kernel,
        }
    }
}

/// The fusion regions of a graph.
pub(crate) struct FusionPlan {
    pub kind: Vec<Fusion>,
    /// What a read of each value reads in memory: itself, the value a view views, or `NONE`
    /// for a generator.
    pub root: Vec<u32>,
    /// The region of each fusible node (`NONE` for the others).
    pub region_of: Vec<u32>,
    /// Each region's nodes in graph order.
    pub regions: Vec<Vec<ValueId>>,
    /// Whether a value is written to memory: kernels and inputs always, a fusible node when
    /// something outside its region (or the graph's outputs) reads it.
    pub materialized: Vec<bool>,
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        let up = parent[parent[x as usize] as usize];
        parent[x as usize] = up;
        x = up;
    }
    x
}

impl FusionPlan {
    /// Groups `g`'s fusible nodes into regions; `key[v]` separates nodes that must not fuse
    /// (phase, recomputation, stage).
    pub(crate) fn new(g: &Graph, key: &[u64]) -> Self {
        let n = g.len();
        let kind: Vec<Fusion> = g.nodes.iter().map(|x| Fusion::of(&x.op)).collect();
        let mut root = vec![NONE; n];
        let mut depth = vec![0u32; n];
        for (i, node) in g.nodes.iter().enumerate() {
            root[i] = match kind[i] {
                Fusion::Generator => NONE,
                Fusion::View => node.operands.first().map_or(NONE, |o| root[o.index()]),
                _ => i as u32,
            };
            depth[i] = node
                .operands
                .iter()
                .map(|o| depth[o.index()] + u32::from(kind[o.index()] == Fusion::Kernel))
                .max()
                .unwrap_or(0);
        }
        let alone = attention_dropout(g, &kind, &root);
        let mut parent: Vec<u32> = (0..n as u32).collect();
        for (i, node) in g.nodes.iter().enumerate() {
            if kind[i] != Fusion::Fusible || alone[i] {
                continue;
            }
            for o in &node.operands {
                let r = root[o.index()];
                if r != NONE
                    && kind[r as usize] == Fusion::Fusible
                    && !alone[r as usize]
                    && depth[r as usize] == depth[i]
                    && key[r as usize] == key[i]
                {
                    let (a, b) = (find(&mut parent, r), find(&mut parent, i as u32));
                    parent[a.max(b) as usize] = a.min(b);
                }
            }
        }
        let mut region_of = vec![NONE; n];
        let mut regions: Vec<Vec<ValueId>> = Vec::new();
        let mut index_of_root = vec![NONE; n];
        for i in 0..n {
            if kind[i] != Fusion::Fusible {
                continue;
            }
            let r = find(&mut parent, i as u32) as usize;
            if index_of_root[r] == NONE {
                index_of_root[r] = regions.len() as u32;
                regions.push(Vec::new());
            }
            region_of[i] = index_of_root[r];
            regions[index_of_root[r] as usize].push(ValueId(i as u32));
        }
        let mut materialized: Vec<bool> = kind.iter().map(|k| *k == Fusion::Kernel).collect();
        for (i, node) in g.nodes.iter().enumerate() {
            if matches!(kind[i], Fusion::View | Fusion::Generator) {
                continue;
            }
            for o in &node.operands {
                let r = root[o.index()];
                if r == NONE || (region_of[i] != NONE && region_of[i] == region_of[r as usize]) {
                    continue;
                }
                // A fused value that a later phase reads (the backward reading a forward
                // intermediate) is recomputed there from what it derives from, not written.
                let later = key[i] != key[r as usize] && kind[r as usize] == Fusion::Fusible;
                if !later {
                    materialized[r as usize] = true;
                }
            }
        }
        for o in &g.outputs {
            let r = root[o.index()];
            if r != NONE {
                materialized[r as usize] = true;
            }
        }
        FusionPlan {
            kind,
            root,
            region_of,
            regions,
            materialized,
        }
    }

    /// The values region `r` reads from outside itself, each once, in graph order.
    pub(crate) fn region_inputs(&self, g: &Graph, r: usize) -> Vec<u32> {
        let mut inputs: Vec<u32> = self.regions[r]
            .iter()
            .flat_map(|v| g.node(*v).operands.iter())
            .map(|o| self.root[o.index()])
            .filter(|&x| x != NONE && self.region_of[x as usize] != r as u32)
            .collect();
        inputs.sort_unstable();
        inputs.dedup();
        inputs
    }
}

/// The dropouts of attention cores, which run as kernels of their own (the module's rules):
/// `select`s whose predicate is a graph input, reached from a batched `dot_general` and reaching
/// one through fusible ops and views only.
fn attention_dropout(g: &Graph, kind: &[Fusion], root: &[u32]) -> Vec<bool> {
    let n = g.len();
    let batched = |i: usize| matches!(&g.nodes[i].op, Op::DotGeneral { lhs_batch, .. } if !lhs_batch.is_empty());
    let masked = |i: usize| {
        matches!(g.nodes[i].op, Op::Select)
            && g.nodes[i].operands.first().is_some_and(|p| {
                let r = root[p.index()];
                r != NONE && matches!(g.nodes[r as usize].op, Op::Input { .. })
            })
    };
    if !(0..n).any(masked) {
        return vec![false; n];
    }
    // Reached from a batched matmul through fusible ops.
    let mut from = vec![false; n];
    for i in 0..n {
        if kind[i] != Fusion::Fusible {
            continue;
        }
        from[i] = g.nodes[i].operands.iter().any(|o| {
            let r = root[o.index()];
            r != NONE
                && (batched(r as usize)
                    || (kind[r as usize] == Fusion::Fusible && from[r as usize]))
        });
    }
    // Reaching a batched matmul through fusible ops.
    let mut to = vec![false; n];
    for i in (0..n).rev() {
        if !(batched(i) || (kind[i] == Fusion::Fusible && to[i])) {
            continue;
        }
        for o in &g.nodes[i].operands {
            let r = root[o.index()];
            if r != NONE && kind[r as usize] == Fusion::Fusible {
                to[r as usize] = true;
            }
        }
    }
    (0..n).map(|i| from[i] && to[i] && masked(i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardc_ir::{BinaryFn, DType, TensorType, UnaryFn};

    fn input(g: &mut Graph, name: &str, dims: Vec<u64>) -> ValueId {
        g.push(
            name,
            Op::Input { init: None },
            vec![],
            Some(TensorType::new(DType::BF16, dims)),
        )
        .unwrap()
    }

    #[test]
    fn attention_dropout_between_batched_matmuls_runs_alone_and_a_residual_dropout_fuses() {
        let mut g = Graph::new("attn");
        let q = input(&mut g, "q", vec![2, 4, 8]);
        let k = input(&mut g, "k", vec![2, 4, 8]);
        let v = input(&mut g, "v", vec![2, 4, 8]);
        let mask = |g: &mut Graph, name: &str, dims: Vec<u64>| {
            g.push(
                name,
                Op::Input { init: None },
                vec![],
                Some(TensorType::new(DType::Bool, dims)),
            )
            .unwrap()
        };
        let keep = mask(&mut g, "keep", vec![2, 4, 4]);
        let batched = |lc: usize, rc: usize| Op::DotGeneral {
            lhs_batch: vec![0],
            rhs_batch: vec![0],
            lhs_contract: vec![lc],
            rhs_contract: vec![rc],
        };
        let scores = g.push("scores", batched(2, 2), vec![q, k], None).unwrap();
        let e = g
            .push("e", Op::Unary { func: UnaryFn::Exp }, vec![scores], None)
            .unwrap();
        let zero = g
            .push(
                "zero",
                Op::Constant {
                    value: shardc_ir::Literal::Splat(0.0),
                },
                vec![],
                Some(TensorType::new(DType::BF16, vec![2, 4, 4])),
            )
            .unwrap();
        let dropped = g
            .push("dropped", Op::Select, vec![keep, e, zero], None)
            .unwrap();
        let ctx = g
            .push("ctx", batched(2, 1), vec![dropped, v], None)
            .unwrap();
        // A residual dropout after the context: fuses with its add.
        let keep2 = mask(&mut g, "keep2", vec![2, 4, 8]);
        let zero2 = g
            .push(
                "zero2",
                Op::Constant {
                    value: shardc_ir::Literal::Splat(0.0),
                },
                vec![],
                Some(TensorType::new(DType::BF16, vec![2, 4, 8])),
            )
            .unwrap();
        let d2 = g
            .push("d2", Op::Select, vec![keep2, ctx, zero2], None)
            .unwrap();
        let add = Op::Binary {
            func: BinaryFn::Add,
        };
        let res = g.push("res", add, vec![q, d2], None).unwrap();
        g.outputs.push(res);
        let plan = FusionPlan::new(&g, &vec![0; g.len()]);
        let r = |v: ValueId| plan.region_of[v.index()];
        // The softmax's exp writes its output; the dropout reads it and writes its own.
        assert_ne!(r(e), r(dropped));
        assert!(plan.materialized[e.index()] && plan.materialized[dropped.index()]);
        assert_eq!(plan.regions[r(dropped) as usize], vec![dropped]);
        // Bias-dropout-add style: the residual dropout and its add are one kernel.
        assert_eq!(r(d2), r(res));
        assert!(!plan.materialized[d2.index()]);
    }

    #[test]
    fn bias_gelu_after_a_matmul_is_one_region_and_a_residual_around_it_is_not_fused() {
        let mut g = Graph::new("mlp");
        let x = input(&mut g, "x", vec![8, 16]);
        let w = input(&mut g, "w", vec![16, 16]);
        let b = input(&mut g, "b", vec![16]);
        let dot = Op::DotGeneral {
            lhs_batch: vec![],
            rhs_batch: vec![],
            lhs_contract: vec![1],
            rhs_contract: vec![0],
        };
        let ln = g
            .push("ln", Op::Unary { func: UnaryFn::Neg }, vec![x], None)
            .unwrap();
        let mm = g.push("mm", dot, vec![ln, w], None).unwrap();
        let bb = g
            .push(
                "bb",
                Op::Broadcast { dims: vec![1] },
                vec![b],
                Some(TensorType::new(DType::BF16, vec![8, 16])),
            )
            .unwrap();
        let add = Op::Binary {
            func: BinaryFn::Add,
        };
        let biased = g.push("biased", add.clone(), vec![mm, bb], None).unwrap();
        let gelu = g
            .push(
                "gelu",
                Op::Unary {
                    func: UnaryFn::Gelu,
                },
                vec![biased],
                None,
            )
            .unwrap();
        let res = g.push("res", add, vec![x, gelu], None).unwrap();
        g.outputs.push(res);
        let plan = FusionPlan::new(&g, &vec![0; g.len()]);
        let r = |v: ValueId| plan.region_of[v.index()];
        // The bias add, GeLU and residual add are one kernel after the matmul ...
        assert_eq!(r(biased), r(gelu));
        assert_eq!(r(gelu), r(res));
        // ... but not the op before the matmul, which the residual also reads: fusing it would
        // put the matmul inside a cycle.
        assert_ne!(r(ln), r(res));
        assert!(!plan.materialized[biased.index()] && !plan.materialized[gelu.index()]);
        assert!(plan.materialized[ln.index()] && plan.materialized[res.index()]);
        // The region reads the matmul's output, the bias (through its broadcast) and x.
        let ins = plan.region_inputs(&g, r(res) as usize);
        assert_eq!(ins, vec![x.0, b.0, mm.0]);
    }
}
