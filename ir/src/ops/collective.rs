//! Collectives (in partitioned programs): shapes depend on the mesh's axis sizes.

use super::{with_declared_dtype_check, TypeCtx};
use crate::factors::{FactorKind, OpFactors};
use crate::op::Op;
use crate::types::TensorType;

pub(super) fn infer(op: &Op, cx: &TypeCtx) -> Result<TensorType, String> {
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
        Op::CollectivePermute { axis, pairs } => {
            let n = cx.axes_size(std::slice::from_ref(axis))?;
            let mut targets = std::collections::BTreeSet::new();
            for &(s, t) in pairs {
                if s >= n || t >= n {
                    return Err(format!(
                        "pair ({s}, {t}) is out of range for axis `{axis}` of size {n}"
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
