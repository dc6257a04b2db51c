//! Collectives (in partitioned programs): shapes depend on the mesh's axis sizes.

use super::{with_declared_dtype_check, TypeCtx};
use crate::autodiff::{GradCtx, Grads};
use crate::error::Result;
use crate::factors::{FactorKind, OpFactors};
use crate::op::Op;
use crate::op::{CompareDir, ReduceFn};
use crate::types::TensorType;

pub(super) fn infer(op: &Op, cx: &TypeCtx) -> std::result::Result<TensorType, String> {
    cx.expect_operands(1)?;
    let x = cx.operands[0];
    let mut out = x.dims().to_vec();
    let check_dim = |d: usize| {
        if d >= x.rank() {
            Err(format!("dim {d} is out of range for {x}"))
        } else {
            Ok(())
        }
    };
    match op {
        Op::AllReduce { axes, .. } => {
            cx.axes_size(axes)?;
        }
        Op::AllGather { dim, axes } => {
            check_dim(*dim)?;
            out[*dim] = out[*dim]
                .checked_mul(cx.axes_size(axes)?)
                .ok_or("gathered size overflows")?;
        }
        Op::ReduceScatter { dim, axes, .. } => {
            check_dim(*dim)?;
            let n = cx.axes_size(axes)?;
            if out[*dim] % n != 0 {
                return Err(format!(
                    "dim {dim} (size {}) does not divide over {n} devices",
                    out[*dim]
                ));
            }
            out[*dim] /= n;
        }
        Op::AllToAll {
            split_dim,
            concat_dim,
            axes,
        } => {
            check_dim(*split_dim)?;
            check_dim(*concat_dim)?;
            let n = cx.axes_size(axes)?;
            if out[*split_dim] % n != 0 {
                return Err(format!(
                    "split dim {split_dim} (size {}) does not divide over {n} devices",
                    out[*split_dim]
                ));
            }
            out[*split_dim] /= n;
            out[*concat_dim] = out[*concat_dim]
                .checked_mul(n)
                .ok_or("concatenated size overflows")?;
        }
        Op::CollectivePermute { axes, pairs } => {
            let n = cx.axes_size(axes)?;
            let mut targets = std::collections::BTreeSet::new();
            for &(s, t) in pairs {
                if s >= n || t >= n {
                    return Err(format!(
                        "pair ({s}, {t}) is out of range for axes {axes:?} of {n} devices"
                    ));
                }
                if !targets.insert(t) {
                    return Err(format!("coordinate {t} receives twice"));
                }
            }
        }
        Op::Send { .. } => {}
        _ => unreachable!("collective::infer called on {}", op.name()),
    }
    with_declared_dtype_check(cx, TensorType::new(x.dtype, out))
}

pub(super) fn factors(operands: &[&TensorType], result: &TensorType) -> OpFactors {
    let x = operands[0];
    let mut f = OpFactors::default();
    let mut xs = Vec::new();
    for d in 0..x.rank() {
        if x.dims()[d] == result.dims()[d] {
            let i = f.add(x.dims()[d], FactorKind::PassThrough);
            xs.push(vec![i]);
            f.result.push(vec![i]);
        } else {
            xs.push(vec![f.add(x.dims()[d], FactorKind::NeedReplication)]);
            {
                let k = f.add(result.dims()[d], FactorKind::NeedReplication);
                f.result.push(vec![k]);
            }
        }
    }
    f.operands = vec![xs];
    f
}

/// Adjoints of the collectives, under the SPMD convention that the loss is the sum of every
/// device's local loss (so the adjoint of a value replicated by a sum is itself summed, as JAX's
/// `psum` transposes to `psum`): all_reduce(sum) ↔ all_reduce(sum), all_gather ↔
/// reduce_scatter(sum), all_to_all ↔ all_to_all with split and concat dims swapped,
/// collective_permute ↔ the reversed pairs, send ↔ identity. A max/min reduction sends the
/// summed adjoint to the devices whose value won.
pub(super) fn grad(op: &Op, cx: &mut GradCtx) -> Result<Grads> {
    if !cx.wants(0) {
        return Ok(vec![None]);
    }
    let dy = cx.dy;
    let g = match op {
        Op::AllReduce { axes, func } => {
            let sum = Op::AllReduce {
                axes: axes.clone(),
                func: ReduceFn::Sum,
            };
            if *func == ReduceFn::Sum {
                cx.emit("grad", sum, vec![dy], None)?
            } else {
                let total = cx.emit("grad.sum", sum, vec![dy], None)?;
                let (x, y) = (cx.x(0), cx.y());
                let won = cx.compare("grad.won", CompareDir::Eq, x, y)?;
                cx.mask("grad", won, total, true)?
            }
        }
        Op::AllGather { dim, axes } => {
            let rs = Op::ReduceScatter {
                dim: *dim,
                axes: axes.clone(),
                func: ReduceFn::Sum,
            };
            cx.emit("grad", rs, vec![dy], None)?
        }
        Op::ReduceScatter { dim, axes, func } => {
            let ag = |what: &str| {
                (
                    what.to_string(),
                    Op::AllGather {
                        dim: *dim,
                        axes: axes.clone(),
                    },
                )
            };
            if *func == ReduceFn::Sum {
                let (n, op) = ag("grad");
                cx.emit(&n, op, vec![dy], None)?
            } else {
                let (n, op) = ag("grad.gather");
                let total = cx.emit(&n, op.clone(), vec![dy], None)?;
                let (n, op) = ag("grad.gather_result");
                let y = cx.y();
                let full = cx.emit(&n, op, vec![y], None)?;
                let x = cx.x(0);
                let won = cx.compare("grad.won", CompareDir::Eq, x, full)?;
                cx.mask("grad", won, total, true)?
            }
        }
        Op::AllToAll {
            split_dim,
            concat_dim,
            axes,
        } => {
            let back = Op::AllToAll {
                split_dim: *concat_dim,
                concat_dim: *split_dim,
                axes: axes.clone(),
            };
            cx.emit("grad", back, vec![dy], None)?
        }
        Op::CollectivePermute { axes, pairs } => {
            let back = Op::CollectivePermute {
                axes: axes.clone(),
                pairs: pairs.iter().map(|&(s, t)| (t, s)).collect(),
            };
            cx.emit("grad", back, vec![dy], None)?
        }
        Op::Send { .. } => dy,
        _ => unreachable!("collective::grad called on {}", op.name()),
    };
    Ok(vec![Some(g)])
}
