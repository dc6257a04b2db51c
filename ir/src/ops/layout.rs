//! Data-movement ops: broadcast, reshape, transpose, slice, concatenate, pad, dynamic slices.

use super::{check_dims, with_declared_dtype_check, TypeCtx};
use crate::autodiff::{argsort, GradCtx, Grads};
use crate::error::Result;
use crate::factors::{FactorKind, OpFactors};
use crate::graph::ValueId;
use crate::op::Op;
use crate::types::TensorType;

pub(super) fn infer(op: &Op, cx: &TypeCtx) -> std::result::Result<TensorType, String> {
    match op {
        Op::Broadcast { dims } => {
            cx.expect_operands(1)?;
            let (x, out) = (cx.operands[0], cx.declared);
            if dims.len() != x.rank() {
                return Err(format!(
                    "broadcast needs one dim per operand dim ({}), got {}",
                    x.rank(),
                    dims.len()
                ));
            }
            check_dims("broadcast", dims, out.rank())?;
            for (i, &d) in dims.iter().enumerate() {
                let (a, b) = (x.dims()[i], out.dims()[d]);
                if a != b && a != 1 {
                    return Err(format!(
                        "operand dim {i} (size {a}) cannot broadcast to result dim {d} (size {b})"
                    ));
                }
            }
            with_declared_dtype_check(
                cx,
                TensorType {
                    dtype: x.dtype,
                    shape: out.shape.clone(),
                },
            )
        }
        Op::Reshape => {
            cx.expect_operands(1)?;
            let (x, out) = (cx.operands[0], cx.declared);
            if x.shape.checked_elements() != out.shape.checked_elements() {
                return Err(format!(
                    "reshape from {x} to {out} changes the element count"
                ));
            }
            with_declared_dtype_check(
                cx,
                TensorType {
                    dtype: x.dtype,
                    shape: out.shape.clone(),
                },
            )
        }
        Op::Reverse { dims } => {
            cx.expect_operands(1)?;
            let x = cx.operands[0];
            check_dims("dims", dims, x.rank())?;
            with_declared_dtype_check(cx, x.clone())
        }
        Op::Transpose { perm } => {
            cx.expect_operands(1)?;
            let x = cx.operands[0];
            if perm.len() != x.rank() {
                return Err(format!(
                    "perm has {} entries, operand rank is {}",
                    perm.len(),
                    x.rank()
                ));
            }
            check_dims("perm", perm, x.rank())?;
            let out: Vec<u64> = perm.iter().map(|&p| x.dims()[p]).collect();
            with_declared_dtype_check(cx, TensorType::new(x.dtype, out))
        }
        Op::Slice {
            start,
            limit,
            stride,
        } => {
            cx.expect_operands(1)?;
            let x = cx.operands[0];
            if start.len() != x.rank() || limit.len() != x.rank() || stride.len() != x.rank() {
                return Err(format!(
                    "start, limit and stride need {} entries each",
                    x.rank()
                ));
            }
            let mut out = Vec::new();
            for d in 0..x.rank() {
                let (s, l, st) = (start[d], limit[d], stride[d]);
                if st == 0 {
                    return Err(format!("stride of dim {d} must be >= 1"));
                }
                if s > l || l > x.dims()[d] {
                    return Err(format!(
                        "dim {d}: need start <= limit <= {}, got [{s}, {l})",
                        x.dims()[d]
                    ));
                }
                out.push((l - s).div_ceil(st));
            }
            with_declared_dtype_check(cx, TensorType::new(x.dtype, out))
        }
        Op::Concatenate { dim } => {
            if cx.operands.is_empty() {
                return Err("concatenate needs at least one operand".into());
            }
            let first = cx.operands[0];
            if *dim >= first.rank() {
                return Err(format!(
                    "concatenate dim {dim} is out of range for rank {}",
                    first.rank()
                ));
            }
            let mut size = 0u64;
            for (i, x) in cx.operands.iter().enumerate() {
                if x.dtype != first.dtype || x.rank() != first.rank() {
                    return Err(format!(
                        "operand {i} ({x}) does not match operand 0 ({first})"
                    ));
                }
                for d in 0..x.rank() {
                    if d != *dim && x.dims()[d] != first.dims()[d] {
                        return Err(format!(
                            "operand {i} ({x}) differs from operand 0 ({first}) in dim {d}"
                        ));
                    }
                }
                size = size
                    .checked_add(x.dims()[*dim])
                    .ok_or("concatenated size overflows")?;
            }
            let mut out = first.dims().to_vec();
            out[*dim] = size;
            with_declared_dtype_check(cx, TensorType::new(first.dtype, out))
        }
        Op::Pad {
            low,
            high,
            interior,
            ..
        } => {
            cx.expect_operands(1)?;
            let x = cx.operands[0];
            if low.len() != x.rank() || high.len() != x.rank() || interior.len() != x.rank() {
                return Err(format!(
                    "low, high and interior need {} entries each",
                    x.rank()
                ));
            }
            let mut out = Vec::new();
            for d in 0..x.rank() {
                let n = x.dims()[d] as i128;
                // Checked: a dim near u64::MAX times an interior near u64::MAX overflows i128.
                let inner = if n == 0 {
                    Some(0)
                } else {
                    (n - 1)
                        .checked_mul(interior[d] as i128)
                        .and_then(|i| i.checked_add(n))
                };
                let size = inner
                    .and_then(|i| i.checked_add(low[d] as i128 + high[d] as i128))
                    .filter(|s| (0..=u64::MAX as i128).contains(s))
                    .ok_or_else(|| {
                        format!(
                            "dim {d} would have a negative size or one beyond u64 after padding"
                        )
                    })?;
                out.push(size as u64);
            }
            with_declared_dtype_check(cx, TensorType::new(x.dtype, out))
        }
        Op::DynamicSlice { sizes } => {
            let x = cx
                .operands
                .first()
                .ok_or("dynamic_slice needs an operand")?;
            cx.expect_operands(1 + x.rank())?;
            check_starts(&cx.operands[1..])?;
            if sizes.len() != x.rank() {
                return Err(format!("sizes needs {} entries", x.rank()));
            }
            for (d, (&s, &n)) in sizes.iter().zip(x.dims()).enumerate() {
                if s > n {
                    return Err(format!(
                        "slice size {s} of dim {d} exceeds the dim's size {n}"
                    ));
                }
            }
            with_declared_dtype_check(cx, TensorType::new(x.dtype, sizes.clone()))
        }
        Op::DynamicUpdateSlice => {
            let x = cx
                .operands
                .first()
                .ok_or("dynamic_update_slice needs operands")?;
            cx.expect_operands(2 + x.rank())?;
            let u = cx.operands[1];
            if u.dtype != x.dtype || u.rank() != x.rank() {
                return Err(format!("update {u} does not match operand {x}"));
            }
            if u.dims().iter().zip(x.dims()).any(|(a, b)| a > b) {
                return Err(format!("update {u} is larger than operand {x}"));
            }
            check_starts(&cx.operands[2..])?;
            with_declared_dtype_check(cx, (*x).clone())
        }
        _ => unreachable!("layout::infer called on {}", op.name()),
    }
}

