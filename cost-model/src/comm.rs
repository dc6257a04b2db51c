//! The description of one collective that a sharded program performs, as the sharding crate
//! reports it and the cost model prices it.

use serde::Serialize;
use shardc_ir::{Op, TensorType, ValueId};

/// One collective a sharded graph needs: the IR collective op (its axes say which links it
/// crosses) applied to a per-device operand of `local_operand` type, on behalf of `node` (the
/// consumer that needs the resharded value, or the producer whose partial sum is reduced).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommUse {
    pub node: ValueId,
    /// An `ir` collective: all_reduce, all_gather, reduce_scatter, all_to_all, collective_permute.
    pub op: Op,
    /// The per-device operand the collective starts from.
    pub local_operand: TensorType,
    /// Why it is there, for `--explain` and reports.
    pub reason: String,
}
