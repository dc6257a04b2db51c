//! Op factors: the one description per op that sharding rules, partitioning and FLOP counts read.
//!
//! As in an einsum (and Shardy's `OpShardingRule`), an op's iteration space is a list of
//! *factors*. Every dim of every operand and of the result is a list of factors, major first;
//! compound dims (a reshape's `[12]` as `[3,4]`) list several. A dim of size 1 that a broadcast
//! creates lists none.

use serde::Serialize;

/// What sharding a factor implies.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorKind {
    /// Same index in every tensor that has it: sharding it needs no communication.
    PassThrough,
    /// In operands but not in the result (a contracting or reduced dim): sharding it leaves the
    /// result a pending partial reduction over the sharding axes.
    Reduction,
    /// The dims it appears in cannot be split without gathering (an indexed axis, a compound
    /// reshape remainder, a dynamic slice).
    NeedReplication,
    /// Operand and result positions differ by a shift or stride (slice, pad, concatenate, the
    /// spatial dims of a convolution): sharding it needs a halo exchange or data movement.
    Window,
}

/// One factor of an op's iteration space.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Factor {
    /// Size in the iteration space (for a window factor, the result's extent).
    pub size: u64,
    pub kind: FactorKind,
}

/// An op's factors and how each tensor dim maps onto them.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize)]
pub struct OpFactors {
    pub factors: Vec<Factor>,
    /// `operands[i][d]`: the factors of dim `d` of operand `i`, major first.
    pub operands: Vec<Vec<Vec<usize>>>,
    /// `result[d]`: the factors of result dim `d`, major first.
    pub result: Vec<Vec<usize>>,
    /// Floating-point operations per point of the iteration space (2 for a multiply-add).
    pub flops_per_point: u64,
}

impl OpFactors {
    /// FLOPs of the op: `flops_per_point` times the product of all factor sizes.
    pub fn flops(&self) -> u128 {
        if self.flops_per_point == 0 {
            return 0;
        }
        self.factors
            .iter()
            .fold(self.flops_per_point as u128, |acc, f| {
                acc.saturating_mul(f.size as u128)
            })
    }

    /// Adds a factor and returns its index.
    pub(crate) fn add(&mut self, size: u64, kind: FactorKind) -> usize {
        self.factors.push(Factor { size, kind });
        self.factors.len() - 1
    }

    /// Factors for ops whose operands and result all have one shape: one pass-through factor per
    /// dim (elementwise ops, select, convert, copy).
    pub fn elementwise(dims: &[u64], operands: usize, flops_per_point: u64) -> Self {
        let mut f = OpFactors {
            flops_per_point,
            ..Default::default()
        };
        let per_dim: Vec<Vec<usize>> = dims
            .iter()
            .map(|&d| vec![f.add(d, FactorKind::PassThrough)])
            .collect();
        f.operands = vec![per_dim.clone(); operands];
        f.result = per_dim;
        f
    }

    /// The kind of the factors of result dim `d` (pass-through if it has none).
    pub fn result_dim_kinds(&self, d: usize) -> Vec<FactorKind> {
        self.result[d]
            .iter()
            .map(|&i| self.factors[i].kind)
            .collect()
    }
}
