//! `dot_general`: batched matrix products with einsum semantics.

use super::{check_dims, with_declared_dtype_check, TypeCtx};
use crate::factors::{FactorKind, OpFactors};
use crate::op::Op;
use crate::types::TensorType;

struct DotDims<'a> {
    lhs_batch: &'a [usize],
    rhs_batch: &'a [usize],
    lhs_contract: &'a [usize],
    rhs_contract: &'a [usize],
}

fn dims(op: &Op) -> DotDims<'_> {
    match op {
        Op::DotGeneral {
            lhs_batch,
            rhs_batch,
            lhs_contract,
            rhs_contract,
        } => DotDims {
            lhs_batch,
            rhs_batch,
            lhs_contract,
            rhs_contract,
        },
        _ => unreachable!("dot::dims called on {}", op.name()),
    }
}

/// Dims of `rank` that are neither batch nor contracting, in order.
fn free_dims(rank: usize, batch: &[usize], contract: &[usize]) -> Vec<usize> {
    (0..rank)
        .filter(|d| !batch.contains(d) && !contract.contains(d))
        .collect()
}

pub(super) fn infer(op: &Op, cx: &TypeCtx) -> Result<TensorType, String> {
    cx.expect_operands(2)?;
    let d = dims(op);
    let (l, r) = (cx.operands[0], cx.operands[1]);
    if l.dtype != r.dtype {
        return Err(format!("operands must have one dtype, got {l} and {r}"));
    }
    if d.lhs_batch.len() != d.rhs_batch.len() {
        return Err("lhs_batch and rhs_batch must have the same length".into());
    }
    if d.lhs_contract.len() != d.rhs_contract.len() {
        return Err("lhs_contract and rhs_contract must have the same length".into());
    }
    let lhs_all: Vec<usize> = d.lhs_batch.iter().chain(d.lhs_contract).copied().collect();
    let rhs_all: Vec<usize> = d.rhs_batch.iter().chain(d.rhs_contract).copied().collect();
    check_dims("lhs batch/contracting", &lhs_all, l.rank())?;
    check_dims("rhs batch/contracting", &rhs_all, r.rank())?;
    for (&a, &b) in lhs_all.iter().zip(&rhs_all) {
        if l.dims()[a] != r.dims()[b] {
            return Err(format!(
                "lhs dim {a} (size {}) and rhs dim {b} (size {}) must match",
                l.dims()[a],
                r.dims()[b]
            ));
        }
    }
    let mut out: Vec<u64> = d.lhs_batch.iter().map(|&i| l.dims()[i]).collect();
    out.extend(
        free_dims(l.rank(), d.lhs_batch, d.lhs_contract)
            .iter()
            .map(|&i| l.dims()[i]),
    );
    out.extend(
        free_dims(r.rank(), d.rhs_batch, d.rhs_contract)
            .iter()
            .map(|&i| r.dims()[i]),
    );
    with_declared_dtype_check(cx, TensorType::new(l.dtype, out))
}

pub(super) fn factors(op: &Op, operands: &[&TensorType]) -> OpFactors {
    let d = dims(op);
    let (l, r) = (operands[0], operands[1]);
    let mut f = OpFactors {
        flops_per_point: 2,
        ..Default::default()
    };
    let mut lhs = vec![Vec::new(); l.rank()];
    let mut rhs = vec![Vec::new(); r.rank()];
    let mut result = Vec::new();
    for (&a, &b) in d.lhs_batch.iter().zip(d.rhs_batch) {
        let i = f.add(l.dims()[a], FactorKind::PassThrough);
        lhs[a].push(i);
        rhs[b].push(i);
        result.push(vec![i]);
    }
    for a in free_dims(l.rank(), d.lhs_batch, d.lhs_contract) {
        let i = f.add(l.dims()[a], FactorKind::PassThrough);
        lhs[a].push(i);
        result.push(vec![i]);
    }
    for b in free_dims(r.rank(), d.rhs_batch, d.rhs_contract) {
        let i = f.add(r.dims()[b], FactorKind::PassThrough);
        rhs[b].push(i);
        result.push(vec![i]);
    }
    for (&a, &b) in d.lhs_contract.iter().zip(d.rhs_contract) {
        let i = f.add(l.dims()[a], FactorKind::Reduction);
        lhs[a].push(i);
        rhs[b].push(i);
    }
    f.operands = vec![lhs, rhs];
    f.result = result;
    f
}
