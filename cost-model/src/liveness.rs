//! Memory from the sharded graph's liveness: per pipeline stage, the model state it holds, the
//! activations one micro-batch keeps for its backward pass, and the largest set of short-lived
//! values live at once.
//!
//! What a backward (or recomputed) node reads from the forward pass is what the forward pass
//! keeps, as fused kernels keep it: a read of a view is a read of what it views; a read of a
//! value inside a fusion region that the region does not write is served by recomputing it from
//! the written values it derives from (inside the region, or read by it), so those are kept
//! instead (Megatron's fused kernels keep their inputs the same way: layer norm keeps its input,
//! bias-GeLU the matmul's output). A kept value
//! counts at the size its reader sees it: a pending sum that a sequence-parallel reader reads
//! reduce-scattered counts at `1/t`.

use shardc_ir::{Graph, Phase, Role, ShardingAssignment};

use crate::compute::local_bytes;
use crate::fusion::{Fusion, FusionPlan, NONE};

/// The memory of one pipeline stage on one device, in bytes (whole-batch values divided by the
/// micro-batch count).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct StageMemory {
    pub weights: f64,
    pub gradients: f64,
    pub optimizer_state: f64,
    /// Activations one micro-batch keeps for its backward pass.
    pub saved_per_microbatch: f64,
    /// The peak of the other short-lived values of one micro-batch's passes.
    pub transient_per_microbatch: f64,
}

/// What the liveness pass needs about the graph besides the graph itself.
pub(crate) struct LivenessInput<'a> {
    pub assignment: &'a ShardingAssignment,
    pub fusion: &'a FusionPlan,
    pub stage_of: &'a [u32],
    pub stages: usize,
    pub microbatches: f64,
    /// Divisors of weights, gradients and optimizer state from ZeRO, per node (1 if none).
    pub state_split: &'a [f64],
}

fn is_state(role: Role) -> bool {
    matches!(
        role,
        Role::Parameter | Role::Gradient | Role::OptimizerState
    )
}

/// The memory of each stage.
pub(crate) fn stage_memory(g: &Graph, inp: &LivenessInput) -> Vec<StageMemory> {
    let n = g.len();
    let a = inp.assignment;
    let mesh = &a.mesh;
    let fusion = inp.fusion;
    let own: Vec<f64> = g
        .ids()
        .map(|v| local_bytes(g.ty(v), &a.shardings[v.index()], mesh))
        .collect();
    let mut out = vec![StageMemory::default(); inp.stages];
    for v in g.ids() {
        let i = v.index();
        let st = &mut out[inp.stage_of[i] as usize];
        let bytes = own[i] / inp.state_split[i];
        match g.node(v).role {
            Role::Parameter => st.weights += bytes,
            Role::Gradient => st.gradients += bytes,
            Role::OptimizerState => st.optimizer_state += bytes,
            _ => {}
        }
    }

    // Kept activations: the smallest size any backward reader sees each at.
    let mut kept = vec![f64::INFINITY; n];
    let keep = |kept: &mut Vec<f64>, r: usize, reader: usize| {
        let ty = g.ty(shardc_ir::ValueId(r as u32));
        let mut b = own[r];
        if g.ty(shardc_ir::ValueId(reader as u32)).dims() == ty.dims() {
            b = b.min(local_bytes(ty, &a.shardings[reader], mesh));
        }
        kept[r] = kept[r].min(b);
    };
    for (r, readers) in saved_readers(g, fusion).iter().enumerate() {
        for &reader in readers {
            keep(&mut kept, r, reader);
        }
    }
    let m = inp.microbatches;
    for (i, &k) in kept.iter().enumerate() {
        if k.is_finite() {
            out[inp.stage_of[i] as usize].saved_per_microbatch += k / m;
        }
    }

    // Transient: written values that are neither state nor kept, live from their producer to
    // their last reader, within one micro-batch's forward and backward passes (the update
    // writes in place).
    let mut last = vec![0usize; n];
    for (c, node) in g.nodes.iter().enumerate() {
        for o in &node.operands {
            let r = fusion.root[o.index()];
            if r != NONE {
                last[r as usize] = last[r as usize].max(c);
            }
        }
    }
    let mut events: Vec<(u32, usize, f64)> = Vec::new();
    for (i, node) in g.nodes.iter().enumerate() {
        let transient = fusion.materialized[i]
            && !kept[i].is_finite()
            && !is_state(node.role)
            && node.phase != Phase::Update
            && !matches!(node.op, shardc_ir::Op::Input { .. });
        if transient {
            let b = own[i] / m;
            let s = inp.stage_of[i];
            events.push((s, i, b));
            events.push((s, last[i].max(i) + 1, -b));
        }
    }
    events.sort_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)).then(x.2.total_cmp(&y.2)));
    let (mut stage, mut live) = (u32::MAX, 0.0f64);
    for (s, _, d) in events {
        if s != stage {
            stage = s;
            live = 0.0;
        }
        live += d;
        let t = &mut out[s as usize].transient_per_microbatch;
        *t = t.max(live);
    }
    out
}

/// Per value, the backward (or recomputed) readers through which the forward pass keeps it
/// (empty: not kept): what a backward node reads, traced through views and through fused
/// intermediates to the written values they are recomputed from (the module's doc). Which
/// values are kept depends on the graph and its fusion only, not on the shardings.
pub(crate) fn saved_readers(g: &Graph, fusion: &FusionPlan) -> Vec<Vec<usize>> {
    let n = g.len();
    // A bool graph input that a recomputed node reads is random data drawn in the layer (a
    // dropout mask: the IR has no random-number op, so masks are inputs). Megatron-LM saves the RNG
    // state and draws the mask again when it recomputes the layer (`checkpoint` with
    // `CudaRNGStatesTracker`, `megatron/mpu/random.py`), so such a mask is not kept for the
    // backward; masks no recomputed node reads are kept (PyTorch's dropout saves its 1-byte
    // mask), as Korthikanti et al. count them.
    let mut regenerated = vec![false; n];
    for node in g.nodes.iter().filter(|x| x.recompute) {
        for o in &node.operands {
            let r = fusion.root[o.index()];
            let mask = r != NONE
                && matches!(g.nodes[r as usize].op, shardc_ir::Op::Input { .. })
                && g.nodes[r as usize].ty.dtype == shardc_ir::DType::Bool;
            if mask {
                regenerated[r as usize] = true;
            }
        }
    }
    let keeps = |node: &shardc_ir::Node, r: usize| {
        node.phase == Phase::Forward && !node.recompute && !is_state(node.role) && !regenerated[r]
    };
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
    // Fused intermediates already traced back to what they are recomputed from.
    let mut traced = vec![false; n];
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for (c, node) in g.nodes.iter().enumerate() {
        let reads_forward =
            matches!(node.phase, Phase::BackwardInput | Phase::BackwardWeight) || node.recompute;
        if !reads_forward || matches!(fusion.kind[c], Fusion::View | Fusion::Generator) {
            continue;
        }
        stack.extend(node.operands.iter().map(|o| (o.index(), c)));
        while let Some((o, reader)) = stack.pop() {
            let r = fusion.root[o];
            if r == NONE || !keeps(&g.nodes[r as usize], r as usize) {
                continue;
            }
            let r = r as usize;
            if fusion.materialized[r] {
                readers[r].push(reader);
            } else if !traced[r] {
                // A fused intermediate is recomputed from the written values it derives from
                // (inside its region, or read by it).
                traced[r] = true;
                stack.extend(g.nodes[r].operands.iter().map(|x| (x.index(), r)));
            }
        }
    }
    readers
}