fn check_starts(starts: &[&TensorType]) -> std::result::Result<(), String> {
    for (i, s) in starts.iter().enumerate() {
        if s.rank() != 0 || !s.dtype.is_int() {
            return Err(format!(
                "start index {i} must be an integer scalar, got {s}"
            ));
        }
    }
    Ok(())
}

pub(super) fn factors(op: &Op, operands: &[&TensorType], result: &TensorType) -> OpFactors {
    let mut f = OpFactors::default();
    match op {
        Op::Broadcast { dims } => {
            let res: Vec<usize> = result
                .dims()
                .iter()
                .map(|&d| f.add(d, FactorKind::PassThrough))
                .collect();
            let x = operands[0];
            let xs = dims
                .iter()
                .enumerate()
                .map(|(i, &d)| {
                    if x.dims()[i] == result.dims()[d] {
                        vec![res[d]]
                    } else {
                        vec![]
                    }
                })
                .collect();
            f.operands = vec![xs];
            f.result = res.into_iter().map(|i| vec![i]).collect();
        }
        Op::Reshape => {
            let (xs, rs) = reshape_factors(&mut f, operands[0].dims(), result.dims());
            f.operands = vec![xs];
            f.result = rs;
        }
        Op::Reverse { dims } => {
            // A reversed dim's shard k holds what shard n-1-k held: not a local operation.
            let xs: Vec<usize> = operands[0]
                .dims()
                .iter()
                .enumerate()
                .map(|(d, &n)| {
                    let kind = if dims.contains(&d) {
                        FactorKind::NeedReplication
                    } else {
                        FactorKind::PassThrough
                    };
                    f.add(n, kind)
                })
                .collect();
            f.result = xs.iter().map(|&i| vec![i]).collect();
            f.operands = vec![xs.into_iter().map(|i| vec![i]).collect()];
        }
        Op::Transpose { perm } => {
            let x = operands[0];
            let xs: Vec<usize> = x
                .dims()
                .iter()
                .map(|&d| f.add(d, FactorKind::PassThrough))
                .collect();
            f.result = perm.iter().map(|&p| vec![xs[p]]).collect();
            f.operands = vec![xs.into_iter().map(|i| vec![i]).collect()];
        }
        Op::Slice { start, stride, .. } => {
            let x = operands[0];
            let mut xs = Vec::new();
            for d in 0..x.rank() {
                let whole = start[d] == 0 && stride[d] == 1 && result.dims()[d] == x.dims()[d];
                let kind = if whole {
                    FactorKind::PassThrough
                } else {
                    FactorKind::Window
                };
                let i = f.add(result.dims()[d], kind);
                xs.push(vec![i]);
                f.result.push(vec![i]);
            }
            f.operands = vec![xs];
        }
        Op::Concatenate { dim } => {
            for d in 0..result.rank() {
                let kind = if d == *dim {
                    FactorKind::Window
                } else {
                    FactorKind::PassThrough
                };
                {
                    let k = f.add(result.dims()[d], kind);
                    f.result.push(vec![k]);
                }
            }
            f.operands = vec![f.result.clone(); operands.len()];
        }
        Op::Pad {
            low,
            high,
            interior,
            ..
        } => {
            for d in 0..result.rank() {
                let still = low[d] == 0 && high[d] == 0 && interior[d] == 0;
                let kind = if still {
                    FactorKind::PassThrough
                } else {
                    FactorKind::Window
                };
                {
                    let k = f.add(result.dims()[d], kind);
                    f.result.push(vec![k]);
                }
            }
            f.operands = vec![f.result.clone()];
        }
        Op::DynamicSlice { .. } => {
            let x = operands[0];
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
            f.operands
                .extend(std::iter::repeat_n(Vec::new(), operands.len() - 1));
        }
        Op::DynamicUpdateSlice => {
            let (x, u) = (operands[0], operands[1]);
            let mut us = Vec::new();
            for d in 0..x.rank() {
                if x.dims()[d] == u.dims()[d] {
                    let i = f.add(x.dims()[d], FactorKind::PassThrough);
                    us.push(vec![i]);
                    f.result.push(vec![i]);
                } else {
                    {
                        let k = f.add(x.dims()[d], FactorKind::NeedReplication);
                        f.result.push(vec![k]);
                    }
                    us.push(vec![f.add(u.dims()[d], FactorKind::NeedReplication)]);
                }
            }
            f.operands = vec![f.result.clone(), us];
            f.operands
                .extend(std::iter::repeat_n(Vec::new(), operands.len() - 2));
        }
        _ => unreachable!("layout::factors called on {}", op.name()),
    }
    f
}

