//! Propagation-only readings of op factors where GSPMD's partitioner does more than the
//! factors say, so that shardings spread as GSPMD's do. The partitioner and the collectives a
//! sharding implies keep the op's own factors: a value sharded this way is resharded before the
//! op, which is correct if not the cheapest.
//!
//! - A scatter's result is its operand updated in place, so every operand dim may stay sharded
//!   through it, indexed ones included ("trivially sliced" in GSPMD): each device applies the
//!   updates that land in its own shard.

use shardc_ir::{FactorKind, Graph, Op, OpFactors, ValueId};

/// The factors propagation reads for node `v`: `f`, the op's own, adjusted as above.
pub(crate) fn propagation_factors(graph: &Graph, v: ValueId, mut f: OpFactors) -> OpFactors {
    if let Op::GeneralScatter { .. } = &graph.node(v).op {
        let Some(x) = f.operands.first().cloned() else {
            return f;
        };
        for (d, ks) in x.iter().enumerate() {
            let [k] = ks[..] else { continue };
            // Only the operand's dim and the result's have this factor.
            let elsewhere = f.operands[1..].iter().flatten().any(|t| t.contains(&k));
            if f.factors[k].kind == FactorKind::NeedReplication
                && f.result.get(d).is_some_and(|r| r == &[k])
                && !elsewhere
            {
                f.factors[k].kind = FactorKind::PassThrough;
            }
        }
    }
    f
}
