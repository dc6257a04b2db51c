//! `reduce`: sum, max or min over dims.

use super::{check_dims, with_declared_dtype_check, TypeCtx};
use crate::autodiff::{GradCtx, Grads};
use crate::error::Result;
use crate::factors::{FactorKind, OpFactors};
use crate::op::Op;
use crate::op::{CompareDir, ReduceFn};
use crate::types::TensorType;

fn reduced(op: &Op) -> &[usize] {
    match op {
        Op::Reduce { dims, .. } => dims,
        _ => unreachable!("reduce::reduced called on {}", op.name()),
    }
}

pub(super) fn infer(op: &Op, cx: &TypeCtx) -> std::result::Result<TensorType, String> {
    cx.expect_operands(1)?;
    let x = cx.operands[0];
    let dims = reduced(op);
    check_dims("reduced", dims, x.rank())?;
    if x.dtype == crate::DType::Bool {
        return Err("reduce needs a numeric operand, got bool".into());
    }
    let out: Vec<u64> = (0..x.rank())
        .filter(|d| !dims.contains(d))
        .map(|d| x.dims()[d])
        .collect();
    with_declared_dtype_check(cx, TensorType::new(x.dtype, out))
}

pub(super) fn factors(op: &Op, operands: &[&TensorType]) -> OpFactors {
    let x = operands[0];
    let dims = reduced(op);
    let mut f = OpFactors {
        flops_per_point: 1,
        ..Default::default()
    };
    let mut xs = Vec::new();
    for (d, &size) in x.dims().iter().enumerate() {
        if dims.contains(&d) {
            xs.push(vec![f.add(size, FactorKind::Reduction)]);
        } else {
            let i = f.add(size, FactorKind::PassThrough);
            xs.push(vec![i]);
            f.result.push(vec![i]);
        }
    }
    f.operands = vec![xs];
    f
}

/// Gradients of `reduce`: a sum broadcasts the adjoint back; max and min send it to the elements
/// equal to the result, split evenly between ties (as JAX's `_reduce_chooser_jvp_rule` does).
pub(super) fn grad(op: &Op, cx: &mut GradCtx) -> Result<Grads> {
    if !cx.wants(0) {
        return Ok(vec![None]);
    }
    let (func, dims) = match op {
        Op::Reduce { func, dims } => (*func, dims),
        _ => unreachable!("reduce::grad called on {}", op.name()),
    };
    let x = cx.x(0);
    let xt = cx.ty(x);
    let kept: Vec<usize> = (0..xt.rank()).filter(|d| !dims.contains(d)).collect();
    let dy = cx.dy;
    if func == ReduceFn::Sum {
        return Ok(vec![Some(cx.broadcast("grad", dy, kept, xt.dims())?)]);
    }
    let y = cx.y();
    let by = cx.broadcast("grad.result", y, kept.clone(), xt.dims())?;
    let hit = cx.compare("grad.hit", CompareDir::Eq, x, by)?;
    let one = cx.splat_like("grad.one", 1.0, x)?;
    let zero = cx.zeros_like("grad.zero", x)?;
    let ind = cx.select("grad.indicator", hit, one, zero)?;
    let count = cx.reduce_sum("grad.count", ind, dims.clone())?;
    let share = cx.div("grad.share", dy, count)?;
    let bshare = cx.broadcast("grad.bshare", share, kept, xt.dims())?;
    Ok(vec![Some(cx.mul("grad", bshare, ind)?)])
}
