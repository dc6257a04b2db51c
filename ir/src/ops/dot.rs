//! `dot_general`: batched matrix products with einsum semantics.

use super::{check_dims, with_declared_dtype_check, TypeCtx};
use crate::autodiff::{argsort, GradCtx, Grads};
use crate::error::Result;
use crate::factors::{FactorKind, OpFactors};
use crate::graph::ValueId;
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

pub(super) fn infer(op: &Op, cx: &TypeCtx) -> std::result::Result<TensorType, String> {
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

/// Gradients of `dot_general` (JAX's `_dot_general_transpose_lhs/rhs`): each operand's gradient
/// is a `dot_general` of the adjoint with the other operand over the other operand's free dims,
/// with the batch dims kept, followed by a transpose into the operand's dim order.
pub(super) fn grad(op: &Op, cx: &mut GradCtx) -> Result<Grads> {
    let d = dims(op);
    let (l, r) = (cx.x(0), cx.x(1));
    let (lr, rr) = (cx.ty(l).rank(), cx.ty(r).rank());
    let gl = if cx.wants(0) {
        let side = Side {
            batch: d.lhs_batch,
            contract: d.lhs_contract,
            rank: lr,
            other_batch: d.rhs_batch,
            other_contract: d.rhs_contract,
            other_rank: rr,
        };
        Some(transpose_side(cx, "grad_lhs", &side, r, false)?)
    } else {
        None
    };
    let gr = if cx.wants(1) {
        let side = Side {
            batch: d.rhs_batch,
            contract: d.rhs_contract,
            rank: rr,
            other_batch: d.lhs_batch,
            other_contract: d.lhs_contract,
            other_rank: lr,
        };
        Some(transpose_side(cx, "grad_rhs", &side, l, true)?)
    } else {
        None
    };
    Ok(vec![gl, gr])
}

/// The dims of the operand whose gradient is wanted (`batch`, `contract`) and of the other one.
struct Side<'a> {
    batch: &'a [usize],
    contract: &'a [usize],
    rank: usize,
    other_batch: &'a [usize],
    other_contract: &'a [usize],
    other_rank: usize,
}

/// The gradient of one operand. `swapped` is true for the rhs, whose free dims come last in the
/// result.
fn transpose_side(
    cx: &mut GradCtx,
    suffix: &str,
    s: &Side,
    other: ValueId,
    swapped: bool,
) -> Result<ValueId> {
    let kept = free_dims(s.rank, s.batch, s.contract);
    let other_kept = free_dims(s.other_rank, s.other_batch, s.other_contract);
    let nb = s.batch.len();
    // Positions in the adjoint: batch dims, then lhs free dims, then rhs free dims.
    let other_pos: Vec<usize> = if swapped {
        (nb..nb + other_kept.len()).collect()
    } else {
        (nb + kept.len()..nb + kept.len() + other_kept.len()).collect()
    };
    let batch_pos: Vec<usize> = (0..nb).collect();
    let dot = Op::DotGeneral {
        lhs_batch: batch_pos,
        rhs_batch: s.other_batch.to_vec(),
        lhs_contract: other_pos,
        rhs_contract: other_kept,
    };
    // The dot gives [batch, this operand's free dims, the other's contracting partners in their
    // own order]; the partners of `contract` sorted by the other operand's dim order.
    let mut by_other: Vec<(usize, usize)> = s
        .other_contract
        .iter()
        .copied()
        .zip(s.contract.iter().copied())
        .collect();
    by_other.sort();
    let mut order: Vec<usize> = s.batch.to_vec();
    order.extend(&kept);
    order.extend(by_other.iter().map(|&(_, c)| c));
    let perm = argsort(&order);
    let identity = perm.iter().enumerate().all(|(i, &p)| i == p);
    let dot_name = if identity {
        suffix.to_string()
    } else {
        format!("{suffix}.dot")
    };
    let dy = cx.dy;
    let g = cx.emit(&dot_name, dot, vec![dy, other], None)?;
    let t = cx.transpose(suffix, g, perm)?;
    Ok(t)
}