/// Gradient rules of the data-movement ops: each moves the adjoint back the way the op moved
/// the data (reduce what a broadcast copied, pad what a slice cut, slice what a pad or a
/// concatenation added, and so on).
pub(super) fn grad(op: &Op, cx: &mut GradCtx) -> Result<Grads> {
    let dy = cx.dy;
    let x = cx.x(0);
    let xt = cx.ty(x);
    let n_operands = cx.em.g.node(cx.node).operands.len();
    let mut out: Grads = vec![None; n_operands];
    match op {
        Op::Broadcast { dims } => {
            if !cx.wants(0) {
                return Ok(out);
            }
            let yt = cx.ty(cx.y());
            // Sum over the result dims the operand does not have and over size-1 expansions.
            let expanded: Vec<usize> = (0..yt.rank())
                .filter(|&r| match dims.iter().position(|&d| d == r) {
                    None => true,
                    Some(i) => xt.dims()[i] != yt.dims()[r],
                })
                .collect();
            let s = cx.reduce_sum("grad.sum", dy, expanded.clone())?;
            // What is left are the result dims of the operand's kept dims, in increasing order.
            let kept: Vec<usize> = (0..xt.rank())
                .filter(|&i| !expanded.contains(&dims[i]))
                .collect();
            let positions: Vec<usize> = kept.iter().map(|&i| dims[i]).collect();
            // Reduced dim j is the j-th smallest position: operand dim k comes from the rank of
            // its position.
            let t = cx.transpose("grad.t", s, argsort(&argsort(&positions)))?;
            out[0] = Some(cx.reshape("grad", t, xt.dims().to_vec())?);
        }
        Op::Reshape => {
            if cx.wants(0) {
                out[0] = Some(cx.reshape("grad", dy, xt.dims().to_vec())?);
            }
        }
        Op::Reverse { dims } => {
            if cx.wants(0) {
                let back = Op::Reverse { dims: dims.clone() };
                out[0] = Some(cx.emit("grad", back, vec![dy], None)?);
            }
        }
        Op::Transpose { perm } => {
            if cx.wants(0) {
                out[0] = Some(cx.transpose("grad", dy, argsort(perm))?);
            }
        }
        Op::Slice {
            start,
            limit: _,
            stride,
        } => {
            if !cx.wants(0) {
                return Ok(out);
            }
            let yt = cx.ty(cx.y());
            if yt.shape.elements() == 0 {
                out[0] = Some(cx.zeros_like("grad", x)?);
                return Ok(out);
            }
            // Zeros between the picked elements (interior) and around them.
            let mut low = Vec::new();
            let mut high = Vec::new();
            let mut interior = Vec::new();
            for d in 0..xt.rank() {
                let last = start[d] + (yt.dims()[d] - 1) * stride[d];
                low.push(start[d] as i64);
                high.push((xt.dims()[d] - last - 1) as i64);
                interior.push(stride[d] - 1);
            }
            let pad = Op::Pad {
                low,
                high,
                interior,
                value: 0.0,
            };
            out[0] = Some(cx.emit("grad", pad, vec![dy], None)?);
        }
        Op::Concatenate { dim } => {
            let yt = cx.ty(cx.y());
            let mut offset = 0u64;
            for (i, slot) in out.iter_mut().enumerate() {
                let size = cx.ty(cx.x(i)).dims()[*dim];
                if cx.wants(i) {
                    let mut start = vec![0; yt.rank()];
                    let mut limit = yt.dims().to_vec();
                    start[*dim] = offset;
                    limit[*dim] = offset + size;
                    let slice = Op::Slice {
                        start,
                        limit,
                        stride: vec![1; yt.rank()],
                    };
                    *slot = Some(cx.emit(&format!("grad_{i}"), slice, vec![dy], None)?);
                }
                offset += size;
            }
        }
        Op::Pad {
            low,
            high,
            interior,
            ..
        } => {
            if !cx.wants(0) {
                return Ok(out);
            }
            // JAX's `_pad_transpose`: undo the edge padding (a negative pad re-adds cropped
            // zeros), then take every (interior + 1)-th element.
            let mut t = dy;
            if low.iter().chain(high).any(|&p| p != 0) {
                let unpad = Op::Pad {
                    low: low.iter().map(|&p| -p).collect(),
                    high: high.iter().map(|&p| -p).collect(),
                    interior: vec![0; xt.rank()],
                    value: 0.0,
                };
                let name = if interior.iter().all(|&i| i == 0) {
                    "grad"
                } else {
                    "grad.unpad"
                };
                t = cx.emit(name, unpad, vec![t], None)?;
            }
            if interior.iter().any(|&i| i != 0) {
                let tt = cx.ty(t);
                let slice = Op::Slice {
                    start: vec![0; xt.rank()],
                    limit: tt.dims().to_vec(),
                    stride: interior.iter().map(|&i| i + 1).collect(),
                };
                t = cx.emit("grad", slice, vec![t], None)?;
            }
            out[0] = Some(t);
        }
        Op::DynamicSlice { .. } => {
            if cx.wants(0) {
                let z = cx.zeros_like("grad.zero", x)?;
                let mut operands = vec![z, dy];
                operands.extend((1..n_operands).map(|i| cx.x(i)));
                out[0] = Some(cx.emit("grad", Op::DynamicUpdateSlice, operands, None)?);
            }
        }
        Op::DynamicUpdateSlice => {
            let u = cx.x(1);
            let starts: Vec<ValueId> = (2..n_operands).map(|i| cx.x(i)).collect();
            if cx.wants(0) {
                let z = cx.zeros_like("grad_operand.zero", u)?;
                let mut operands = vec![dy, z];
                operands.extend(&starts);
                out[0] = Some(cx.emit("grad_operand", Op::DynamicUpdateSlice, operands, None)?);
            }
            if cx.wants(1) {
                let sizes = cx.ty(u).dims().to_vec();
                let mut operands = vec![dy];
                operands.extend(&starts);
                let ds = Op::DynamicSlice { sizes };
                out[1] = Some(cx.emit("grad_update", ds, operands, None)?);
            }
        }
        _ => unreachable!("layout::grad called on {}", op.name()),
    }
    Ok(out)
}

