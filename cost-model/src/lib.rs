//! The cost model: a hardware catalog shipped as data files, cluster topology and the mapping of
//! mesh axes onto links, roofline op costs from op factors, alpha-beta collective costs per
//! algorithm, memory per device, calibration from measured profiles, and the step-time estimate
//! that combines them.
//!
//! The cost model estimates; it never decides a plan and never runs one.
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
pub use estimate::{estimate, CollectiveLine, Estimate, OpLine, Overlap, StepWork};
pub use graph_cost::{estimate_graph, graph_memory, graph_step, pipeline_stages, GraphOptions};
pub use hardware::{
    Achievable, Catalog, ClusterPreset, Device, DeviceKind, Link, MatmulShapeCurve, Memory,
    Network, NodeLayout, PeakFlops, Precision, Reducers,
};
pub use memory::{
    held_microbatches, model_state, MemoryBreakdown, Recompute, Schedule, StateBytes, Zero,
    ADAM_MIXED_PRECISION,
};
pub use transformer::{estimate_gpt, gpt_step, saved_tensors, GptShape, GptTraining, SavedTensor};
