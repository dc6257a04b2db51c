//! `gather` (take along an axis; out-of-range indices clamp, as XLA's gather does) and its
//! adjoint `scatter_add` (adds at the same clamped positions).

use std::ops::AddAssign;

use ndarray::{Array3, ArrayD, Axis, CowArray, Ix3, IxDyn};

use super::{arr, indices, std_owned};
use crate::tensor::{with_elem, Data, Elem, Tensor};

/// `x` as `[before axis, axis, after axis]`: a view when `x` is contiguous (an embedding table
/// is read in place, not copied per lookup).
fn view_3d<T: Elem>(x: &ArrayD<T>, axis: usize) -> Result<CowArray<'_, T, Ix3>, String> {
    let shape = x.shape();
    if axis >= shape.len() {
        return Err(format!(
            "axis {axis} is out of range for rank {}",
            shape.len()
        ));
    }
    let pre: usize = shape[..axis].iter().product();
    let post: usize = shape[axis + 1..].iter().product();
    match x.view().into_shape_with_order((pre, shape[axis], post)) {
        Ok(v) => Ok(CowArray::from(v)),
        Err(_) => as_3d(x, axis).map(CowArray::from),
    }
}

/// `x` as `[before axis, axis, after axis]`.
fn as_3d<T: Elem>(x: &ArrayD<T>, axis: usize) -> Result<Array3<T>, String> {
    let shape = x.shape();
    if axis >= shape.len() {
        return Err(format!(
            "axis {axis} is out of range for rank {}",
            shape.len()
        ));
    }
    let pre: usize = shape[..axis].iter().product();
    let post: usize = shape[axis + 1..].iter().product();
    std_owned(x.view())
        .into_shape_with_order((pre, shape[axis], post))
        .map_err(|e| format!("gather reshape: {e}"))
}

/// The gathered shape: `x`'s dims before `axis`, the indices' dims, `x`'s dims after `axis`.
fn gathered_shape(x: &[usize], idx: &[usize], axis: usize) -> Vec<usize> {
    x[..axis]
        .iter()
        .chain(idx)
        .chain(&x[axis + 1..])
        .copied()
        .collect()
}

fn clamped(idx: &[i64], n: usize) -> Result<Vec<usize>, String> {
    if n == 0 && !idx.is_empty() {
        return Err("cannot index into an axis of size 0".into());
    }
    Ok(idx
        .iter()
        .map(|&i| i.clamp(0, n as i64 - 1) as usize)
        .collect())
}

pub(super) fn gather(x: &Tensor, idx: &Tensor, axis: usize) -> Result<Tensor, String> {
    let positions = indices(idx)?;
    let out_shape = gathered_shape(x.shape(), idx.shape(), axis);
    let data = with_elem!(x.data(), T => {
        let x3 = view_3d(arr::<T>(x)?, axis)?;
        let pos = clamped(&positions, x3.dim().1)?;
        let (pre, _, post) = x3.dim();
        let mut out = Array3::<T>::default((pre, pos.len(), post));
        for (k, &p) in pos.iter().enumerate() {
            out.index_axis_mut(Axis(1), k).assign(&x3.index_axis(Axis(1), p));
        }
        T::into_data(out.into_shape_with_order(IxDyn(&out_shape)).map_err(|e| format!("gather: {e}"))?)
    });
    Ok(Tensor::from_data(x.dtype(), data))
}

fn scatter_typed<T: Elem + AddAssign>(
    x: &ArrayD<T>,
    positions: &[i64],
    updates: &ArrayD<T>,
    axis: usize,
) -> Result<ArrayD<T>, String> {
    let mut x3 = as_3d(x, axis)?;
    let (pre, n, post) = x3.dim();
    let pos = clamped(positions, n)?;
    let u3 = std_owned(updates.view())
        .into_shape_with_order((pre, pos.len(), post))
        .map_err(|e| format!("updates do not have the gathered shape: {e}"))?;
    for (k, &p) in pos.iter().enumerate() {
        let mut dst = x3.index_axis_mut(Axis(1), p);
        dst += &u3.index_axis(Axis(1), k);
    }
    x3.into_shape_with_order(IxDyn(x.shape()))
        .map_err(|e| format!("scatter_add: {e}"))
}

pub(super) fn scatter_add(
    x: &Tensor,
    idx: &Tensor,
    updates: &Tensor,
    axis: usize,
) -> Result<Tensor, String> {
    let positions = indices(idx)?;
    let expected = gathered_shape(x.shape(), idx.shape(), axis);
    if updates.shape() != expected.as_slice() {
        return Err(format!(
            "updates {} must have the gathered shape {expected:?}",
            updates.ty()
        ));
    }
    let data = match x.data() {
        Data::F32(a) => Data::F32(scatter_typed(a, &positions, arr::<f32>(updates)?, axis)?),
        Data::F64(a) => Data::F64(scatter_typed(a, &positions, arr::<f64>(updates)?, axis)?),
        Data::I32(a) => Data::I32(scatter_typed(a, &positions, arr::<i32>(updates)?, axis)?),
        Data::I64(a) => Data::I64(scatter_typed(a, &positions, arr::<i64>(updates)?, axis)?),
        Data::Bool(_) => return Err("scatter_add needs a numeric operand, got bool".into()),
    };
    Ok(Tensor::from_data(x.dtype(), data))
}
