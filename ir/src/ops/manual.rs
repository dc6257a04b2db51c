//! The boundary of a manual region (jax's `shard_map`): `full_to_shard` gives each device its
//! block of a whole value, `shard_to_full` puts the devices' blocks back together. Shapes
//! depend on the mesh's axis sizes, as a collective's do.

use super::{with_declared_dtype_check, TypeCtx};
use crate::autodiff::{GradCtx, Grads};
use crate::dtype::DType;
use crate::error::Result;
use crate::factors::{FactorKind, OpFactors};
use crate::op::{CompareDir, Op, ReduceFn};
use crate::types::TensorType;

pub(super) fn infer(op: &Op, cx: &TypeCtx) -> std::result::Result<TensorType, String> {
    cx.expect_operands(1)?;
    let x = cx.operands[0];
    let (dims, enter) = match op {
        Op::FullToShard { dims } => (dims, true),
        Op::ShardToFull { dims } => (dims, false),
        _ => unreachable!("manual::infer called on {}", op.name()),
    };
    if dims.len() != x.rank() {
        return Err(format!(
            "the region's sharding names {} dims, the operand {x} has {}",
            dims.len(),
            x.rank()
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut out = x.dims().to_vec();
    for (d, axes) in dims.iter().enumerate() {
        if let Some(a) = axes.iter().find(|a| !seen.insert(a.as_str())) {
            return Err(format!("mesh axis `{a}` splits more than one dim"));
        }
        let n = cx.axes_size(axes)?;
        if enter {
            if out[d] % n != 0 {
                return Err(format!(
                    "dim {d} (size {}) does not split evenly over {n} devices ({})",
                    out[d],
                    axes.join(", ")
                ));
            }
            out[d] /= n;
        } else {
            out[d] = out[d]
                .checked_mul(n)
                .ok_or_else(|| format!("dim {d}: the whole size overflows"))?;
        }
    }
    with_declared_dtype_check(cx, TensorType::new(x.dtype, out))
}

/// The whole value and a device's block share no factor: propagation does not cross the
/// region's boundary (its shardings are fixed, see `sharding::propagate`), and the
/// partitioner emits the boundary itself.
pub(super) fn factors(operands: &[&TensorType], result: &TensorType) -> OpFactors {
    let mut f = OpFactors::default();
    let xs = operands[0]
        .dims()
        .iter()
        .map(|&d| vec![f.add(d, FactorKind::NeedReplication)])
        .collect();
    f.operands = vec![xs];
    f.result = result
        .dims()
        .iter()
        .map(|&d| vec![f.add(d, FactorKind::NeedReplication)])
        .collect();
    f
}

/// Adjoints under the reference semantics (`crate::manual`): a block is read by every device
/// along the axes the region's sharding does not name, so `full_to_shard`'s adjoint sums the
/// devices' adjoints over those axes (jax's transpose of `shard_map` psums there too) and
/// puts the blocks back together; `shard_to_full` reads the device at coordinate 0 of those
/// axes, so its adjoint is each device's block of the whole adjoint there and zero elsewhere.
pub(super) fn grad(op: &Op, cx: &mut GradCtx) -> Result<Grads> {
    if !cx.wants(0) {
        return Ok(vec![None]);
    }
    let (Op::FullToShard { dims } | Op::ShardToFull { dims }) = op else {
        unreachable!("manual::grad called on {}", op.name())
    };
    let Some(mesh) = cx.em.g.mesh.clone() else {
        return Err(cx.err("a manual region needs the graph to name its mesh"));
    };
    let unused: Vec<String> = mesh
        .axes
        .iter()
        .map(|a| a.name.clone())
        .filter(|a| !dims.iter().flatten().any(|d| d == a))
        .collect();
    let dy = cx.dy;
    let dims = dims.clone();
    let g = match op {
        Op::FullToShard { .. } => {
            let summed = if unused.is_empty() {
                dy
            } else {
                let sum = Op::AllReduce {
                    axes: unused,
                    func: ReduceFn::Sum,
                };
                cx.emit("grad.sum", sum, vec![dy], None)?
            };
            let x_ty = cx.ty(cx.x(0));
            cx.emit("grad", Op::ShardToFull { dims }, vec![summed], Some(x_ty))?
        }
        _ => {
            let y_ty = cx.ty(cx.x(0));
            let block = if unused.is_empty() {
                "grad"
            } else {
                "grad.block"
            };
            let b = cx.emit(
                block,
                Op::FullToShard { dims },
                vec![dy],
                Some(y_ty.clone()),
            )?;
            if unused.is_empty() {
                b
            } else {
                let i32s = TensorType::scalar(DType::I32);
                let i = cx.emit(
                    "grad.index",
                    Op::AxisIndex { axes: unused },
                    vec![],
                    Some(i32s.clone()),
                )?;
                let zero = cx.splat("grad.zero_index", 0.0, &i32s)?;
                let first = cx.compare("grad.first", CompareDir::Eq, i, zero)?;
                let mask_ty = TensorType::new(DType::Bool, y_ty.dims().to_vec());
                let first = cx.emit(
                    "grad.first_b",
                    Op::Broadcast { dims: vec![] },
                    vec![first],
                    Some(mask_ty),
                )?;
                cx.mask("grad", first, b, true)?
            }
        }
    };
    Ok(vec![Some(g)])
}
