//! `gather` (take along an axis, the embedding lookup) and its adjoint `scatter_add`.

use super::{with_declared_dtype_check, TypeCtx};
use crate::autodiff::{GradCtx, Grads};
use crate::error::Result;
use crate::factors::{FactorKind, OpFactors};
use crate::op::Op;
use crate::types::TensorType;

fn gathered_shape(x: &TensorType, idx: &TensorType, axis: usize) -> Vec<u64> {
    let mut out = x.dims()[..axis].to_vec();
    out.extend(idx.dims());
    out.extend(&x.dims()[axis + 1..]);
    out
}

pub(super) fn infer(op: &Op, cx: &TypeCtx) -> std::result::Result<TensorType, String> {
    let (axis, n) = match op {
        Op::Gather { axis } => (*axis, 2),
        Op::ScatterAdd { axis } => (*axis, 3),
        _ => unreachable!("gather::infer called on {}", op.name()),
    };
    cx.expect_operands(n)?;
    let (x, idx) = (cx.operands[0], cx.operands[1]);
    if axis >= x.rank() {
        return Err(format!("axis {axis} is out of range for {x}"));
    }
    if !idx.dtype.is_int() {
        return Err(format!("indices must be integers, got {idx}"));
    }
    let g = TensorType::new(x.dtype, gathered_shape(x, idx, axis));
    if n == 2 {
        return with_declared_dtype_check(cx, g);
    }
    if *cx.operands[2] != g {
        return Err(format!(
            "updates must be {g} (what gather would give), got {}",
            cx.operands[2]
        ));
    }
    with_declared_dtype_check(cx, x.clone())
}

pub(super) fn factors(op: &Op, operands: &[&TensorType], _result: &TensorType) -> OpFactors {
    let (axis, scatter) = match op {
        Op::Gather { axis } => (*axis, false),
        Op::ScatterAdd { axis } => (*axis, true),
        _ => unreachable!("gather::factors called on {}", op.name()),
    };
    let (x, idx) = (operands[0], operands[1]);
    let mut f = OpFactors {
        flops_per_point: u64::from(scatter),
        ..Default::default()
    };
    let xs: Vec<Vec<usize>> = x
        .dims()
        .iter()
        .enumerate()
        .map(|(d, &size)| {
            let kind = if d == axis {
                FactorKind::NeedReplication
            } else {
                FactorKind::PassThrough
            };
            vec![f.add(size, kind)]
        })
        .collect();
    // Sharding the indices of a scatter-add leaves partial sums; of a gather, shards the result.
    let idx_kind = if scatter {
        FactorKind::Reduction
    } else {
        FactorKind::PassThrough
    };
    let is: Vec<Vec<usize>> = idx
        .dims()
        .iter()
        .map(|&size| vec![f.add(size, idx_kind)])
        .collect();
    let mut g: Vec<Vec<usize>> = xs[..axis].to_vec();
    g.extend(is.iter().cloned());
    g.extend(xs[axis + 1..].iter().cloned());
    if scatter {
        f.operands = vec![xs.clone(), is, g];
        f.result = xs;
    } else {
        f.operands = vec![xs, is];
        f.result = g;
    }
    f
}

/// Gradients: `gather`'s adjoint adds the adjoint into zeros at the indices (`scatter_add`);
/// `scatter_add` passes the adjoint through to `x` and gathers it for `updates`. Indices are
/// integers and get none.
pub(super) fn grad(op: &Op, cx: &mut GradCtx) -> Result<Grads> {
    let dy = cx.dy;
    let idx = cx.x(1);
    match op {
        Op::Gather { axis } => {
            if !cx.wants(0) {
                return Ok(vec![None, None]);
            }
            let z = cx.zeros_like("grad.zero", cx.x(0))?;
            let s = cx.emit(
                "grad",
                Op::ScatterAdd { axis: *axis },
                vec![z, idx, dy],
                None,
            )?;
            Ok(vec![Some(s), None])
        }
        Op::ScatterAdd { axis } => {
            let gu = if cx.wants(2) {
                Some(cx.emit(
                    "grad_updates",
                    Op::Gather { axis: *axis },
                    vec![dy, idx],
                    None,
                )?)
            } else {
                None
            };
            Ok(vec![cx.wants(0).then_some(dy), None, gu])
        }
        _ => unreachable!("gather::grad called on {}", op.name()),
    }
}
