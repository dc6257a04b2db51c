//! The cost model: a hardware catalog shipped as data files, cluster topology and the mapping of
//! mesh axes onto links, roofline op costs from op factors, alpha-beta collective costs per
//! algorithm, memory per device, calibration from measured profiles, and the step-time estimate
//! that combines them.
//!
//! The cost model estimates; it never decides a plan and never runs one.
//!
//! # One costing path
//!
//! [`graph_step`] / [`estimate_graph`] price a sharded graph (a graph, its
//! `ShardingAssignment` and the `CommUse`s the sharding crate reports): this is the model.
//! [`gpt_step`] / [`estimate_gpt`] build the same step from a GPT's shape numbers and are kept as
//! a cross-check: a test (`tests/cost.rs` of the `shardc` package) holds them within 3% of the
//! graph path on nine shapes, three of them sequence-parallel; the published Megatron-LM figures (every row of Narayanan et al.
//! SC21's Table 1, `tests/megatron.rs`) are checked through the graph path.
//!
//! - **Fusion.** Ops are grouped into fusion regions that cost their inputs and outputs once:
//!   `reshape` and `broadcast` are views and `constant`/`iota`/`axis_index` generators (free,
//!   read through); elementwise ops, transpose, slice, concatenate, pad, reverse and reductions
//!   fuse with producers and consumers of the same kinds (XLA's loop and input fusion; Megatron's
//!   fused bias-GeLU, scale-mask-softmax and bias-dropout-add; Apex's fused layer norm); matmuls,
//!   convolutions, gathers, scatters, sorts, dynamic slices and collectives stay kernels; so
//!   does the attention core's dropout (a `select` on an input mask between two batched
//!   matmuls, forward and backward), which Megatron-LM 2021 ran as PyTorch's own dropout kernel
//!   after its fused scale-mask-softmax (the residual dropouts stay in bias-dropout-add). Only
//!   ops of equal *depth* (most kernels on a path from the inputs) fuse, so no region sits on a
//!   cycle; fusion stays within one phase, recomputation flag and pipeline stage; a forward value
//!   only a later phase reads is recomputed there, not written.
//! - **Matmul efficiency by local shape.** A matmul reaches `achievable.matmul · g(m)·g(n)·g(k)`
//!   of peak, `g(x) = x/(x + half_dim)` ([`MatmulShapeCurve`], per device in the catalog, with its
//!   source; calibration holds it in [`Calibration::matmul_shape`]).
//! - **Overlap** ([`Overlap`], `--no-overlap`): the data-parallel gradient reduction is bucketed
//!   under the last backward pass, ZeRO-3 gathers prefetched under compute, pipeline sends run
//!   beside compute; tensor-parallel collectives are always exposed. The report says which.
//! - **Pipeline stages** ([`pipeline_stages`]): the graph's numbered layers split into `p` runs of
//!   `l/p`, the embedding on the first, the output layer on the last; 1F1B's bubble is
//!   `(p−1)/m` of the ideal time; boundary values are sent as 1/t slices and all-gathered.
//! - **Gradient accumulation.** With `m > 1` micro-batches each micro-batch's parameter
//!   gradients are added into an accumulation buffer of their dtype (read the new gradient, read
//!   and write the buffer), as Megatron-LM's DDP does in a hook on every parameter
//!   (`param.main_grad.add_(param.grad.data)`, `megatron/model/distributed.py`): `m` elementwise
//!   passes over the stage's gradients, priced in the backward. Per token this is a constant
//!   share of the step (both it and the matmuls scale with the parameters per device), which is
//!   why leaving it out made every row of Megatron's Table 1 optimistic by about 3%.
//! - **Memory** from the sharded graph's liveness, per stage and by category (weights,
//!   gradients, optimizer state, activations kept for the backward, short-lived transient), under
//!   the schedule's micro-batches in flight; [`graph_memory`] without a cluster. Dropout masks
//!   (1-byte bool inputs: the IR has no random-number op) are kept when the backward reads
//!   them, and drawn again, not kept, where a recomputed node reads them (Megatron-LM restores
//!   the RNG state when it recomputes). On the zoo's GPT layers (t = 1 and 8, with and without
//!   sequence parallelism, every recomputation mode) it equals Korthikanti et al.'s formulas
//!   with `--dropout` (masks and all), and exactly their formulas minus the dropout terms
//!   without it.
//! - **Sequence parallelism** (Korthikanti et al. 2022 §4.2.2; the zoo's `megatron-sp`). The
//!   graph path prices the collectives the sharding crate reports, which on the zoo's graphs are
//!   exactly Megatron's per layer: forward an all-gather of `[b, s/t, h]` before qkv and fc1
//!   and a reduce-scatter of `[b, s, h]` after the attention projection and fc2; backward an
//!   all-gather of the residual gradient before each row-parallel matmul (one for both of its
//!   gradients), a re-gather of each column-parallel matmul's input for its weight gradient and
//!   a reduce-scatter of its input gradient (6 all-gathers and 4 reduce-scatters a layer, 8 and
//!   6 with full recomputation; no weight is gathered; `tests/cost.rs` counts them). The shape
//!   path counts the same, plus the output layer's and the embedding's and the all-reduce of
//!   the gradients of parameters applied on the sequence-split stream. A matmul's FLOPs are
//!   split once per mesh axis: an axis two tensors put on different factors (a sequence-split
//!   activation and a row-split weight) is one split after resharding, as `op_needs` settles it.
//!   Not modelled yet: Megatron's masked embedding lookup (the graph gathers the
//!   vocabulary-split table for the lookup instead, priced per micro-batch at a fraction of its
//!   size; the shape path leaves it out).
//!
//! # Queries for a planner
//!
//! Cheap per-op and per-collective prices, for a search that calls them many times:
//! [`node_time`] (one node under an assignment, alone), [`matmul_time`] (a matmul of local
//! [`MatmulDims`] in a precision), [`op_time`] / [`op_time_shaped`] (an [`OpWork`]),
//! [`collective_time`] (a `CommUse` on a mesh) and [`price`] (a kind, bytes and a
//! [`GroupPlacement`] from [`Cluster::placement`]).
//!
//! ```
//! use shardc_cost_model::{Catalog, Cluster, GptShape, GptTraining, Recompute, Schedule, Zero, estimate_gpt};
//! let cluster = Cluster::parse("a100-80gb:32x8", &Catalog::builtin()).unwrap();
//! let run = GptTraining {
//!     shape: GptShape { layers: 40, hidden: 6144, heads: 48, seq: 2048, vocab: 51200 },
//!     global_batch: 1024, micro_batch: 1, dp: 32, tp: 8, pp: 1,
//!     sequence_parallel: false, recompute: Recompute::Full, schedule: Schedule::OneFOneB,
//!     zero: Zero::None, overlap_gradient_reduction: false,
//! };
//! let e = estimate_gpt(&run, &cluster).unwrap();
//! assert!(e.fits && e.hardware_tflops_per_device > 100.0);
//! ```