/// Compound factors of a row-major reshape: walk both shapes, splitting the larger dim by the
/// smaller where one divides the other. Where neither divides, the remaining dims get separate
/// need-replication factors (sharding them would need a gather).
fn reshape_factors(
    f: &mut OpFactors,
    from: &[u64],
    to: &[u64],
) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let mut xs = vec![Vec::new(); from.len()];
    let mut rs = vec![Vec::new(); to.len()];
    let (mut i, mut j) = (0, 0);
    let (mut a, mut b) = (
        from.first().copied().unwrap_or(1),
        to.first().copied().unwrap_or(1),
    );
    loop {
        while i < from.len() && a == 1 {
            i += 1;
            a = from.get(i).copied().unwrap_or(1);
        }
        while j < to.len() && b == 1 {
            j += 1;
            b = to.get(j).copied().unwrap_or(1);
        }
        if i >= from.len() || j >= to.len() {
            break;
        }
        if a % b == 0 {
            let k = f.add(b, FactorKind::PassThrough);
            xs[i].push(k);
            rs[j].push(k);
            a /= b;
            b = 1;
        } else if b % a == 0 {
            let k = f.add(a, FactorKind::PassThrough);
            xs[i].push(k);
            rs[j].push(k);
            b /= a;
            a = 1;
        } else {
            // No common refinement from here on: the rest needs replication.
            xs[i].push(f.add(a, FactorKind::NeedReplication));
            for d in i + 1..from.len() {
                if from[d] != 1 {
                    xs[d].push(f.add(from[d], FactorKind::NeedReplication));
                }
            }
            rs[j].push(f.add(b, FactorKind::NeedReplication));
            for d in j + 1..to.len() {
                if to[d] != 1 {
                    rs[d].push(f.add(to[d], FactorKind::NeedReplication));
                }
            }
            break;
        }
    }
    (xs, rs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_splits_a_dim_into_compound_factors() {
        let mut f = OpFactors::default();
        let (xs, rs) = reshape_factors(&mut f, &[8, 12], &[8, 3, 4]);
        assert_eq!(xs, vec![vec![0], vec![1, 2]]);
        assert_eq!(rs, vec![vec![0], vec![1], vec![2]]);
        assert_eq!(
            f.factors.iter().map(|x| x.size).collect::<Vec<_>>(),
            vec![8, 3, 4]
        );
    }

    #[test]
    fn reshape_without_common_refinement_needs_replication() {
        let mut f = OpFactors::default();
        let (xs, rs) = reshape_factors(&mut f, &[2, 4, 6], &[2, 6, 4]);
        // The leading 2 is shared; 4 against 6 has no common refinement.
        assert_eq!(xs[0], rs[0]);
        assert_eq!(f.factors[0].kind, FactorKind::PassThrough);
        assert!(xs[1]
            .iter()
            .all(|&k| f.factors[k].kind == FactorKind::NeedReplication));
        assert!(rs[1]
            .iter()
            .all(|&k| f.factors[k].kind == FactorKind::NeedReplication));
    }
}
