//! `reduce`: sum, max or min over dims. Floating-point sums accumulate in f64 (the reference
//! should be more accurate than what it checks); integer sums wrap.

use ndarray::{ArrayD, Axis, IxDyn};
use shardc_ir::ReduceFn;

use super::{par, std_owned};
use crate::tensor::{Data, Elem, Tensor};

/// Moves the reduced dims last and views the tensor as `[kept, reduced]` rows.
fn rows<T: Elem>(
    a: &ArrayD<T>,
    dims: &[usize],
) -> Result<(ndarray::Array2<T>, Vec<usize>), String> {
    let rank = a.ndim();
    if let Some(&d) = dims.iter().find(|&&d| d >= rank) {
        return Err(format!("reduced dim {d} is out of range for rank {rank}"));
    }
    let kept: Vec<usize> = (0..rank).filter(|d| !dims.contains(d)).collect();
    let perm: Vec<usize> = kept.iter().chain(dims).copied().collect();
    let kept_shape: Vec<usize> = kept.iter().map(|&d| a.shape()[d]).collect();
    let outer: usize = kept_shape.iter().product();
    let inner: usize = dims.iter().map(|&d| a.shape()[d]).product();
    let m = std_owned(a.view().permuted_axes(perm))
        .into_shape_with_order((outer, inner))
        .map_err(|e| format!("reduce reshape: {e}"))?;
    Ok((m, kept_shape))
}

/// The reduction of each row when the reduced dims are the trailing ones of a contiguous array
/// (layer norm, softmax: no transposed copy), the rows spread over the threads; `None` otherwise.
fn trailing_rows<T: Elem, R: Elem>(
    a: &ArrayD<T>,
    dims: &[usize],
    row: impl Fn(&[T]) -> R + Sync,
) -> Option<ArrayD<R>> {
    let rank = a.ndim();
    let mut sorted = dims.to_vec();
    sorted.sort_unstable();
    let first = rank.checked_sub(dims.len())?;
    if sorted != (first..rank).collect::<Vec<_>>() {
        return None;
    }
    let inner: usize = a.shape()[first..].iter().product();
    par::rows(a, inner, &a.shape()[..first], row)
}

fn reduce_typed<T: Elem>(
    a: &ArrayD<T>,
    dims: &[usize],
    init: T,
    f: impl Fn(T, T) -> T + Sync,
) -> Result<ArrayD<T>, String> {
    if let Some(out) = trailing_rows(a, dims, |r| r.iter().fold(init, |acc, &x| f(acc, x))) {
        return Ok(out);
    }
    let (m, kept) = rows(a, dims)?;
    let v: Vec<T> = m
        .axis_iter(Axis(0))
        .map(|row| row.iter().fold(init, |acc, &x| f(acc, x)))
        .collect();
    ArrayD::from_shape_vec(IxDyn(&kept), v).map_err(|e| format!("reduce: {e}"))
}

fn float_reduce<T: Elem>(
    func: ReduceFn,
    a: &ArrayD<T>,
    dims: &[usize],
) -> Result<ArrayD<T>, String> {
    match func {
        ReduceFn::Sum => {
            let sum = |r: &[T]| T::from_f64(r.iter().map(|&x| x.to_f64()).sum::<f64>());
            if let Some(out) = trailing_rows(a, dims, sum) {
                return Ok(out);
            }
            let (m, kept) = rows(a, dims)?;
            let v: Vec<T> = m
                .axis_iter(Axis(0))
                .map(|row| T::from_f64(row.iter().map(|&x| x.to_f64()).sum::<f64>()))
                .collect();
            ArrayD::from_shape_vec(IxDyn(&kept), v).map_err(|e| format!("reduce: {e}"))
        }
        // NaN propagates, as in XLA's max/min.
        ReduceFn::Max => reduce_typed(a, dims, T::from_f64(f64::NEG_INFINITY), |x, y| {
            if x.to_f64().is_nan() {
                x
            } else if y.to_f64().is_nan() || y > x {
                y
            } else {
                x
            }
        }),
        ReduceFn::Min => reduce_typed(a, dims, T::from_f64(f64::INFINITY), |x, y| {
            if x.to_f64().is_nan() {
                x
            } else if y.to_f64().is_nan() || y < x {
                y
            } else {
                x
            }
        }),
    }
}

pub(super) fn reduce(func: ReduceFn, dims: &[usize], x: &Tensor) -> Result<Tensor, String> {
    let data = match x.data() {
        Data::F32(a) => Data::F32(float_reduce(func, a, dims)?),
        Data::F64(a) => Data::F64(float_reduce(func, a, dims)?),
        Data::I32(a) => Data::I32(match func {
            ReduceFn::Sum => reduce_typed(a, dims, 0, i32::wrapping_add)?,
            ReduceFn::Max => reduce_typed(a, dims, i32::MIN, i32::max)?,
            ReduceFn::Min => reduce_typed(a, dims, i32::MAX, i32::min)?,
        }),
        Data::I64(a) => Data::I64(match func {
            ReduceFn::Sum => reduce_typed(a, dims, 0, i64::wrapping_add)?,
            ReduceFn::Max => reduce_typed(a, dims, i64::MIN, i64::max)?,
            ReduceFn::Min => reduce_typed(a, dims, i64::MAX, i64::min)?,
        }),
        Data::Bool(_) => return Err("reduce needs a numeric operand, got bool".into()),
    };
    Ok(Tensor::from_data(x.dtype(), data))
}