#![forbid(unsafe_code)]

mod calibration;
mod cluster;
mod collective;
mod comm;
mod compute;
mod error;
mod estimate;
mod fusion;
mod graph_cost;
mod hardware;
mod liveness;
mod memory;
mod stages;
mod transformer;

pub use calibration::{Calibration, MeasuredCollective, MeasuredOp, Profile};
pub use cluster::{Cluster, GroupPlacement, LinkCost};
pub use collective::{
    algorithms, bus_bandwidth, collective_time, price, ring_all_reduce, ring_gather,
    tree_all_reduce, Algorithm, CollectiveCost, CollectiveKind,
};
pub use comm::CommUse;
pub use compute::{
    ideal_time, local_bytes, local_work, matmul_time, node_time, op_time, op_time_shaped,
    MatmulDims, OpClass, OpWork,
};
pub use error::{CostError, Result};
pub use estimate::{estimate, CollectiveLine, Estimate, OpLine, Overlap, StageWork, StepWork};
pub use graph_cost::{
    estimate_graph, graph_memory, graph_step, graph_step_staged, pipeline_stages,
    saved_activations, GraphOptions,
};
pub use hardware::{
    Achievable, Catalog, ClusterPreset, Device, DeviceKind, Link, MatmulShapeCurve, Memory,
    Network, NodeLayout, PeakFlops, Precision, Reducers,
};
pub use memory::{
    held_microbatches, model_state, MemoryBreakdown, Recompute, Schedule, StateBytes, Zero,
    ADAM_MIXED_PRECISION,
};
pub use transformer::{estimate_gpt, gpt_step, saved_tensors, GptShape, GptTraining, SavedTensor};
