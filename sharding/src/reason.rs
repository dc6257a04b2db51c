//! Why a value has its sharding: the record propagation keeps for every variant it derives.

use serde::Serialize;
use shardc_ir::ValueId;

/// The propagation phase a rule fired in (Shardy's order: pass-through ops first, then every op,
/// then every op with conflicts resolved by precedence).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Only ops whose factors are all pass-through (elementwise, transpose, broadcast, reshape).
    PassThrough,
    /// Every op; where tensors disagree on a factor, only their common part propagates.
    AllOps,
    /// Every op; where tensors disagree, the sharding of better precedence wins.
    Aggressive,
}

/// Why one variant of a value exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The value has no sharding from anywhere yet (its starting point: open and replicated).
    Unknown,
    /// A user annotation of this priority.
    Annotation { priority: u32 },
    /// The sharding rule of op `op` (the node defining `op`), from the shardings of `from`.
    Rule {
        op: ValueId,
        from: Vec<ValueId>,
        phase: Phase,
        /// User priority round it fired in.
        round: u32,
    },
    /// The op has no usable sharding rule: its result is replicated.
    Fallback { op: String },
    /// A consumer needs the value in another sharding (a reshard e-node).
    Consumer { user: ValueId, operand: usize },
    /// A member of a shard-as group took the group's sharding, from the members `from`.
    ShardAs { from: Vec<ValueId> },
    /// A value on the program's interface that propagation was free to shard got a sharding
    /// that splits a dim unevenly; it is replicated instead.
    Uneven,
}
